"""The root template's Rules, checked before deploy or diff creates, uploads or builds anything.

CloudFormation evaluates a template's Rules when it is given the parameters, at CreateChangeSet,
and refuses the change set with the failing rule's AssertDescription:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html
deploy makes the root's change set last, after the templates bucket, the registry stack and the
images: a refused combination would have made or built those first. So deploy and diff evaluate
the same Rules against the parameters they are about to pass, and stop with the rule's own words
(exit 2: the parameters are the user's input). CloudFormation still evaluates them and stays the
authority: a rule this module cannot decide (one that reads the account with Fn::RefAll,
Fn::ValueOf or Fn::ValueOfAll, or a Ref to an SSM-typed parameter, which CloudFormation resolves)
is left to it.
"""
from __future__ import annotations

from typing import Any


class Undecided(Exception):
    """A rule expression only CloudFormation can evaluate."""


def refusal(template: dict, parameters: dict[str, str]) -> str | None:
    """The AssertDescription of the first rule these parameter values break, or None."""
    values = _values(template, parameters)
    for name, rule in (template.get("Rules") or {}).items():
        try:
            if "RuleCondition" in rule and not _value(rule["RuleCondition"], values):
                continue
            for assertion in rule["Assertions"]:
                if not _value(assertion["Assert"], values):
                    return assertion.get("AssertDescription") or f"the template's rule {name} refuses these values"
        except Undecided:
            continue
    return None


def _values(template: dict, given: dict[str, str]) -> dict[str, Any]:
    """What Ref gives each parameter: the value passed, else the default; a list for list types."""
    found: dict[str, Any] = {}
    for name, declared in (template.get("Parameters") or {}).items():
        value, kind = given.get(name, declared.get("Default")), str(declared.get("Type", "String"))
        if value is None or kind.startswith("AWS::SSM::"):
            continue  # no value (CloudFormation refuses that itself) or resolved by CloudFormation
        found[name] = [v.strip() for v in str(value).split(",")] if kind.startswith(("List<", "CommaDelimited")) \
            else str(value)
    return found


def _value(expression: Any, values: dict[str, Any]) -> Any:
    if isinstance(expression, bool):
        return expression
    if isinstance(expression, (str, int, float)):
        return str(expression)
    if isinstance(expression, list):
        return [_value(item, values) for item in expression]
    ((function, argument),) = expression.items()
    if function == "Ref":
        if argument not in values:
            raise Undecided(argument)
        return values[argument]
    args = [_value(item, values) for item in (argument if isinstance(argument, list) else [argument])]
    if function == "Fn::Equals":
        return args[0] == args[1]
    if function == "Fn::Not":
        return not args[0]
    if function == "Fn::And":
        return all(args)
    if function == "Fn::Or":
        return any(args)
    if function == "Fn::Contains":
        return args[1] in args[0]
    if function == "Fn::EachMemberEquals":
        return all(member == args[1] for member in args[0])
    if function == "Fn::EachMemberIn":
        return all(member in args[1] for member in args[0])
    raise Undecided(function)
