"""What CloudFormation and the service APIs refuse, refused here too, before moto creates anything.

Two layers, both run when CloudFormation resolves a resource's properties (moto's `parse_resource`, on
create and update), so a refusal fails that resource with CloudFormation's words and rolls its stack back:

- the resource type's registry schema (the copy cfn-lint ships): required properties, types, enums,
  patterns, lengths, minimum/maximum, item counts and unknown properties, checked on the resolved
  values, as CloudFormation's resource handlers do ("Properties validation failed for resource X with
  message: #/Path: failed validation constraint for keyword [pattern]",
  https://github.com/aws-cloudformation/cloudformation-resource-schema/issues/85,
  https://github.com/aws/serverless-application-model/issues/1699); and every `Fn::GetAtt` (and
  `${X.Attr}` in `Fn::Sub`) against the attributes the target's schema declares (readOnlyProperties);
- the checks a service's API makes across resources, which no schema can express: subnets, VPCs and
  Availability Zones, a container's memory against its task's, a target type against a network mode,
  a secret a task would read, an IAM policy's grammar, and the like. Each names its source.

CloudFormation turns a property given as a string into the number or boolean the schema asks for (and a
number into a string), so the types here are read that way; an `AWS::NoValue` or a property moto left
unresolved is not checked rather than refused.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Callable

import cfnlint
import jsonschema
import regex
from jsonschema import validators
from moto.cloudformation import parsing

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
REGION_INDEX = SCHEMAS / "providers" / "us-east-1.json"

class Refused(Exception):
    """A refusal of the schema layer or an API check; fixes/cloudformation.py makes it CREATE_FAILED with its reason."""

    def __init__(self, message: str, code: str = "InvalidRequest"):
        super().__init__(message)
        self.message, self.code = message, code


# --- the registry schemas -------------------------------------------------------------------------

@functools.cache
def _index() -> dict[str, str]:
    return json.loads(REGION_INDEX.read_text())


@functools.cache
def schema(resource_type: str) -> dict | None:
    """The registry schema of a type, or None (custom resources, types cfn-lint does not ship)."""
    digest = _index().get(resource_type)
    if digest is None:
        return None
    return json.loads((SCHEMAS / "resources" / f"{digest}.json").read_text())


def _is_integer(_checker: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()) is not None)


def _is_number(_checker: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str)


def _is_boolean(_checker: Any, value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false"))


def _is_string(_checker: Any, value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


_CHECKER = validators.Draft7Validator.TYPE_CHECKER.redefine_many({
    "integer": _is_integer, "number": _is_number, "boolean": _is_boolean, "string": _is_string,
})


def _numeric(keyword: str) -> Callable:
    """minimum / maximum (and their exclusive forms) on a number given as a string, as CloudFormation reads it."""
    original = validators.Draft7Validator.VALIDATORS[keyword]

    def check(validator: Any, bound: Any, instance: Any, schema_: dict) -> Any:
        if isinstance(instance, str):
            try:
                instance = float(instance)
            except ValueError:
                return
        yield from original(validator, bound, instance, schema_)

    return check


def _textual(keyword: str) -> Callable:
    """pattern and lengths on a scalar given where a string is asked for: CloudFormation reads it as its text."""
    original = validators.Draft7Validator.VALIDATORS[keyword]

    def check(validator: Any, bound: Any, instance: Any, schema_: dict) -> Any:
        if isinstance(instance, bool):
            instance = str(instance).lower()
        elif isinstance(instance, (int, float)):
            instance = str(instance)
        yield from original(validator, bound, instance, schema_)

    return check


@functools.cache
def _compiled(pattern: str) -> Any:
    """The registry's patterns are ECMA-262 regular expressions; some use Unicode classes (\\p{L}) that only the
    regex package (cfn-lint's own dependency) reads."""
    return regex.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema_: dict) -> Any:
    if isinstance(instance, bool):
        instance = str(instance).lower()
    elif isinstance(instance, (int, float)):
        instance = str(instance)
    if isinstance(instance, str) and not _compiled(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _enum(validator: Any, allowed: list, instance: Any, schema_: dict) -> Any:
    if instance in allowed or str(instance) in [str(a) for a in allowed]:
        return
    if isinstance(instance, bool) and str(instance).lower() in [str(a).lower() for a in allowed]:
        return
    yield jsonschema.ValidationError(f"{instance!r} is not one of {allowed!r}")


_Validator = validators.extend(validators.Draft7Validator, type_checker=_CHECKER, validators={
    "minimum": _numeric("minimum"), "maximum": _numeric("maximum"),
    "exclusiveMinimum": _numeric("exclusiveMinimum"), "exclusiveMaximum": _numeric("exclusiveMaximum"),
    "enum": _enum,
    "pattern": _pattern, "minLength": _textual("minLength"), "maxLength": _textual("maxLength"),
})


@functools.cache
def _validator(resource_type: str) -> Any | None:
    found = schema(resource_type)
    if found is None:
        return None
    return _Validator({k: v for k, v in found.items() if k != "$schema"})  # the registry's meta-schema is not draft-07


def _pointer(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return f"#/{path}" if path else "#"


SHOWN = ("pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
         "minItems", "maxItems")


def _message(error: jsonschema.ValidationError) -> str:
    """CloudFormation's wording for a schema refusal (the handler contract's validation messages)."""
    where = _pointer(error)
    if error.validator == "required":
        missing = re.match(r"'([^']+)'", error.message)
        return f"{where}: required key [{missing.group(1) if missing else error.message}] not found"
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message)
        return f"{where}: extraneous key [{extra[0] if extra else '?'}] is not permitted"
    if error.validator == "type":
        return f"{where}: expected type: {str(error.validator_value).title()}, found: {type(error.instance).__name__}"
    # CloudFormation names the keyword only; the bound or pattern is added here, as the schema states it.
    shown = error.validator in SHOWN and not isinstance(error.validator_value, (dict, list))
    suffix = f" ({error.validator_value})" if shown else ""
    return f"{where}: failed validation constraint for keyword [{error.validator}]{suffix}"


def _unresolved(value: Any) -> bool:
    """A value moto could not resolve (an intrinsic left as written): not ours to judge."""
    return isinstance(value, dict) and any(str(k).startswith("Fn::") or k == "Ref" for k in value)


def _relevant(error: jsonschema.ValidationError) -> bool:
    instance = error.instance
    if _unresolved(instance):
        return False
    # A schema branch (oneOf / anyOf) whose failures all come from unresolved values is not a refusal.
    if error.context:
        return all(_relevant(e) for e in error.context)
    return True


def without_novalue(value: Any) -> Any:
    """What CloudFormation passes on: AWS::NoValue (moto leaves None) removes the property or list item."""
    if isinstance(value, dict):
        return {k: without_novalue(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_novalue(v) for v in value if v is not None]
    return value


def check_schema(logical_id: str, resource_type: str, properties: dict) -> None:
    validator = _validator(resource_type)
    if validator is None:
        return
    errors = sorted((e for e in validator.iter_errors(without_novalue(properties)) if _relevant(e)),
                    key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))))
    if errors:
        raise Refused(f"Properties validation failed for resource {logical_id} with message: "
                      f"[{', '.join(_message(e) for e in errors[:3])}]", "ValidationError")


