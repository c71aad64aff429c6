"""A template's Rules, evaluated as CloudFormation evaluates them: before anything is created or changed.

"The Rules section ... contains rule functions that validate parameter values before CloudFormation
creates or updates any resources"; a rule's assertions apply when its RuleCondition holds (always
without one), and "if a parameter value isn't valid, CloudFormation doesn't create or update the
stack":
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-rules.html

Before the rules, each parameter value is checked against its own constraints (AllowedValues,
AllowedPattern, MinLength/MaxLength, MinValue/MaxValue), which CloudFormation also does when the
request arrives, so an out-of-range value is refused at CreateChangeSet with "Parameter 'X' must be
one of AllowedValues" (or the constraint's own sentence), not once the change set runs
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html;
the wording as users quote it: https://github.com/aws-amplify/amplify-cli/issues/6224,
https://github.com/aws/aws-sam-cli/issues/6511).

CreateStack, UpdateStack and CreateChangeSet are checked against the parameter values the stack
would get (given, previous with UsePreviousValue, else the default). The first assertion that does
not hold refuses the request with ValidationError and its AssertDescription as the whole message,
and nothing exists afterwards: no stack, not even the REVIEW_IN_PROGRESS one a CREATE change set
makes (the same shape other emulators implement from those pages, e.g.
https://github.com/ministackorg/ministack/pull/1661). moto 5.2.5 ignores the section.

Evaluated: Fn::And, Fn::Or (2 to 10 conditions), Fn::Not, Fn::Equals, Fn::Contains,
Fn::EachMemberEquals, Fn::EachMemberIn, and Ref to a parameter (a list for list types, the resolved
value for SSM types) or to AWS::Region, AWS::AccountId, AWS::Partition, AWS::URLSuffix and
AWS::StackName. Fn::RefAll, Fn::ValueOf and Fn::ValueOfAll read the account's resources (every VPC
ID, a subnet's zone, a tag): they are not emulated, and a template using them is refused with a
message that says so, never waved through.
"""
from __future__ import annotations

from typing import Any, Callable

Value = Any  # a string, a list of strings, or a bool (what a condition evaluates to)

NOT_EMULATED = ("Fn::RefAll", "Fn::ValueOf", "Fn::ValueOfAll")
LIST_TYPES = ("CommaDelimitedList", "List<")


class RuleError(Exception):
    """A request the rules refuse; the message is what CloudFormation answers (ValidationError)."""


def failing(template: dict, values: dict[str, Value]) -> str | None:
    """The AssertDescription of the first assertion that does not hold, or None when every rule holds.

    `values` maps parameter names and pseudo parameters to what Ref gives. Raises RuleError for a
    malformed section or a function this module does not evaluate.
    """
    rules = template.get("Rules") or {}
    if not isinstance(rules, dict):
        raise RuleError("Template format error: Rules must be a map of rule names to rules")
    for name, rule in rules.items():
        if not isinstance(rule, dict) or not isinstance(rule.get("Assertions"), list) or not rule["Assertions"]:
            raise RuleError(f"Template format error: rule {name} needs a list of Assertions")
        unknown = set(rule) - {"RuleCondition", "Assertions"}
        if unknown:
            raise RuleError(f"Template format error: rule {name} has unknown keys {sorted(unknown)}")
        if "RuleCondition" in rule and not _condition(rule["RuleCondition"], values, name):
            continue  # "If the condition evaluates to false, CloudFormation doesn't check the parameter value"
        for assertion in rule["Assertions"]:
            if not isinstance(assertion, dict) or "Assert" not in assertion:
                raise RuleError(f"Template format error: every assertion of rule {name} needs an Assert")
            if not _condition(assertion["Assert"], values, name):
                return assertion.get("AssertDescription") or f"Rule {name} does not hold"
    return None


def _condition(expression: Any, values: dict[str, Value], rule: str) -> bool:
    result = evaluate(expression, values, rule)
    if not isinstance(result, bool):
        raise RuleError(f"Template format error: rule {rule}: a condition or assertion must evaluate to true or "
                        f"false, not {result!r}")
    return result


