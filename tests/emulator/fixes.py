"""Where stock moto 5.2.5 behaves unlike AWS with our templates, made to behave like AWS.

Each fix wraps or replaces one moto function at import time; moto's files are not edited. The
list follows ../shared/reference/emulator-notes.md:

- nested stacks: `GetAtt Child.Outputs.X`, ParentId/RootId, a failed child fails its parent, the
  root's tags (updates.py updates them in place);
- stack tags and CloudFormation's aws:cloudformation:* tags on the kept data's KMS key, secrets and
  EFS file system (moto tags only EC2 resources);
- a failed create rolls back (ROLLBACK_COMPLETE) instead of answering 500 mid-way;
- a failed delete leaves the stack DELETE_FAILED instead of dropping it with its resources;
- a stack's resources are deleted dependents first (deletion.py), not in moto's changing order;
- per-resource stack events, as CloudFormation writes them;
- listing a stack's resources never re-creates deleted ones;
- ECS cluster, task definition and service keep the properties the templates set;
- IAM roles get their ManagedPolicyArns; security groups get their egress rules;
- the deletes moto leaves out (gateway, routes, ECS, target groups, listeners and their rules, ingress rules);
- ListClusters/ListServices leave out INACTIVE records; DescribeCapacityProviders without names;
- a VPC takes a second Cloud Map namespace of another name (a renamed namespace is made before the old goes).
"""
from __future__ import annotations

import contextvars
import functools
import json
import re
from typing import Any, Callable

from moto.autoscaling import models as autoscaling
from moto.cloudformation import models as cfn
from moto.cloudformation import parsing, responses
from moto.ec2 import models as ec2
from moto.ec2.models import instances, internet_gateways, route_tables, security_groups, subnets, vpcs, vpn_gateway
from moto.ecr import models as ecr
from moto.ecs import models as ecs
from moto.efs import models as efs
from moto.elbv2 import models as elbv2
from moto.kms import models as kms
from moto.logs import models as logs
from moto.iam import access_control
from moto.iam import models as iam
from moto.servicediscovery import models as servicediscovery
from moto.utilities.utils import get_partition

from . import deletion
from .resources import EmulatorError, InvalidParameter, ResourceInUse, camel, ecs_tags, egress_rule, ingress_rule

FIXES: list[str] = []


def add(owner: Any, name: str) -> Callable:
    """Give owner a method it lacks (a delete moto never wrote)."""

    def decorate(function: Callable) -> Callable:
        setattr(owner, name, function)
        FIXES.append(f"{owner.__name__}.{name}")
        return function

    return decorate


def replace_classmethod(owner: Any, name: str) -> Callable:
    """Replace a classmethod; the replacement gets the original bound classmethod first."""
    original = owner.__dict__[name]

    def decorate(replacement: Callable) -> Callable:
        def method(cls: Any, *args: Any, **kwargs: Any) -> Any:
            return replacement(original.__get__(None, cls), cls, *args, **kwargs)

        setattr(owner, name, classmethod(method))
        FIXES.append(f"{owner.__name__}.{name}")
        return replacement

    return decorate


def replace(owner: Any, name: str) -> Callable:
    """Replace a plain function or method; the replacement gets the original first."""
    original = getattr(owner, name)

    def decorate(replacement: Callable) -> Callable:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return replacement(original, *args, **kwargs)

        setattr(owner, name, wrapper)
        FIXES.append(f"{getattr(owner, '__name__', owner)}.{name}")
        return replacement

    return decorate


# --- CloudFormation: events, failures, rollback --------------------------------------------------

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


SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
_outputs = cfn.Stack.outputs.fget
# Only a stack that stands has outputs; working them out for a failed or deleted one would make moto
# create the resources they refer to, on the spot.
cfn.Stack.outputs = property(lambda self: _outputs(self) if self.status in SETTLED else None)
FIXES.append("Stack.outputs")


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


# --- Nested stacks --------------------------------------------------------------------------------

PARENT: contextvars.ContextVar[cfn.Stack | None] = contextvars.ContextVar("parent_stack", default=None)


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


