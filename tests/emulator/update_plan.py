"""What an update will do, planned before it runs: per resource, Add / Modify / Remove and whether it is replaced.

The rule is CloudFormation's: a resource whose changed properties include one of its type's
`createOnlyProperties` in the registry schema (the schemas cfn-lint ships) is replaced; any other
change modifies it in place
(https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html).
Properties are compared as they resolve (parameters, Ref, GetAtt, Sub...), before and after.

updates.py applies the same rules while it updates. Before the update runs (a change set,
ChangeSet.diff here), a value only the update makes is unknown: the ID of a resource being added or
replaced, an attribute of one modified in place other than its identity (Arn, ...Id, ...Name), a
nested stack's output its own plan cannot tell. A create-only property that takes such a value is
`Replacement: Conditional`, as is a change to one of the schema's `conditionalCreateOnlyProperties`.
With IncludeNestedStacks each nested stack gets its own change set (`ChangeSetId` on its change),
deleted with its parent's
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/change-sets-for-nested-stacks.html).
"""
from __future__ import annotations

import contextvars
import functools
import json
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import models as cfn
from moto.cloudformation import parsing

from . import REGION
from .deletion import needs
from .fixes.cloudformation import backend_of, reason_of
from .fixes.nested_stacks import _parameter_value

# Stands for a value that exists only once the update runs; Sub and Join keep it inside strings.
UNKNOWN = "{{emulator:known-after-update}}"
INCLUDE_NESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("include_nested", default=False)


