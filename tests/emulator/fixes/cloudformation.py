"""CloudFormation's engine: events, failures, rollback, deletes, parameters, outputs, tags.

moto 5.2.5 writes no per-resource events, answers a failed create with a 500 mid-way and keeps the half-made
stack, drops a stack whose delete fails (with its resources), deletes in an order that changes from run to run,
takes any parameter value, works out outputs (and so creates resources) for a stack that failed or is gone, and
tags only EC2 resources with the stack's tags. Each replacement below does what CloudFormation does instead, so a
deploy on the emulator fails, rolls back and deletes the way one on AWS does.
"""
from __future__ import annotations

import contextvars
import json
import re
from typing import Any

from moto.cloudformation import models as cfn
from moto.cloudformation import parsing, responses

from .. import deletion
from . import FIXES, replace


class ResourceFailed(Exception):
    """A resource CloudFormation could not create; carries what the stack event says."""

    def __init__(self, logical_id: str, resource_type: str, reason: str):
        super().__init__(f"{logical_id} ({resource_type}): {reason}")
        self.logical_id, self.resource_type, self.reason = logical_id, resource_type, reason


def backend_of(account_id: str, region_name: str) -> cfn.CloudFormationBackend:
    return cfn.cloudformation_backends[account_id][region_name]


def owner_of(resources_map: parsing.ResourceMap) -> cfn.Stack | None:
    """The stack a resource map belongs to (also while moto has it out of its table, deleting it)."""
    return getattr(resources_map, "owner", None)


def resource_event(stack: cfn.Stack | None, logical_id: str, resource_type: str, status: str,
                   physical_id: str = "", reason: str | None = None, properties: str | None = None) -> None:
    if stack is None:
        return
    stack.events.append(cfn.Event(
        stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
        physical_resource_id=physical_id, resource_type=resource_type, resource_status=status,
        resource_status_reason=reason, resource_properties=properties,
    ))