# --- Fn::GetAtt against the attributes a type has -------------------------------------------------

def attributes(resource_type: str) -> set[str] | None:
    """What Fn::GetAtt may read of a type, or None when any name goes (nested stacks' outputs, custom)."""
    if resource_type == "AWS::CloudFormation::Stack" or resource_type.startswith("Custom::") or \
            resource_type == "AWS::CloudFormation::CustomResource":
        return None
    found = schema(resource_type)
    if found is None:
        return None
    return {p[len("/properties/"):].replace("/", ".") for p in found.get("readOnlyProperties", [])}


def _getatts(value: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Fn::GetAtt":
                target = inner.split(".", 1) if isinstance(inner, str) else list(inner)
                if len(target) == 2 and isinstance(target[0], str) and isinstance(target[1], str):
                    found.append((target[0], target[1]))
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                local = set(inner[1]) if isinstance(inner, list) and len(inner) > 1 else set()
                if isinstance(text, str):
                    for name in re.findall(r"\$\{([^!}][^}]*)}", text):
                        if "." in name and name.split(".", 1)[0] not in local:
                            found.append(tuple(name.split(".", 1)))  # type: ignore[arg-type]
                found += _getatts(inner[1] if isinstance(inner, list) and len(inner) > 1 else None)
            else:
                found += _getatts(inner)
    elif isinstance(value, list):
        for inner in value:
            found += _getatts(inner)
    return found


def check_getatts(resource_json: dict, template_resources: dict) -> None:
    for target, attribute in _getatts(resource_json.get("Properties")):
        declared = template_resources.get(target)
        if declared is None:
            continue  # moto already refuses a GetAtt of a resource that is not there
        allowed = attributes(declared.get("Type", ""))
        if allowed is not None and attribute not in allowed:
            raise Refused(f"Template error: resource {target} does not support attribute type {attribute} "
                          "in Fn::GetAtt", "ValidationError")


# --- the hook -------------------------------------------------------------------------------------

API_CHECKS: dict[str, list[Callable[[str, dict, Any], None]]] = {}


def api_check(*resource_types: str) -> Callable:
    """Register a check a service's API makes when the resource is created or updated."""

    def register(function: Callable[[str, dict, Any], None]) -> Callable:
        for kind in resource_types:
            API_CHECKS.setdefault(kind, []).append(function)
        return function

    return register


def being_updated(logical_id: str, resources_map: Any) -> bool:
    """Whether CloudFormation is updating this resource (it exists in its stack) rather than creating it."""
    existing = getattr(resources_map, "_parsed_resources", {}).get(logical_id)
    return existing is not None and not isinstance(existing, (str, dict, list))


def check(logical_id: str, resource_json: dict, cleaned: dict, resources_map: Any) -> None:
    resource_type = resource_json["Type"]
    check_getatts(resource_json, getattr(resources_map, "_resource_json_map", {}) or {})
    properties = without_novalue(cleaned.get("Properties") or {})
    check_schema(logical_id, resource_type, properties)
    for function in API_CHECKS.get(resource_type, []):
        function(logical_id, properties, resources_map)


_installed = False


def install() -> None:
    """Wrap moto's parse_resource_and_generate_name (called on create and update, inside the event and rollback
    handling of fixes/cloudformation.py, so a refusal fails the resource with its reason and rolls the stack back)."""
    global _installed
    if _installed:
        return
    original = parsing.parse_resource_and_generate_name

    def parse_resource_and_generate_name(logical_id: str, resource_json: dict, resources_map: Any) -> Any:
        parsed = original(logical_id, resource_json, resources_map)
        if parsed is not None:
            check(logical_id, resource_json, parsed[1], resources_map)
        return parsed

    parsing.parse_resource_and_generate_name = parse_resource_and_generate_name
    from . import strict_api  # noqa: F401  (the API checks register themselves)

    _installed = True