cfn.Stack.parameter_list = property(_parameter_list)


def _effective(declared: dict, given: dict) -> dict[str, str]:
    return {k: str(given.get(k, slot.get("Default"))) for k, slot in declared.items()}


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


replace(cfn, "get_stack_from_s3_url")(_template_from_s3)
replace(responses, "get_stack_from_s3_url")(_template_from_s3)


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


cfn.Stack.get_cfn_attribute = _stack_attribute
FIXES.append("Stack.get_cfn_attribute")


# --- Cloud Map ----------------------------------------------------------------------------------

@replace(servicediscovery.ServiceDiscoveryBackend, "create_private_dns_namespace")
def _private_namespace(original, self, name, creator_request_id, description, vpc, tags, properties):
    """A private namespace is a Route 53 private hosted zone, refused (ConflictingDomainExists) only when
    "a hosted zone with the specified name already exists and is already associated with the Amazon VPC"
    (https://docs.aws.amazon.com/Route53/latest/APIReference/API_CreateHostedZone.html); moto refused any
    second namespace on a VPC."""
    from moto.servicediscovery.exceptions import ConflictingDomainExists

    if any(n.vpc == vpc and n.name == name for n in self.namespaces.values()):
        raise ConflictingDomainExists(vpc)
    others = {key: n for key, n in self.namespaces.items() if n.vpc == vpc}
    for key in others:
        del self.namespaces[key]
    try:
        return original(self, name, creator_request_id, description, vpc, tags, properties)
    finally:
        self.namespaces.update(others)


# --- ECS -----------------------------------------------------------------------------------------

def _ecs(account_id: str, region_name: str) -> ecs.EC2ContainerServiceBackend:
    return ecs.ecs_backends[account_id][region_name]


@replace_classmethod(ecs.Cluster, "create_from_cloudformation_json")
def _cluster_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    backend = _ecs(account_id, region_name)
    existing = backend.clusters.get(resource_name)
    if existing is not None and existing.status == "ACTIVE":
        raise InvalidParameter(f"Cluster {resource_name} already exists")
    return backend.create_cluster(
        cluster_name=resource_name,
        tags=ecs_tags(props.get("Tags")),
        cluster_settings=camel(props.get("ClusterSettings")),
        configuration=camel(props.get("Configuration")),
        capacity_providers=props.get("CapacityProviders"),
        default_capacity_provider_strategy=camel(props.get("DefaultCapacityProviderStrategy")),
        service_connect_defaults=camel(props.get("ServiceConnectDefaults")),
    )


@add(ecs.Cluster, "delete")
def _cluster_delete(self, account_id, region_name):
    backend = _ecs(account_id, region_name)
    active = [s.name for s in backend.services.values() if s.cluster_name == self.name and s.status == "ACTIVE"]
    if active:
        raise ResourceInUse(f"The Cluster cannot be deleted while Services are active: {', '.join(active)} "
                            "(ClusterContainsServicesException)")
    if self.name in backend.clusters:
        backend.delete_cluster(self.name)


@replace_classmethod(ecs.TaskDefinition, "create_from_cloudformation_json")
def _task_definition_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    containers = camel(props.get("ContainerDefinitions", []))
    if not containers:
        raise InvalidParameter("Container list cannot be empty")
    network_mode = props.get("NetworkMode", "bridge")
    for container in containers:
        for mapping in container.get("portMappings", []):
            port = mapping["containerPort"]
            if network_mode == "awsvpc" and mapping.get("hostPort", port) != port:
                raise InvalidParameter("In awsvpc mode hostPort must equal containerPort")
    return _ecs(account_id, region_name).register_task_definition(
        family=props.get("Family", resource_name),
        container_definitions=containers,
        volumes=camel(props.get("Volumes")),
        network_mode=network_mode,
        tags=ecs_tags(props.get("Tags")),
        placement_constraints=camel(props.get("PlacementConstraints")),
        requires_compatibilities=props.get("RequiresCompatibilities"),
        cpu=props.get("Cpu"),
        memory=props.get("Memory"),
        task_role_arn=props.get("TaskRoleArn"),
        execution_role_arn=props.get("ExecutionRoleArn"),
        runtime_platform=camel(props.get("RuntimePlatform")),
        ipc_mode=props.get("IpcMode"),
        pid_mode=props.get("PidMode"),
        ephemeral_storage=camel(props.get("EphemeralStorage")),
    )