def reason_of(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    code = getattr(error, "code", None) or getattr(error, "error_type", None)
    return f"{message} (Error: {code})" if code and str(code) not in message else message


# Each resource's CREATE_IN_PROGRESS / CREATE_COMPLETE / CREATE_FAILED event, with the failure's reason; moto writes the
# stack's events only
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html
@replace(parsing, "parse_and_create_resource")
def _create_resource(original, logical_id, resource_json, resources_map, account_id, region_name):
    stack = owner_of(resources_map)
    resource_type = resource_json["Type"]
    resource_event(stack, logical_id, resource_type, "CREATE_IN_PROGRESS")
    try:
        resource = original(logical_id, with_stack_tags(stack, logical_id, resource_json), resources_map, account_id,
                            region_name)
    except ResourceFailed as failure:
        if failure.logical_id != logical_id:  # a resource this one refers to failed first
            resource_event(stack, logical_id, resource_type, "CREATE_FAILED",
                           reason=f"Resource creation cancelled: {failure.logical_id} failed")
        else:
            resource_event(stack, logical_id, resource_type, "CREATE_FAILED", reason=failure.reason)
        raise
    except Exception as error:  # moto's own refusals, ours, or a KeyError on a missing property
        reason = reason_of(error)
        resource_event(stack, logical_id, resource_type, "CREATE_FAILED", reason=reason)
        raise ResourceFailed(logical_id, resource_type, reason) from error
    if resource_type not in parsing.NULL_MODELS and resource is None and resource_json.get("Condition") is None:
        reason = f"Resource type {resource_type} is not emulated"
        resource_event(stack, logical_id, resource_type, "CREATE_FAILED", reason=reason)
        raise ResourceFailed(logical_id, resource_type, reason)
    physical = getattr(resource, "physical_resource_id", "") or ""
    # Events carry the resolved properties, as CloudFormation's do (taskcat finds nested templates there).
    properties = json.dumps(parsing.clean_json(resource_json.get("Properties", {}), resources_map), default=str)
    resource_event(stack, logical_id, resource_type, "CREATE_COMPLETE", physical_id=str(physical),
                   properties=properties)
    return resource


# CloudFormation copies the stack's tags, and its own aws:cloudformation:stack-name, stack-id and
# logical-id, onto the resources it creates; moto does so for EC2 resources only. Done here for the
# types whose tags the lifecycle reads to prove what a deployment made.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-resource-tags.html
TAG_PROPERTY = {"AWS::KMS::Key": "Tags", "AWS::SecretsManager::Secret": "Tags",
                "AWS::EFS::FileSystem": "FileSystemTags", "AWS::ECS::TaskDefinition": "Tags"}


def with_stack_tags(stack: cfn.Stack | None, logical_id: str, resource_json: dict) -> dict:
    prop = TAG_PROPERTY.get(resource_json.get("Type", ""))
    if stack is None or prop is None:
        return resource_json
    properties = resource_json.get("Properties") or {}
    own = list(properties.get(prop) or [])
    written = {tag["Key"] for tag in own if isinstance(tag, dict)}
    added = {**stack.tags, "aws:cloudformation:stack-name": stack.name, "aws:cloudformation:stack-id": stack.stack_id,
             "aws:cloudformation:logical-id": logical_id}
    own += [{"Key": key, "Value": value} for key, value in added.items() if key not in written]
    return {**resource_json, "Properties": {**properties, prop: own}}


# Each resource's DELETE_COMPLETE / DELETE_FAILED event; one already gone counts as deleted
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html
@replace(parsing.ResourceMap, "_delete_resource")
def _delete_resource(original, self, parsed_resource, resource_json):
    stack = owner_of(self)
    logical_id = parsed_resource.logical_resource_id
    physical = str(getattr(parsed_resource, "physical_resource_id", "") or "")
    try:
        original(self, parsed_resource, resource_json)
    except NOT_FOUND:
        pass  # already gone: CloudFormation counts that as deleted
    except Exception as error:
        resource_event(stack, logical_id, resource_json["Type"], "DELETE_FAILED", physical, reason_of(error))
        raise
    resource_event(stack, logical_id, resource_json["Type"], "DELETE_COMPLETE", physical)


def _not_found_errors() -> tuple[type[BaseException], ...]:
    from moto.ec2 import exceptions as ec2_errors
    from moto.ecs import exceptions as ecs_errors
    from moto.elbv2 import exceptions as elbv2_errors
    from moto.servicediscovery import exceptions as sd_errors

    names = [
        (ec2_errors, "InvalidInternetGatewayIdError"), (ec2_errors, "InvalidRouteTableIdError"),
        (ec2_errors, "InvalidAssociationIdError"), (ec2_errors, "InvalidSecurityGroupNotFoundError"),
        (ec2_errors, "InvalidGatewayIDError"), (ec2_errors, "InvalidRouteError"),
        (ecs_errors, "ClusterNotFoundException"), (ecs_errors, "ServiceNotFoundException"),
        (ecs_errors, "TaskDefinitionNotFoundException"),
        (elbv2_errors, "TargetGroupNotFoundError"), (elbv2_errors, "ListenerNotFoundError"),
        (sd_errors, "NamespaceNotFound"), (sd_errors, "ServiceNotFound"),
    ]
    return tuple(getattr(module, name) for module, name in names)


NOT_FOUND = _not_found_errors()


def failed_resources(stack: cfn.Stack) -> list[str]:
    return list(dict.fromkeys(e.logical_resource_id for e in stack.events
                              if e.resource_status == "CREATE_FAILED" and e.logical_resource_id != stack.name))


# A failed create rolls back what it made and ends ROLLBACK_COMPLETE; moto answered 500 mid-way
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html
def roll_back(stack: cfn.Stack, failure: ResourceFailed) -> None:
    """What CloudFormation does when a create fails: delete what was made, end ROLLBACK_COMPLETE."""
    stack.status = "ROLLBACK_IN_PROGRESS"
    names = ", ".join(failed_resources(stack)) or failure.logical_id
    stack._add_stack_event("ROLLBACK_IN_PROGRESS",
                           resource_status_reason=f"The following resource(s) failed to create: [{names}]. "
                                                  "Rollback requested by user.")
    created = {k for k, v in stack.resource_map._parsed_resources.items()
               if k in stack.resource_map._resource_json_map and not isinstance(v, str) and v is not None}
    # Only what was created goes; the rest of the template is out of the map's view.
    json_map = stack.resource_map._resource_json_map
    stack.resource_map._resource_json_map = {k: json_map[k] for k in created}
    try:
        stack.resource_map.delete()
    except Exception as error:
        stack.status = "ROLLBACK_FAILED"
        stack._add_stack_event("ROLLBACK_FAILED", resource_status_reason=reason_of(error))
    else:
        stack.status = "ROLLBACK_COMPLETE"
        stack._add_stack_event("ROLLBACK_COMPLETE")
    finally:
        stack.resource_map._resource_json_map = json_map


ON_FAILURE: contextvars.ContextVar[str] = contextvars.ContextVar("on_failure", default="ROLLBACK")


# OnFailure ROLLBACK / DO_NOTHING / DELETE, or DisableRollback
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
@replace(responses.CloudFormationResponse, "create_stack")
def _create_stack_request(original, self):
    """CreateStack's OnFailure / DisableRollback, which moto reads but never applies."""
    choice = self._get_param("OnFailure") or ("DO_NOTHING" if self._get_bool_param("DisableRollback") else "ROLLBACK")
    token = ON_FAILURE.set(choice)
    try:
        return original(self)
    finally:
        ON_FAILURE.reset(token)


@replace(cfn.Stack, "create_resources")
def _create_resources(original, self):
    try:
        original(self)
    except ResourceFailed as failure:
        if self.on_failure == "DO_NOTHING":
            self.status = "CREATE_FAILED"
            self._add_stack_event("CREATE_FAILED", resource_status_reason=(
                f"The following resource(s) failed to create: [{', '.join(failed_resources(self))}]. "))
            return
        roll_back(self, failure)
        if self.on_failure == "DELETE" and self.status == "ROLLBACK_COMPLETE":
            backend_of(self.account_id, self.region_name).delete_stack(self.stack_id)


# A change set executes once, from AVAILABLE, and a failed one leaves EXECUTE_FAILED
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html
@replace(cfn.CloudFormationBackend, "execute_change_set")
def _execute_change_set(original, self, change_set_name, stack_name=None):
    change_set = self.describe_change_set(change_set_name)
    stack = self.stacks[change_set.stack_id]
    if change_set.execution_status != "AVAILABLE":
        raise cfn.ValidationError(stack.stack_id, f"ChangeSet [{change_set.change_set_id}] cannot be executed "
                                                  f"in its current execution status of [{change_set.execution_status}]")
    try:
        original(self, change_set_name, stack_name)
    except ResourceFailed as failure:
        change_set.execution_status = "EXECUTE_FAILED"
        stack.template = change_set.template
        stack.template_dict = change_set.template_dict
        if change_set.change_set_type == "CREATE":
            stack.events = [e for e in stack.events if e.resource_status != "CREATE_COMPLETE"
                            or e.logical_resource_id != stack.name]
            roll_back(stack, failure)
        else:
            stack.status = "UPDATE_ROLLBACK_FAILED"
            stack._add_stack_event("UPDATE_ROLLBACK_FAILED", resource_status_reason=failure.reason)
        return
    # A stack made by a change set was built from an empty template: its outputs come from the new one.
    stack.template_dict = change_set.template_dict
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()


# A delete that fails leaves the stack DELETE_FAILED with what it could not delete; moto dropped both
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html
@replace(cfn.CloudFormationBackend, "delete_stack")
def _delete_stack(original, self, name_or_stack_id):
    stack = next((s for s in self.stacks.values() if name_or_stack_id in (s.name, s.stack_id)), None)
    if stack is None:
        return  # deleting a stack that is gone succeeds, as in CloudFormation
    try:
        original(self, stack.stack_id)
    except Exception as error:
        # moto popped the stack and forgot its resources; CloudFormation keeps it, DELETE_FAILED.
        self.deleted_stacks.pop(stack.stack_id, None)
        self.stacks[stack.stack_id] = stack
        stack.status = "DELETE_FAILED"
        stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason_of(error))