# --- the schemas ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def schema(resource_type: str) -> dict:
    """The registry schema of a type (empty for custom resources and types cfn-lint does not know)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        return PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource_type).schema
    except Exception:  # ResourceNotFoundError: Custom::*, or a type newer than cfn-lint
        return {}


def _at(value: Any, parts: list[str]) -> list[Any]:
    """The values a schema property path (`/properties/A/*/B`, parts after `properties`) points at."""
    if not parts:
        return [value]
    head, rest = parts[0], parts[1:]
    if head == "*":
        return [found for item in (value if isinstance(value, list) else []) for found in _at(item, rest)]
    if isinstance(value, dict) and head in value:
        return _at(value[head], rest)
    return [None] if not rest else []


def _unknown(value: Any) -> bool:
    return UNKNOWN in json.dumps(value, default=str)


def replacement(resource_type: str, old: dict, new: dict) -> str:
    """'True', 'False' or 'Conditional': whether going from `old` to `new` properties replaces the resource."""
    described = schema(resource_type)
    conditional = False
    for path in described.get("createOnlyProperties", []):
        parts = path.split("/")[2:]
        before, after = _at(old, parts), _at(new, parts)
        if before != after:
            if not _unknown(after):
                return "True"
            conditional = True
    for path in described.get("conditionalCreateOnlyProperties", []):
        parts = path.split("/")[2:]
        if _at(old, parts) != _at(new, parts):
            conditional = True
    return "Conditional" if conditional else "False"


def requires_recreation(resource_type: str, name: str) -> str:
    described = schema(resource_type)
    for key, answer in (("createOnlyProperties", "Always"), ("conditionalCreateOnlyProperties", "Conditionally")):
        if any(path.split("/")[2:3] == [name] for path in described.get(key, [])):
            return answer
    return "Never"


def changed_properties(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if _comparable(k, old.get(k)) != _comparable(k, new.get(k))
                  or _unknown(new.get(k)))


def _comparable(name: str, value: Any) -> Any:
    """A nested stack's Parameters as CloudFormation passes them, every value a string: a Number parameter
    resolved as 1 from the new template is the "1" the stack was given, not a change."""
    if name == "Parameters" and isinstance(value, dict):
        return {k: v if _unknown(v) else _parameter_value(v) for k, v in value.items()}
    return value


# --- planning: the same walk for a change set and for the update ----------------------------------

@dataclass
class Step:
    name: str
    type: str
    action: str  # Add, Modify, Remove
    replacement: str = "False"  # True, False, Conditional
    changed: list[str] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)
    nested: Any = None  # a nested stack's own plan (change sets) or outcome


class StandIn:
    """A resource as a change set sees it: its ID (UNKNOWN when it is made anew) and attributes.

    A resource modified in place keeps its identity, so its ID-like attributes (`Arn`, `...Id`,
    `...Name`) are known; any other attribute (a launch template's LatestVersionNumber, say) may
    change and is UNKNOWN, as is a nested stack's output its own plan cannot tell.
    """

    IDENTITY = ("Arn", "Id", "Name")

    def __init__(self, physical_id: str, outputs: dict[str, Any] | None = None, kept: Any = None):
        self.physical_resource_id = physical_id
        self.outputs, self.kept = outputs, kept

    def get_cfn_attribute(self, attribute: str) -> Any:
        if attribute.startswith("Outputs."):
            return UNKNOWN if self.outputs is None else self.outputs.get(attribute[len("Outputs."):], UNKNOWN)
        if self.kept is not None and attribute.endswith(self.IDENTITY):
            return self.kept.get_cfn_attribute(attribute)
        return UNKNOWN


def order(resources: dict[str, dict]) -> list[str]:
    """Logical IDs, each after everything it refers to (Ref, GetAtt, Sub, DependsOn)."""
    depends = {name: needs(resource) & set(resources) - {name} for name, resource in resources.items()}
    done: list[str] = []
    while len(done) < len(resources):
        ready = [n for n in resources if n not in done and depends[n] <= set(done)]
        if not ready:
            raise cfn.ValidationError(message=f"Circular dependency between resources: "
                                              f"{sorted(set(resources) - set(done))}")
        done += ready
    return done


def existing(resource_map: parsing.ResourceMap) -> dict[str, Any]:
    """The resources a stack has made, by logical ID."""
    return {name: made for name, made in resource_map._parsed_resources.items()
            if name in resource_map._resource_json_map and made is not None and not isinstance(made, str)}


def resolved(resource_json: dict, resource_map: parsing.ResourceMap) -> dict:
    return parsing.clean_json(resource_json.get("Properties") or {}, resource_map)


def snapshot(stack: cfn.Stack) -> dict[str, dict]:
    """Each resource's properties as they resolve now, before anything changes."""
    resource_map = stack.resource_map
    made = existing(resource_map)
    return {name: resolved(resource_map._resource_json_map[name], resource_map) for name in made}


def _template_dict(template: str | dict) -> dict:
    return cfn.Stack.parse_template(template) if isinstance(template, str) else template


def _new_map(stack: cfn.Stack, template: dict, parameters: dict[str, Any]) -> parsing.ResourceMap:
    """A resource map of the new template and parameters that creates nothing (a change set's view)."""
    unknown = {k for k, v in parameters.items() if _unknown(v)}
    previous = stack.resource_map.input_parameters or {}
    known = {k: (previous.get(k) if k in unknown else v) for k, v in parameters.items()}
    known = {k: v for k, v in known.items() if v is not None}
    resource_map = parsing.ResourceMap(stack.stack_id, stack.name, known, stack.tags, stack.region_name,
                                       stack.account_id, template, stack.cross_stack_resources)
    resource_map.load()
    for name in unknown:  # a value another stack's update makes: known only once it runs
        resource_map.resolved_parameters[name] = resource_map._parsed_resources[name] = UNKNOWN
    return resource_map


def plan(stack: cfn.Stack, template: str | dict, parameters: dict[str, Any], nested: bool = False) -> list[Step]:
    """What updating `stack` to this template and these parameters would do, resource by resource."""
    template = _template_dict(template)
    before = snapshot(stack)
    made = existing(stack.resource_map)
    old_json = stack.resource_map._resource_json_map
    new_map = _new_map(stack, template, parameters)
    steps: list[Step] = []
    new_resources = template.get("Resources") or {}
    for name in order(new_resources):
        resource = new_resources[name]
        if resource.get("Condition") and not new_map.lazy_condition_map[resource["Condition"]]:
            continue
        kind = resource["Type"]
        if name not in made or old_json[name]["Type"] != kind:
            new_map._parsed_resources[name] = StandIn(UNKNOWN)
            step = Step(name, kind, "Add")
            if name in made:
                step = Step(name, kind, "Modify", "True", ["Type"])
            if nested and kind == "AWS::CloudFormation::Stack":
                step.nested = _nested_plan(stack, None, resolved(resource, new_map), nested)
            steps.append(step)
            continue
        after = resolved(resource, new_map)
        changed = changed_properties(before[name], after)
        if not changed:
            new_map._parsed_resources[name] = made[name]
            continue
        replaced = replacement(kind, before[name], after)
        step = Step(name, kind, "Modify", replaced, changed, _details(kind, changed, old_json[name], resource,
                                                                    before[name], after))
        outputs = None
        if kind == "AWS::CloudFormation::Stack" and replaced != "True":
            step.nested = _nested_plan(stack, made[name], after, nested)
            outputs = step.nested.outputs if step.nested is not None else None
        kept = made[name] if replaced == "False" else None
        new_map._parsed_resources[name] = StandIn(kept.physical_resource_id if kept else UNKNOWN, outputs, kept)
        steps.append(step)
    for name in made:
        resource = new_resources.get(name)
        dropped = resource is not None and resource.get("Condition") and not new_map.lazy_condition_map[
            resource["Condition"]]
        if resource is None or dropped:
            steps.append(Step(name, old_json[name]["Type"], "Remove"))
    steps_outputs = {}
    for key, output in (template.get("Outputs") or {}).items():
        if output.get("Condition") and not new_map.lazy_condition_map[output["Condition"]]:
            continue
        steps_outputs[key] = parsing.clean_json(output.get("Value"), new_map)
    return Plan(steps, steps_outputs)


class Plan(list):
    """Steps, and the stack's outputs as far as they are known before the update runs."""

    def __init__(self, steps: list[Step], outputs: dict[str, Any]):
        super().__init__(steps)
        self.outputs = outputs
        self.template: dict | None = None


def _nested_plan(parent: cfn.Stack, child: cfn.Stack | None, properties: dict, nested: bool) -> Plan | None:
    """A nested stack's own plan (its outputs predict what the parent reads); None when its template
    cannot be read before the update (an unknown URL)."""
    url = properties.get("TemplateURL")
    if not isinstance(url, str) or _unknown(url):
        return None
    text = cfn.get_stack_from_s3_url(url, account_id=parent.account_id, partition="aws")
    template = _template_dict(text)
    parameters = {k: _parameter_value(v) for k, v in (properties.get("Parameters") or {}).items()}
    if child is None:
        resources = template.get("Resources") or {}
        found = Plan([Step(name, resource["Type"], "Add") for name, resource in resources.items()], {})
    else:
        found = plan(child, template, parameters, nested)
    found.template = template
    return found


def _details(kind: str, changed: list[str], old_json: dict, new_json: dict, before: dict, after: dict) -> list[dict]:
    """ResourceChange.Details: per changed property, whether it recreates and what caused the change."""
    details = []
    for name in changed:
        raw_changed = (old_json.get("Properties") or {}).get(name) != (new_json.get("Properties") or {}).get(name)
        dynamic = _unknown(after.get(name))
        source = ("DirectModification" if raw_changed else
                  "ResourceAttribute" if dynamic else "ParameterReference")
        details.append({"Target": {"Attribute": "Properties", "Name": name,
                                   "RequiresRecreation": requires_recreation(kind, name)},
                        "Evaluation": "Dynamic" if dynamic else "Static", "ChangeSource": source})
    return details


# --- change sets -----------------------------------------------------------------------------------

class ResourceChange(cfn.Change):
    """A change as DescribeChangeSet lists it (moto's had Action, LogicalResourceId and ResourceType only)."""

    def __init__(self, step: Step, physical_id: str | None = None, change_set_id: str | None = None):
        super().__init__(step.action, step.name, step.type)
        self.replacement = step.replacement if step.action == "Modify" else None
        self.details = step.details
        self.scope = ["Properties"] if step.details else []
        self.physical_resource_id = physical_id
        self.change_set_id = change_set_id


def _diff(self: cfn.ChangeSet) -> list[cfn.Change]:
    """The change set's changes, planned as the update will run (and nested stacks' own change sets)."""
    self.nested_change_sets = []
    if self.change_set_type != "UPDATE":
        steps = [Step(name, resource["Type"], "Add")
                 for name, resource in (self.template_dict.get("Resources") or {}).items()]
        made: dict[str, Any] = {}
    else:
        try:
            steps = plan(self.stack, self.template_dict, self.parameters or {}, nested=True)
        except cfn.ValidationError:
            raise
        except Exception as error:  # a template the plan cannot read answers as CloudFormation would, not 500
            raise cfn.ValidationError(message=f"Template error: {reason_of(error)}") from error
        made = existing(self.stack.resource_map)
    changes = []
    for step in steps:
        nested_id = None
        if getattr(self, "include_nested", False) and step.type == "AWS::CloudFormation::Stack" and step.nested:
            nested_id = _nested_change_set(self, step, made.get(step.name))
        physical = getattr(made.get(step.name), "physical_resource_id", None)
        changes.append(ResourceChange(step, physical, nested_id))
    return changes


def _nested_change_set(parent: cfn.ChangeSet, step: Step, child: cfn.Stack | None) -> str:
    """A nested stack's change set, kept with (and deleted with) its parent's."""
    backend = backend_of(parent.stack.account_id, parent.stack.region_name)
    nested = cfn.ChangeSet.__new__(cfn.ChangeSet)
    nested.change_set_type = "UPDATE" if child is not None else "CREATE"
    nested.change_set_name = f"{parent.change_set_name}-{step.name}"
    nested.change_set_id = parent.change_set_id.rsplit("/", 1)[0] + "/" + nested.change_set_name
    nested.stack = child or parent.stack
    nested.stack_id = child.stack_id if child is not None else ""
    nested.stack_name = child.name if child is not None else ""
    nested.notification_arns, nested.description, nested.tags = [], None, parent.tags
    nested.role_arn, nested.parameters = parent.role_arn, {}
    nested.template_dict = step.nested.template or {}
    nested.template = json.dumps(nested.template_dict)
    nested.creation_time = parent.creation_time
    nested.status, nested.execution_status, nested.status_reason = "CREATE_COMPLETE", "AVAILABLE", None
    nested.nested_change_sets = []
    made = existing(child.resource_map) if child is not None else {}
    changes = []
    for inner in step.nested:
        inner_id = None
        if inner.type == "AWS::CloudFormation::Stack" and inner.nested:
            inner_id = _nested_change_set(nested, inner, made.get(inner.name))
        changes.append(ResourceChange(inner, getattr(made.get(inner.name), "physical_resource_id", None), inner_id))
    nested.changes = changes
    backend.change_sets[nested.change_set_id] = nested
    parent.nested_change_sets.append(nested.change_set_id)
    return nested.change_set_id


def _forget_nested(backend: cfn.CloudFormationBackend, change_set: cfn.ChangeSet) -> None:
    for nested_id in getattr(change_set, "nested_change_sets", []):
        inner = backend.change_sets.pop(nested_id, None)
        if inner is not None:
            _forget_nested(backend, inner)


def install() -> None:
    """CreateChangeSet's IncludeNestedStacks reaches the change set (moto read it nowhere)."""
    from moto.cloudformation import responses

    original = responses.CloudFormationResponse.create_change_set

    def request(self: Any) -> Any:
        token = INCLUDE_NESTED.set(self._get_bool_param("IncludeNestedStacks", False))
        try:
            return original(self)
        finally:
            INCLUDE_NESTED.reset(token)

    responses.CloudFormationResponse.create_change_set = request

    original_init = cfn.ChangeSet.__init__

    def init(self: cfn.ChangeSet, *args: Any, **kwargs: Any) -> None:
        self.include_nested = INCLUDE_NESTED.get()
        original_init(self, *args, **kwargs)

    cfn.ChangeSet.__init__ = init