def evaluate(expression: Any, values: dict[str, Value], rule: str = "?") -> Value:
    """One rule expression's value."""
    if isinstance(expression, bool):
        return expression
    if isinstance(expression, (str, int, float)):
        return str(expression)
    if isinstance(expression, list):
        return [_scalar(evaluate(item, values, rule), rule) for item in expression]
    if not isinstance(expression, dict) or len(expression) != 1:
        raise RuleError(f"Template format error: rule {rule}: {expression!r} is not a rule function")
    ((function, argument),) = expression.items()
    if function == "Ref":
        if argument not in values:
            raise RuleError(f"Template format error: rule {rule} refers to {argument}, which is not a parameter")
        if values[argument] is None:
            raise RuleError(f"Parameters: [{argument}] must have values")
        return values[argument]
    if function in NOT_EMULATED:
        raise RuleError(f"rule {rule}: {function} reads the account's resources and is not emulated; "
                        "the emulator cannot say whether this rule holds")
    implementation = FUNCTIONS.get(function)
    if implementation is None:
        raise RuleError(f"Template format error: rule {rule}: {function} is not a rule function")
    return implementation(argument, values, rule)


def _scalar(value: Value, rule: str) -> str:
    if not isinstance(value, str):
        raise RuleError(f"Template format error: rule {rule}: {value!r} where a string belongs")
    return value


def _strings(value: Value, rule: str) -> list[str]:
    if not isinstance(value, list):
        raise RuleError(f"Template format error: rule {rule}: {value!r} where a list of strings belongs")
    return value


def _arguments(argument: Any, count: int, function: str, rule: str) -> list:
    if not isinstance(argument, list) or len(argument) != count:
        raise RuleError(f"Template format error: rule {rule}: {function} takes a list of {count}")
    return argument


def _conditions(argument: Any, function: str, values: dict[str, Value], rule: str) -> list[bool]:
    if not isinstance(argument, list) or not 2 <= len(argument) <= 10:
        raise RuleError(f"Template format error: rule {rule}: {function} takes 2 to 10 conditions")
    return [_condition(item, values, rule) for item in argument]


def _and(argument: Any, values: dict[str, Value], rule: str) -> bool:
    return all(_conditions(argument, "Fn::And", values, rule))


def _or(argument: Any, values: dict[str, Value], rule: str) -> bool:
    return any(_conditions(argument, "Fn::Or", values, rule))


def _not(argument: Any, values: dict[str, Value], rule: str) -> bool:
    (condition,) = _arguments(argument, 1, "Fn::Not", rule)
    return not _condition(condition, values, rule)


def _equals(argument: Any, values: dict[str, Value], rule: str) -> bool:
    left, right = (evaluate(item, values, rule) for item in _arguments(argument, 2, "Fn::Equals", rule))
    return left == right


def _contains(argument: Any, values: dict[str, Value], rule: str) -> bool:
    strings, string = _arguments(argument, 2, "Fn::Contains", rule)
    return _scalar(evaluate(string, values, rule), rule) in _strings(evaluate(strings, values, rule), rule)


def _each_member_equals(argument: Any, values: dict[str, Value], rule: str) -> bool:
    strings, string = _arguments(argument, 2, "Fn::EachMemberEquals", rule)
    wanted = _scalar(evaluate(string, values, rule), rule)
    return all(member == wanted for member in _strings(evaluate(strings, values, rule), rule))


def _each_member_in(argument: Any, values: dict[str, Value], rule: str) -> bool:
    checked, allowed = (_strings(evaluate(item, values, rule), rule)
                        for item in _arguments(argument, 2, "Fn::EachMemberIn", rule))
    return all(member in allowed for member in checked)