# Dependents first, and RetainExceptOnCreate kept except by the rollback of the create that made it
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html
@replace(parsing.ResourceMap, "delete")
def _delete_all(original, self):
    stack = owner_of(self)
    # RetainExceptOnCreate: kept when its stack is deleted, deleted when the create that made it
    # rolls back (here, or in the root whose rollback deletes this nested stack). moto knows Retain only.
    rolling_back = stack is not None and any(
        s is not None and s.status.startswith("ROLLBACK") for s in (stack, _root_of(stack)))
    chosen = {}
    for name, resource in self._resource_json_map.items():
        if resource.get("DeletionPolicy") == "RetainExceptOnCreate":
            chosen[name] = resource
            resource["DeletionPolicy"] = "Delete" if rolling_back else "Retain"
    if stack is not None and not rolling_back:
        stack.status = "DELETE_IN_PROGRESS"
    try:
        deletion.delete_in_order(self)  # instead of moto's loop, whose order changes from run to run
    finally:
        for resource in chosen.values():
            resource["DeletionPolicy"] = "RetainExceptOnCreate"


def _root_of(stack: cfn.Stack) -> cfn.Stack | None:
    backend = backend_of(stack.account_id, stack.region_name)
    return backend.stacks.get(stack.root_id) if getattr(stack, "root_id", None) else None