@add(ecs.TaskDefinition, "delete")
def _task_definition_delete(self, account_id, region_name):
    if self.status == "ACTIVE":
        _ecs(account_id, region_name).deregister_task_definition(self.arn)


@replace_classmethod(ecs.Service, "create_from_cloudformation_json")
def _service_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    backend = _ecs(account_id, region_name)
    cluster = props.get("Cluster", "default")
    task_definition = backend.describe_task_definition(props["TaskDefinition"])
    strategy = camel(props.get("CapacityProviderStrategy"))
    launch_type = props.get("LaunchType")
    if strategy and launch_type:
        raise InvalidParameter("Specifying both a launch type and capacity provider strategy is not supported")
    for item in strategy or []:
        if item["capacityProvider"] not in (backend._get_cluster(cluster).capacity_providers or []):
            raise InvalidParameter(f"The specified capacity provider {item['capacityProvider']} "
                                   f"is not associated with cluster {cluster}")
    network = camel(props.get("NetworkConfiguration"))
    if task_definition.network_mode == "awsvpc" and not network:
        raise InvalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    load_balancers = camel(props.get("LoadBalancers", []))
    _check_load_balancers(account_id, region_name, load_balancers, task_definition)
    service = backend.create_service(
        cluster,
        props.get("ServiceName", resource_name),
        props.get("DesiredCount", 1),
        task_definition_str=task_definition.arn,
        load_balancers=load_balancers,
        scheduling_strategy=props.get("SchedulingStrategy"),
        tags=ecs_tags(props.get("Tags")),
        deployment_controller=camel(props.get("DeploymentController")),
        launch_type=launch_type or "EC2",
        service_registries=camel(props.get("ServiceRegistries")),
        platform_version=props.get("PlatformVersion"),
        propagate_tags=props.get("PropagateTags", "NONE"),
        network_configuration=network,
        role_arn=props.get("Role"),
    )
    if strategy:
        service.launch_type = None
        service.capacity_provider_strategy = strategy
        for deployment in service.deployments:
            deployment["launchType"] = None
            deployment["capacityProviderStrategy"] = strategy
    service.deployment_configuration = camel(props.get("DeploymentConfiguration"))
    service.placement_strategy = camel(props.get("PlacementStrategies"))
    service.placement_constraints = camel(props.get("PlacementConstraints"))
    service.enable_ecs_managed_tags = props.get("EnableECSManagedTags", False)
    service.health_check_grace_period_seconds = props.get("HealthCheckGracePeriodSeconds")
    return service


def _check_load_balancers(account_id: str, region_name: str, load_balancers: list, task_definition: Any) -> None:
    elb = elbv2.elbv2_backends[account_id][region_name]
    for entry in load_balancers:
        (group,) = elb.describe_target_groups(target_group_arns=[entry["targetGroupArn"]],
                                              load_balancer_arn=None, names=None)
        if not group.load_balancer_arns:
            raise InvalidParameter(f"The target group with targetGroupArn {group.arn} "
                                   "does not have an associated load balancer.")
        container = next((c for c in task_definition.container_definitions if c["name"] == entry["containerName"]),
                         None)
        ports = [m["containerPort"] for m in (container or {}).get("portMappings", [])]
        if int(entry["containerPort"]) not in ports:
            raise InvalidParameter(f"The container {entry['containerName']} did not have a container port "
                                   f"{entry['containerPort']} defined.")


@add(ecs.Service, "delete")
def _service_delete(self, account_id, region_name):
    if self.status == "ACTIVE":
        _ecs(account_id, region_name).delete_service(self.cluster_name, self.name, force=True)


