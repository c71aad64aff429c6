"""EventBridge delivers to Lambda targets, AWS services publish to the default bus, schedules fire on demand.

Stock moto matched rules but had no Lambda target (it raised NotImplementedError), delivered to a
rule whatever its State, and sent every event on a bus to a schedule-only rule (an empty pattern
matched everything). Here:

- a rule delivers only when ENABLED, only events its EventPattern matches, and a rule with only a
  ScheduleExpression gets no bus events;
- a Lambda target is invoked through lambdas.py (synchronously, where EventBridge invokes
  asynchronously), with the target's Input, InputPath or InputTransformer applied, and only when the
  function's resource-based policy lets events.amazonaws.com invoke it for that rule
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html); other
  targets keep moto's delivery;
- `publish` is how the emulated services (hosts.py) put their own events on the default bus;
- `fire` delivers a schedule rule's "Scheduled Event" now, since no clock runs schedules
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html).
"""
from __future__ import annotations

import copy
import datetime
import fnmatch
import json
import logging
import uuid
from typing import Any

from moto.awslambda.utils import get_backend as lambda_backend
from moto.events import models as events
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

from . import lambdas
from .fixes import replace

log = logging.getLogger(__name__)


def publish(account_id: str, region_name: str, source: str, detail_type: str, detail: dict,
            resources: list[str]) -> None:
    """Put an event an AWS service emits on the account's default bus, as that service would."""
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account_id,
        "time": datetime.datetime.now(datetime.timezone.utc).timestamp(),  # moto's own targets read a number
        "region": region_name,
        "resources": resources,
        "detail": detail,
    }
    bus = events.events_backends[account_id][region_name].event_buses.get("default")
    for rule in list(bus.rules.values()) if bus is not None else []:
        rule.send_to_targets(copy.deepcopy(event))


def fire(rule_name: str, account_id: str, region_name: str, event_bus: str = "default") -> bool:
    """Deliver a schedule rule's Scheduled Event to its targets now; False when the rule is disabled."""
    rule = events.events_backends[account_id][region_name].describe_rule(rule_name, event_bus)
    if not rule.scheduled_expression:
        raise ValueError(f"Rule {rule_name} has no ScheduleExpression; only schedules fire on demand")
    if rule.state != "ENABLED":
        return False
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.datetime.now(datetime.timezone.utc).timestamp(),
        "region": region_name,
        "resources": [rule.arn],
        "detail": {},
    }
    _deliver(rule, event)
    return True


@replace(events.Rule, "send_to_targets")
def _send_to_targets(original, self, original_event, transform_input=True):
    if self.state != "ENABLED" or not self.event_pattern.get_pattern():
        return  # disabled, or a schedule: bus events are not for it
    if self.event_pattern.matches_event(original_event):
        _deliver(self, original_event, original, transform_input)


def _deliver(rule: events.Rule, event: dict, original=None, transform_input: bool = True) -> None:
    functions = [t for t in rule.targets if parse_arn(t["Arn"]).service == "lambda"]
    others = [t for t in rule.targets if t not in functions]
    if others:
        # moto's delivery for the rest, on a copy of the rule that lists only them
        proxy = copy.copy(rule)
        proxy.targets = others
        (original or events.Rule.send_to_targets.__wrapped__)(proxy, copy.deepcopy(event), transform_input)
    for target in functions:
        _invoke(rule, target, event)


def _invoke(rule: events.Rule, target: dict, event: dict) -> None:
    try:
        function = lambda_backend(rule.account_id, rule.region_name).get_function(target["Arn"])
    except Exception:
        log.warning("rule %s: target function %s does not exist", rule.name, target["Arn"])
        return
    if not allowed(function, rule.arn):
        log.warning("rule %s: %s does not let events.amazonaws.com invoke it", rule.name, function.function_name)
        return
    payload = target_input(target, {**event, "time": _iso(event["time"])})
    if lambdas.runs_here(function):
        lambdas.invoke(function, payload)
    else:
        function.invoke(json.dumps(payload), {"X-Amz-Invocation-Type": "Event"}, {})


def allowed(function: Any, rule_arn: str) -> bool:
    """Whether the function's resource-based policy lets EventBridge invoke it for this rule."""
    for statement in function.policy.statements:
        principal = statement.get("Principal", {})
        services = _listed(principal.get("Service") if isinstance(principal, dict) else principal)
        actions = _listed(statement.get("Action"))
        if statement.get("Effect") != "Allow" or "events.amazonaws.com" not in services \
                or not {"lambda:InvokeFunction", "lambda:*", "*"} & set(actions):
            continue
        conditions = statement.get("Condition", {})
        source = (conditions.get("ArnLike", {}) or conditions.get("ArnEquals", {})).get("AWS:SourceArn")
        if source is None or fnmatch.fnmatchcase(rule_arn, source):
            return True
    return False


def _listed(value: Any) -> list:
    return [value] if isinstance(value, str) else list(value or [])


def target_input(target: dict, event: dict) -> Any:
    """What a target receives: its Input, the part InputPath selects, its InputTransformer's output, or the event.

    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_Target.html
    """
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        found = parse(target["InputPath"]).find(event)
        return found[0].value if found else None
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        return EventTemplateParser.parse(transformer.get("InputTemplate"), transformer.get("InputPathsMap", {}), event)
    return event


def _iso(time: Any) -> str:
    if isinstance(time, (int, float)):
        return datetime.datetime.fromtimestamp(time, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(time)