# AllowedValues, AllowedPattern, lengths and number bounds
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
@replace(parsing.ResourceMap, "load_parameters")
def _load_parameters(original, self):
    """CloudFormation refuses a parameter value outside its declared constraints; moto takes anything."""
    original(self)
    for name, declared in (self._template.get("Parameters") or {}).items():
        problem = parameter_problem(declared, self.resolved_parameters.get(name))
        if problem:
            raise cfn.ValidationError(message=f"Parameter '{name}' {problem}")


def parameter_problem(declared: dict, value: Any) -> str | None:
    """Why value breaks the parameter's declared constraints, or None.

    For AllowedValues and AllowedPattern, a ConstraintDescription is what CloudFormation says
    ("Parameter InstanceType failed to satisfy constraint: must be a valid EC2 instance type.",
    https://www.reddit.com/r/aws/comments/io6img/how_to_allow_more_instance_types_in_cloudformation/);
    without one, its own sentence ("must be one of AllowedValues",
    https://github.com/aws-amplify/amplify-cli/issues/6224).
    """
    kind = declared.get("Type", "String")
    if value is None or kind.startswith("AWS::SSM::") or kind.startswith("List") or kind == "CommaDelimitedList":
        return None
    text = str(value)
    described = declared.get("ConstraintDescription")
    if "AllowedValues" in declared and text not in map(str, declared["AllowedValues"]):
        return f"failed to satisfy constraint: {described}" if described else "must be one of AllowedValues"
    if "AllowedPattern" in declared and not re.fullmatch(declared["AllowedPattern"], text):
        return f"failed to satisfy constraint: {described or 'must match pattern ' + declared['AllowedPattern']}"
    if "MaxLength" in declared and len(text) > int(declared["MaxLength"]):
        return f"must contain at most {declared['MaxLength']} characters"
    if "MinLength" in declared and len(text) < int(declared["MinLength"]):
        return f"must contain at least {declared['MinLength']} characters"
    if kind == "Number":
        try:
            number = float(text)
        except ValueError:
            return "must be a number"
        if "MinValue" in declared and number < float(declared["MinValue"]):
            return f"must be a number not less than {declared['MinValue']}"
        if "MaxValue" in declared and number > float(declared["MaxValue"]):
            return f"must be a number not greater than {declared['MaxValue']}"
    return None


# DescribeStacks' Outputs are a standing stack's
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html
SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
_outputs = cfn.Stack.outputs.fget
# Only a stack that stands has outputs; working them out for a failed or deleted one would make moto
# create the resources they refer to, on the spot.
cfn.Stack.outputs = property(lambda self: _outputs(self) if self.status in SETTLED else None)
FIXES.append("Stack.outputs")


# Deleting or rolling back makes nothing
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html
@replace(parsing.ResourceMap, "__getitem__")
def _resource(original, self, key):
    stack = owner_of(self)
    if stack is not None and stack.status.startswith(("DELETE", "ROLLBACK")) and key not in self._parsed_resources:
        raise KeyError(key)  # a stack being (or already) removed never creates anything
    return original(self, key)


# A stack's resources are the ones it made: never create one lazily because somebody listed them.
cfn.Stack.stack_resources = property(lambda self: [
    resource for key, resource in self.resource_map._parsed_resources.items()
    if key in self.resource_map._resource_json_map and resource is not None and not isinstance(resource, str)
])
FIXES.append("Stack.stack_resources")