@replace(ecs.EC2ContainerServiceBackend, "delete_service")
def _delete_service(original, self, cluster_name, service_name, force):
    service = original(self, cluster_name, service_name, force)
    # DeleteService drains and removes; ListServices does not return it afterwards.
    self.services.pop(f"{service.cluster_name}:{service.name}", None)
    return service


@replace(ecs.EC2ContainerServiceBackend, "list_clusters")
def _list_clusters(original, self):
    return [c.arn for c in self.clusters.values() if c.status == "ACTIVE"]


@replace(ecs.EC2ContainerServiceBackend, "describe_capacity_providers")
def _describe_capacity_providers(original, self, names):
    return original(self, names or [p.name for p in self.capacity_providers.values()])


# --- IAM -----------------------------------------------------------------------------------------

@replace_classmethod(iam.Role, "create_from_cloudformation_json")
def _role_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    # IAM keeps an inline policy as JSON text; moto stores the template's object, and GetRolePolicy
    # then answers with its Python repr.
    for policy in cloudformation_json["Properties"].get("Policies", []):
        if isinstance(policy.get("PolicyDocument"), dict):
            policy["PolicyDocument"] = json.dumps(policy["PolicyDocument"])
    role = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    backend = iam.iam_backends[account_id][get_partition(region_name)]
    for arn in cloudformation_json["Properties"].get("ManagedPolicyArns", []):
        backend.attach_role_policy(arn, role.name)
    return role


@replace_classmethod(iam.Role, "delete_from_cloudformation_json")
def _role_delete(original, cls, resource_name, cloudformation_json, account_id, region_name):
    backend = iam.iam_backends[account_id][get_partition(region_name)]
    role = next((r for r in backend.roles.values() if r.name == resource_name), None)
    if role is None:
        return
    for arn in list(role.managed_policies):
        backend.detach_role_policy(arn, role.name)
    original(resource_name, cloudformation_json, account_id, region_name)


@replace(access_control.IAMPolicyStatement, "is_action_permitted")
def _statement(original, self, action, resource="*", principal=None, incoming_condition_values=None):
    # A statement whose Condition does not hold does not apply. moto 5.2.5 counts a condition on a key
    # the request does not carry as holding, and one that does not hold as a denial, so a bucket policy
    # that denies only some requests (taskcat's "deny signature v2") refused every request.
    if "Condition" in self._statement and not conditions_hold(self._statement["Condition"], incoming_condition_values):
        return access_control.PermissionResult.NEUTRAL
    return original(self, action, resource, principal, incoming_condition_values)


def conditions_hold(conditions: dict, values: dict | None) -> bool:
    """IAM's rule: every condition must hold, and one on a key the request lacks holds only for ...IfExists."""
    from moto.iam.policy_conditions import TrustRelationShipConditions

    for condition in TrustRelationShipConditions(conditions):
        actual = [values[key] for key in condition.context_keys if values and key in values]
        if not actual:
            if not condition._condition.endswith("IfExists"):
                return False
        elif not condition.verify_condition(actual):
            return False
    return True


# --- EC2 -----------------------------------------------------------------------------------------

def _ec2(account_id: str, region_name: str) -> Any:
    return ec2.ec2_backends[account_id][region_name]


@replace_classmethod(vpcs.VPC, "create_from_cloudformation_json")
def _vpc_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    vpc = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    props = cloudformation_json["Properties"]
    vpc.enable_dns_support = _flag(props.get("EnableDnsSupport", True))
    vpc.enable_dns_hostnames = _flag(props.get("EnableDnsHostnames", False))
    return vpc


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


@replace_classmethod(subnets.Subnet, "create_from_cloudformation_json")
def _subnet_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    subnet = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    subnet.map_public_ip_on_launch = _flag(cloudformation_json["Properties"].get("MapPublicIpOnLaunch", False))
    return subnet