FUNCTIONS: dict[str, Callable[[Any, dict[str, Value], str], Value]] = {
    "Fn::And": _and, "Fn::Or": _or, "Fn::Not": _not, "Fn::Equals": _equals, "Fn::Contains": _contains,
    "Fn::EachMemberEquals": _each_member_equals, "Fn::EachMemberIn": _each_member_in,
}


# --- the values a stack would get, and the hook into moto ------------------------------------------

def parameter_values(template: dict, given: dict[str, str], resolve_ssm: Callable[[str], str]) -> dict[str, Value]:
    """What Ref gives for each declared parameter: the given value, else the default (None: neither)."""
    found: dict[str, Value] = {}
    for name, declared in (template.get("Parameters") or {}).items():
        value = given.get(name, declared.get("Default"))
        kind = str(declared.get("Type", "String"))
        if value is not None:
            value = str(value)
            if kind.startswith("AWS::SSM::Parameter::Value<"):
                value = resolve_ssm(value)
                kind = kind[len("AWS::SSM::Parameter::Value<"):-1]
            if kind.startswith(LIST_TYPES) or kind == "CommaDelimitedList":
                value = [item.strip() for item in value.split(",")] if value else []
        found[name] = value
    return found


def check(backend: Any, template: str | dict, given: dict[str, str], stack_name: str) -> None:
    """Raise moto's ValidationError with CloudFormation's answer when a parameter's constraints or a
    rule refuse these values."""
    from moto.cloudformation import models as cfn
    from moto.ssm.models import ssm_backends

    from .fixes.cloudformation import parameter_problem

    parsed = cfn.Stack.parse_template(template) if isinstance(template, str) else template
    if not isinstance(parsed, dict):
        return
    for name, declared in (parsed.get("Parameters") or {}).items():
        problem = parameter_problem(declared, (given or {}).get(name, declared.get("Default")))
        if problem:
            raise cfn.ValidationError(message=f"Parameter '{name}' {problem}")
    if not parsed.get("Rules"):
        return
    ssm = ssm_backends[backend.account_id][backend.region_name]
    values = {
        "AWS::Region": backend.region_name, "AWS::AccountId": backend.account_id, "AWS::StackName": stack_name,
        "AWS::Partition": "aws-cn" if backend.region_name.startswith("cn-") else "aws",
        "AWS::URLSuffix": "amazonaws.com.cn" if backend.region_name.startswith("cn-") else "amazonaws.com",
    }
    try:
        values.update(parameter_values(parsed, given or {}, lambda name: ssm.get_parameter(name).value))
        refusal = failing(parsed, values)
    except RuleError as error:
        raise cfn.ValidationError(message=str(error)) from None
    if refusal is not None:
        raise cfn.ValidationError(message=refusal)


def install() -> None:
    """Check the rules on CreateStack, UpdateStack and CreateChangeSet, before moto acts on them."""
    from moto.cloudformation import models as cfn

    backend = cfn.CloudFormationBackend
    create_stack, update_stack, create_change_set = (
        backend.create_stack, backend.update_stack, backend.create_change_set)

    def create(self: Any, name: str, template: str, parameters: dict[str, str], *args: Any, **kwargs: Any) -> Any:
        check(self, template, parameters, name)
        return create_stack(self, name, template, parameters, *args, **kwargs)

    def update(self: Any, name: str, template: str, role_arn: str | None, parameters: list[dict[str, Any]],
               tags: dict[str, str] | None) -> Any:
        # A parameter left out of UpdateStack takes its default, one with UsePreviousValue the stack's value.
        check(self, template, self._resolve_update_parameters(self.get_stack(name), parameters), name)
        return update_stack(self, name, template, role_arn, parameters, tags)

    def change_set(self: Any, stack_name: str, change_set_name: str, template: str, parameters: dict[str, str],
                   *args: Any, **kwargs: Any) -> Any:
        check(self, template, parameters, stack_name)  # UsePreviousValue is resolved by the request handler
        return create_change_set(self, stack_name, change_set_name, template, parameters, *args, **kwargs)

    backend.create_stack, backend.update_stack, backend.create_change_set = create, update, change_set
