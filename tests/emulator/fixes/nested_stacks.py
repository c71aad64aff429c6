"""AWS::CloudFormation::Stack: nested stacks as CloudFormation makes, reports and deletes them.

moto 5.2.5 gives a nested stack no parent or root, its Ref is its name (CloudFormation's is the stack ARN), it
has no `Outputs.X` attribute, passes list and boolean parameters unconverted, lets a failed child leave its
parent CREATE_COMPLETE, compares parameters as the request's dicts, reports SSM parameters by their resolved
value only, and answers a missing TemplateURL with an AttributeError.
"""
from __future__ import annotations

import contextvars
from typing import Any, Callable

from moto.cloudformation import models as cfn
from moto.cloudformation import responses

from ..resources import EmulatorError
from . import FIXES, replace, replace_classmethod
from .cloudformation import ON_FAILURE, backend_of, failed_resources


PARENT: contextvars.ContextVar[cfn.Stack | None] = contextvars.ContextVar("parent_stack", default=None)


# ParentId and RootId, the root's tags on every nested stack, the root's OnFailure
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-nested-stacks.html
@replace(cfn.Stack, "__init__")
def _stack_init(original, self, *args, **kwargs):
    original(self, *args, **kwargs)
    self.resource_map.owner = self
    parent = PARENT.get()
    if parent is not None:  # a nested stack carries its root's tags, and passes them to its resources
        self.tags = {**parent.tags, **self.tags}
    self.parent_id = parent.stack_id if parent else None
    self.root_id = (parent.root_id or parent.stack_id) if parent else None
    # A nested stack fails as its root was told to; a change set's stack rolls back.
    self.on_failure = parent.on_failure if parent else ON_FAILURE.get()


# A nested stack that fails fails its parent's resource, with the child's reason
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-stack.html
@replace_classmethod(cfn.Stack, "create_from_cloudformation_json")
def _nested_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    backend = backend_of(account_id, region_name)
    parent = backend.stacks.get(kwargs.get("StackId")) or PARENT.get()
    properties = cloudformation_json["Properties"]
    properties["Parameters"] = {k: _parameter_value(v) for k, v in properties.get("Parameters", {}).items()}
    token = PARENT.set(parent)
    try:
        child = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    finally:
        PARENT.reset(token)
    if child.status != "CREATE_COMPLETE":
        names = ", ".join(failed_resources(child))
        if child.status == "ROLLBACK_COMPLETE":
            backend.delete_stack(child.stack_id)
        raise EmulatorError(f"Embedded stack {child.stack_id} was not successfully created: "
                            f"The following resource(s) failed to create: [{names}].")
    return child


# A nested stack's Ref and PhysicalResourceId are its stack ARN in CloudFormation; moto gives its name.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-stack.html
cfn.Stack.physical_resource_id = property(lambda self: self.stack_id)


def _parameter_list(self) -> list[dict]:
    """DescribeStacks' parameters as CloudFormation reports them: an SSM-typed parameter's value is the
    parameter name given (or defaulted), its resolved value apart; moto reports only the resolved one,
    which a caller passing the value back (as deploy tools do) would send as an SSM name."""
    declared = (self.resource_map._template or {}).get("Parameters") or {}
    given = self.resource_map.input_parameters or {}
    listed = []
    for key, value in self.resource_map.resolved_parameters.items():
        slot = declared.get(key, {})
        entry = {"ParameterKey": key, "ParameterValue": value}
        if str(slot.get("Type", "")).startswith("AWS::SSM::Parameter::"):
            entry = {"ParameterKey": key, "ParameterValue": given.get(key, slot.get("Default")), "ResolvedValue": value}
        if str(slot.get("NoEcho", "")).lower() == "true":
            entry["ParameterValue"] = "****"
        listed.append(entry)
    return listed


# ResolvedValue is the SSM parameter's value
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html
cfn.Stack.parameter_list = property(_parameter_list)


def _effective(declared: dict, given: dict) -> dict[str, str]:
    return {k: str(given.get(k, slot.get("Default"))) for k, slot in declared.items()}


# UsePreviousValue and defaults give the value the stack has
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html
@replace(cfn.Stack, "has_parameters")
def _has_parameters(original, self, other: dict) -> bool:
    """CloudFormation compares effective values: a parameter passed with its default value, or with
    the value it already has, is no change; moto compares the request's dicts."""
    declared = (self.resource_map._template or {}).get("Parameters") or {}
    return _effective(declared, self.resource_map.input_parameters or {}) == _effective(declared, other)


def _parameter_value(value: Any) -> Any:
    """A nested stack parameter as CloudFormation passes it: a list becomes a comma-joined string."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)


def _template_from_s3(original: Callable, template_url: str, account_id: str, partition: str) -> str:
    try:
        return original(template_url, account_id, partition)
    except Exception as error:  # moto answers a missing key with an AttributeError on None
        raise cfn.ValidationError(message=f"TemplateURL must reference a valid S3 object to which you have "
                                          f"access: {template_url}") from error


# TemplateURL
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
replace(cfn, "get_stack_from_s3_url")(_template_from_s3)
replace(responses, "get_stack_from_s3_url")(_template_from_s3)


# A nested stack whose delete fails fails its parent's delete
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-nested-stacks.html
@replace_classmethod(cfn.Stack, "delete_from_cloudformation_json")
def _nested_delete(original, cls, resource_name, cloudformation_json, account_id, region_name):
    backend = backend_of(account_id, region_name)
    original(resource_name, cloudformation_json, account_id, region_name)
    left = next((s for s in backend.stacks.values() if resource_name in (s.name, s.stack_id)), None)
    if left is not None and left.status == "DELETE_FAILED":
        raise EmulatorError(f"Embedded stack {left.stack_id} was not successfully deleted")


def _stack_attribute(self, attribute_name: str) -> Any:
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    if attribute_name.startswith("Outputs."):
        output = self.output_map.get(attribute_name[len("Outputs."):]) if self.output_map._output_json_map else None
        if output is None:
            raise EmulatorError(f"Stack {self.name} has no output {attribute_name[len('Outputs.'):]}")
        return output.value
    raise UnformattedGetAttTemplateException()


# GetAtt Child.Outputs.Name
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-stack.html
cfn.Stack.get_cfn_attribute = _stack_attribute
FIXES.append("Stack.get_cfn_attribute")