@replace_classmethod(security_groups.SecurityGroup, "create_from_cloudformation_json")
def _security_group_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    inline = {k: props.pop(k) for k in ("SecurityGroupIngress", "SecurityGroupEgress") if k in props}
    group = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    props.update(inline)
    backend = _ec2(account_id, region_name)
    for rule in inline.get("SecurityGroupIngress", []):
        backend.authorize_security_group_ingress(group.id, vpc_id=group.vpc_id, **ingress_rule(rule))
    if "SecurityGroupEgress" in inline:
        # Listed egress rules replace the default allow-all rule.
        backend.revoke_security_group_egress(group.id, "-1", None, None, [{"CidrIp": "0.0.0.0/0"}])
        for rule in inline["SecurityGroupEgress"]:
            backend.authorize_security_group_egress(group.id, vpc_id=group.vpc_id, **egress_rule(rule))
    return group


@replace_classmethod(security_groups.SecurityGroupIngress, "create_from_cloudformation_json")
def _ingress_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    group = _ec2(account_id, region_name).get_security_group_from_id(props["GroupId"])
    if group is None:
        raise InvalidParameter(f"The security group '{props['GroupId']}' does not exist")
    rule = ingress_rule(props)
    _ec2(account_id, region_name).authorize_security_group_ingress(group.id, **rule)
    resource = cls(group, props)
    resource.rule = rule
    resource.id = f"{group.id}-ingress-{resource_name}"
    return resource


@add(security_groups.SecurityGroupIngress, "delete")
def _ingress_delete(self, account_id, region_name):
    backend = _ec2(account_id, region_name)
    if backend.get_security_group_from_id(self.security_group.id) is not None:
        backend.revoke_security_group_ingress(self.security_group.id, **self.rule)


security_groups.SecurityGroupIngress.physical_resource_id = property(lambda self: self.id)


@add(internet_gateways.InternetGateway, "delete")
def _gateway_delete(self, account_id, region_name):
    _ec2(account_id, region_name).delete_internet_gateway(self.id)


@add(vpn_gateway.VPCGatewayAttachment, "delete")
def _attachment_delete(self, account_id, region_name):
    backend = _ec2(account_id, region_name)
    gateway = backend.internet_gateways.get(self.gateway_id)
    if gateway is not None and gateway.vpc is not None and gateway.vpc.id == self.vpc_id:
        backend.detach_internet_gateway(self.gateway_id, self.vpc_id)


@add(route_tables.RouteTable, "delete")
def _route_table_delete(self, account_id, region_name):
    _ec2(account_id, region_name).delete_route_table(self.id)


@add(route_tables.Route, "delete")
def _route_delete(self, account_id, region_name):
    backend = _ec2(account_id, region_name)
    if self.route_table.id in backend.route_tables:
        backend.delete_route(self.route_table.id, self.destination_cidr_block)


@replace_classmethod(subnets.SubnetRouteTableAssociation, "create_from_cloudformation_json")
def _association_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    # moto records the association apart from the route table, where DescribeRouteTables never shows it.
    props = cloudformation_json["Properties"]
    association = cls(props["RouteTableId"], props["SubnetId"])
    association.association_id = _ec2(account_id, region_name).associate_route_table(
        props["RouteTableId"], subnet_id=props["SubnetId"])
    return association


subnets.SubnetRouteTableAssociation.physical_resource_id = property(lambda self: self.association_id)


@add(subnets.SubnetRouteTableAssociation, "delete")
def _association_delete(self, account_id, region_name):
    _ec2(account_id, region_name).disassociate_route_table(self.association_id)


# --- Load balancing, Auto Scaling, ECR -----------------------------------------------------------

# Regions' Elastic Load Balancing accounts that deliver access logs to a bucket whose policy names them,
# for regions before August 2022; later ones deliver as the logdelivery service principal:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
ELB_LOG_ACCOUNTS = {"us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
                    "us-west-2": "797873946194", "eu-west-1": "156460612806", "eu-central-1": "054676820928"}
ELB_LOG_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


@replace_classmethod(elbv2.FakeLoadBalancer, "create_from_cloudformation_json")
def _load_balancer_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """moto makes the load balancer and drops Type and LoadBalancerAttributes; ELB applies them, and enabling access
    logs fails the resource unless the bucket exists and its policy lets ELB's log delivery write to it
    ("Access Denied for bucket: <name>. Please check S3bucket permission", InvalidConfigurationRequest)."""
    attributes = {}
    for item in cloudformation_json["Properties"].get("LoadBalancerAttributes") or []:
        if isinstance(item, dict) and "Key" in item:
            attributes[item["Key"]] = str(item["Value"]).lower() if isinstance(item["Value"], bool) else item["Value"]
    if attributes.get("access_logs.s3.enabled") == "true":
        bucket = attributes.get("access_logs.s3.bucket", "")
        if not _log_delivery_allowed(account_id, region_name, bucket):
            raise InvalidParameter(f"Access Denied for bucket: {bucket}. Please check S3bucket permission")
    balancer = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    # moto drops Type too, so a network load balancer became an application one that refuses TCP and UDP
    # listeners; CloudFormation makes the Type given (default application):
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-elasticloadbalancingv2-loadbalancer.html
    balancer.type = cloudformation_json["Properties"].get("Type") or "application"
    if attributes:
        elbv2.elbv2_backends[account_id][region_name].modify_load_balancer_attributes(balancer.arn, attributes)
    return balancer


def _log_delivery_allowed(account_id: str, region_name: str, bucket: str) -> bool:
    from moto.s3.models import s3_backends

    found = s3_backends[account_id][get_partition(region_name)].buckets.get(bucket)
    if found is None or not found.policy:
        return False
    policy = json.loads(found.policy.decode() if isinstance(found.policy, bytes) else found.policy)
    writers = {ELB_LOG_SERVICE, f"arn:aws:iam::{ELB_LOG_ACCOUNTS.get(region_name, '')}:root",
               ELB_LOG_ACCOUNTS.get(region_name, "")}
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = statement.get("Principal", {})
        named = {p for value in (principal.values() if isinstance(principal, dict) else [principal])
                 for p in ([value] if isinstance(value, str) else value)}
        if statement.get("Effect") == "Allow" and {"s3:PutObject", "s3:*"} & set(actions) and named & writers:
            return True
    return False


@add(elbv2.FakeListener, "delete")
def _listener_delete(self, account_id, region_name):
    elbv2.elbv2_backends[account_id][region_name].delete_listener(self.arn)


@add(elbv2.FakeListenerRule, "delete")
def _listener_rule_delete(self, account_id, region_name):
    # moto had none: a rule outlived its stack and kept its target group in use, until moto's delete
    # happened to remove the listener first.
    elbv2.elbv2_backends[account_id][region_name].delete_rule(self.arn)


@add(elbv2.FakeTargetGroup, "delete")
def _target_group_delete(self, account_id, region_name):
    elbv2.elbv2_backends[account_id][region_name].delete_target_group(self.arn)


@replace(autoscaling.AutoScalingBackend, "create_auto_scaling_group")
def _group_create(original, self, name, availability_zones, desired_capacity, max_size, min_size, *args, **kwargs):
    low, high = int(min_size), int(max_size)
    wanted = low if desired_capacity is None else int(desired_capacity)
    if low > high:
        raise autoscaling.ValidationError(f"Max bound, {high}, must be greater than or equal to min bound, {low}")
    if not low <= wanted <= high:
        raise autoscaling.ValidationError(
            f"Desired capacity:{wanted} must be between the specified min size:{low} and max size:{high}")
    return original(self, name, availability_zones, desired_capacity, max_size, min_size, *args, **kwargs)


@replace(autoscaling.FakeAutoScalingGroup, "delete")
def _group_delete(original, self, account_id, region_name):
    if self.name in autoscaling.autoscaling_backends[account_id][region_name].autoscaling_groups:
        original(self, account_id, region_name)


@replace(instances.InstanceBackend, "run_instances")
def _run_instances(original, self, image_id, count, user_data, security_group_names, **kwargs):
    """An instance launched from a launch template gets what the template's primary interface asks for: a
    public IP (AssociatePublicIpAddress) and its security groups (Groups). moto reads neither, so an Auto
    Scaling group's hosts had no public IP and the default group."""
    if kwargs.get("launch_template"):
        data = self._get_template_from_args(kwargs["launch_template"]).data
        primary = next((nic for nic in data.get("NetworkInterfaces") or [] if int(nic.get("DeviceIndex", 0)) == 0),
                       {})
        if kwargs.get("associate_public_ip") is None and "AssociatePublicIpAddress" in primary:
            kwargs["associate_public_ip"] = _flag(primary["AssociatePublicIpAddress"])
        if not kwargs.get("security_group_ids") and primary.get("Groups"):
            kwargs["security_group_ids"] = list(primary["Groups"])
    return original(self, image_id, count, user_data, security_group_names, **kwargs)


@replace(instances.Instance, "terminate")
def _instance_terminate(original, self):
    # The primary interface EC2 creates at launch goes with the instance; moto keeps it.
    primary = self.nics.get(0)
    if primary is not None:
        primary.delete_on_termination = True
    return original(self)


@replace_classmethod(ecr.Repository, "create_from_cloudformation_json")
def _repository_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    for key in ("ImageScanningConfiguration", "EncryptionConfiguration"):
        if key in props:  # moto hands CloudFormation's PascalCase to an API that reads camelCase
            props[key] = camel(props[key])
    repository = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    repository.empty_on_delete = _flag(props.get("EmptyOnDelete", False))
    policy = props.get("LifecyclePolicy", {}).get("LifecyclePolicyText")
    if policy:
        ecr.ecr_backends[account_id][region_name].put_lifecycle_policy(None, repository.name, policy)
    return repository


@replace(ecr.Repository, "delete")
def _repository_delete(original, self, account_id, region_name):
    backend = ecr.ecr_backends[account_id][region_name]
    if self.name in backend.repositories:
        backend.delete_repository(self.name, force=getattr(self, "empty_on_delete", False))


# --- KMS ---------------------------------------------------------------------------------------------

@replace_classmethod(kms.Key, "create_from_cloudformation_json")
def _key_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """CloudFormation takes KeyPolicy as an object, and Tags as Key/Value pairs; moto stores the policy
    as given and then fails to read it, and hands the tags to an API that reads TagKey/TagValue."""
    properties = cloudformation_json["Properties"]
    if isinstance(properties.get("KeyPolicy"), dict):
        properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
    properties["Tags"] = [{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in properties.get("Tags", [])]
    key = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    key.pending_window_days = int(properties.get("PendingWindowInDays", 30))
    return key


@add(kms.Key, "delete")
def _key_delete(self, account_id, region_name):
    """Deleting a stack schedules its key's deletion after PendingWindowInDays, as CloudFormation does."""
    kms.kms_backends[account_id][region_name].schedule_key_deletion(self.id, getattr(self, "pending_window_days", 30))


@replace_classmethod(logs.LogGroup, "create_from_cloudformation_json")
def _log_group_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """moto reads the API's kmsKeyId, not the template's KmsKeyId, and drops the key."""
    properties = cloudformation_json["Properties"]
    if "KmsKeyId" in properties:
        properties["kmsKeyId"] = properties.pop("KmsKeyId")
    return original(resource_name, cloudformation_json, account_id, region_name, **kwargs)


# --- EFS ---------------------------------------------------------------------------------------------

# CloudFormation's Ref to an access point is its ID; moto has no physical ID for it (a Python repr).
efs.AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)
efs.AccessPoint.has_cfn_attr = classmethod(lambda cls, attribute: attribute in ("Arn", "AccessPointId"))
efs.AccessPoint.get_cfn_attribute = lambda self, attribute: (
    self.access_point_arn if attribute == "Arn" else self.access_point_id)
FIXES.append("AccessPoint.physical_resource_id")

efs.FileSystem.has_cfn_attr = classmethod(lambda cls, attribute: attribute in ("Arn", "FileSystemId"))
efs.FileSystem.get_cfn_attribute = lambda self, attribute: (
    self.file_system_arn if attribute == "Arn" else self.file_system_id)
FIXES.append("FileSystem.get_cfn_attribute")
