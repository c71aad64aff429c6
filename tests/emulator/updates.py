"""Stack updates as CloudFormation makes them: in place, resource by resource, decided by the resource schemas.

moto 5.2.5 compared templates as text, called each type's own update (which for a nested stack, an
Auto Scaling group or a security group deletes the resource and makes another) and had no rollback,
so a parameter change replaced every nested stack and failed midway. Here, for UpdateStack,
ExecuteChangeSet and a parent updating its nested stacks:

- each resource's properties are resolved with the new template and parameters, in dependency order,
  and compared with what they resolved to before the update; an unchanged resource is left alone;
- a changed resource is replaced when a changed property is one of its type's `createOnlyProperties`
  in the CloudFormation registry schema (the schemas cfn-lint ships), and modified in place, keeping
  its physical ID, otherwise
  (https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html);
- a replacement creates the new resource first, so what refers to it is updated to the new one, and
  the old one is deleted once the whole update has succeeded, in the cleanup phase
  (UPDATE_COMPLETE_CLEANUP_IN_PROGRESS);
- a nested stack (AWS::CloudFormation::Stack) is updated in place, the same way, and ends
  UPDATE_COMPLETE with its stack ID;
- a failure (`Emulator.faults.fail(resource=...)` injects one) rolls the update back: what was
  modified gets its previous properties again, what was created for the update is deleted, and the
  stack ends UPDATE_ROLLBACK_COMPLETE with its previous template, parameters and physical resources
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-monitor-stack.html);
  a nested stack that fails fails its parent, which rolls back its other nested stacks too.

A change set (ChangeSet.diff) is planned by the same rules before anything runs. A value that only
the update itself makes (the ID of a resource being replaced or added, an attribute of one being
modified) is unknown then: a create-only property that takes such a value is `Replacement:
Conditional`, as is a change to one of the schema's `conditionalCreateOnlyProperties`. With
IncludeNestedStacks each nested stack gets its own change set (`ChangeSetId` on its change).

A modification reaches the service API for the types the templates change on a routine update
(MODIFIERS: nested stacks, launch templates, Auto Scaling groups, ECS services, custom resources);
any other type's modification is recorded (events, the new properties) and its physical resource kept.
"""
from __future__ import annotations

import contextvars
import copy
import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from moto.cloudformation import models as cfn
from moto.cloudformation import parsing

from . import REGION
from .deletion import needs
from .faults import FAULTS
from .fixes import ResourceFailed, _parameter_value, backend_of, reason_of, resource_event

# Stands for a value that exists only once the update runs; Sub and Join keep it inside strings.
UNKNOWN = "{{emulator:known-after-update}}"
REPLACING = "Requested update requires the creation of a new physical resource; hence creating one."


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
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) or _unknown(new.get(k)))


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
        if self.outputs is not None and attribute.startswith("Outputs."):
            return self.outputs.get(attribute[len("Outputs."):], UNKNOWN)
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
        found = Plan([Step(name, resource["Type"], "Add") for name, resource in (template.get("Resources") or {}).items()],
                     {})
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
        steps = plan(self.stack, self.template_dict, self.parameters or {}, nested=True)
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


# --- the update ------------------------------------------------------------------------------------

class UpdateFailed(Exception):
    def __init__(self, logical_id: str, reason: str):
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id, self.reason = logical_id, reason


def _nested_stack(original: Any, properties: dict, account_id: str, region_name: str) -> Any:
    child: cfn.Stack = original
    template = cfn.get_stack_from_s3_url(properties["TemplateURL"], account_id=account_id, partition="aws")
    parameters = {k: _parameter_value(v) for k, v in (properties.get("Parameters") or {}).items()}
    if not update_stack(child, template, parameters):
        raise ResourceFailed(child.name, "AWS::CloudFormation::Stack",
                             f"Embedded stack {child.stack_id} was not successfully updated. Currently in "
                             f"{child.status} with reason: The following resource(s) failed to update: "
                             f"[{', '.join(getattr(child, 'failed_update', []))}].")
    return child


def _launch_template(original: Any, properties: dict, account_id: str, region_name: str) -> Any:
    from moto.ec2.models.launch_templates import LaunchTemplate

    return LaunchTemplate.update_from_cloudformation_json(original, original.name, {"Properties": copy.deepcopy(
        properties)}, account_id, region_name)


def _group(original: Any, properties: dict, account_id: str, region_name: str) -> Any:
    from moto.autoscaling.models import autoscaling_backends

    def number(key: str) -> int | None:
        return int(properties[key]) if properties.get(key) is not None else None

    return autoscaling_backends[account_id][region_name].update_auto_scaling_group(
        name=original.name, availability_zones=properties.get("AvailabilityZones") or [],
        desired_capacity=number("DesiredCapacity"), max_size=number("MaxSize"), min_size=number("MinSize"),
        launch_config_name=properties.get("LaunchConfigurationName"), launch_template=properties.get("LaunchTemplate"),
        vpc_zone_identifier=",".join(properties.get("VPCZoneIdentifier") or []) or None,
        health_check_period=properties.get("HealthCheckGracePeriod"),
        health_check_type=properties.get("HealthCheckType"),
        new_instances_protected_from_scale_in=properties.get("NewInstancesProtectedFromScaleIn"))


def _service(original: Any, properties: dict, account_id: str, region_name: str) -> Any:
    from moto.ecs.models import ecs_backends

    count = properties.get("DesiredCount")
    return ecs_backends[account_id][region_name].update_service({
        "cluster": original.cluster_arn, "service": original.name, "task_definition": properties.get("TaskDefinition"),
        "desired_count": int(count) if count is not None else None})


def _custom(original: Any, properties: dict, account_id: str, region_name: str) -> Any:
    return type(original).update_from_cloudformation_json(original, original.physical_resource_id,
                                                          {"Properties": properties}, account_id, region_name)


MODIFIERS: dict[str, Callable[[Any, dict, str, str], Any]] = {
    "AWS::CloudFormation::Stack": _nested_stack,
    "AWS::EC2::LaunchTemplate": _launch_template,
    "AWS::AutoScaling::AutoScalingGroup": _group,
    "AWS::ECS::Service": _service,
}


def _modifier(resource_type: str) -> Callable[[Any, dict, str, str], Any] | None:
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return _custom
    return MODIFIERS.get(resource_type)


def _modify(made: Any, resource_type: str, properties: dict, account_id: str, region_name: str) -> Any:
    modifier = _modifier(resource_type)
    result = modifier(made, properties, account_id, region_name) if modifier else made
    return made if result is None else result


def _stack_status(stack: cfn.Stack, status: str, reason: str | None = None) -> None:
    stack.status = status
    stack._add_stack_event(status, resource_status_reason=reason)


def update_stack(stack: cfn.Stack, template: str | dict, parameters: dict[str, Any]) -> bool:
    """Update `stack` in place; True when it ends UPDATE_COMPLETE, False when it rolled back."""
    resource_map = stack.resource_map
    account, region = stack.account_id, stack.region_name
    old = {"template": stack.template, "template_dict": stack.template_dict, "parameters": stack.parameters,
           "map_template": resource_map._template, "json": resource_map._resource_json_map,
           "input": resource_map.input_parameters, "resolved": dict(resource_map.resolved_parameters),
           "parsed": dict(resource_map._parsed_resources)}
    before = snapshot(stack)
    made = existing(resource_map)
    new_template = _template_dict(template)
    _stack_status(stack, "UPDATE_IN_PROGRESS", "User Initiated")

    resource_map._template = new_template
    resource_map.input_parameters = parameters
    resource_map.resolved_parameters = {}
    resource_map.load()
    new_resources = new_template.get("Resources") or {}
    resource_map._resource_json_map = new_resources

    done: list[tuple[str, str, Any]] = []  # (logical ID, what was done, the resource it replaced or modified)
    failed: str | None = None
    try:
        for name in order(new_resources):
            resource = new_resources[name]
            condition = resource.get("Condition")
            if condition and not resource_map.lazy_condition_map[condition]:
                resource_map._parsed_resources.pop(name, None)
                continue
            kind = resource["Type"]
            if name not in made:
                _guard(name, kind, stack, "CREATE")
                resource_map._parsed_resources.pop(name, None)
                resource_map[name]  # created through moto's lazy map, with its events
                done.append((name, "Add", None))
                continue
            after = resolved(resource, resource_map)
            if old["json"][name]["Type"] == kind and not changed_properties(before[name], after):
                continue
            physical = str(made[name].physical_resource_id)
            if old["json"][name]["Type"] != kind or replacement(kind, before[name], after) == "True":
                resource_event(stack, name, kind, "UPDATE_IN_PROGRESS", physical, REPLACING)
                _guard(name, kind, stack, "UPDATE")
                resource_map._parsed_resources.pop(name, None)
                _as_update(stack, name, lambda: resource_map[name])
                done.append((name, "Replace", made[name]))
                continue
            resource_event(stack, name, kind, "UPDATE_IN_PROGRESS", physical)
            _guard(name, kind, stack, "UPDATE")
            try:
                changed = _modify(made[name], kind, after, account, region)
            except Exception as error:
                reason = error.reason if isinstance(error, ResourceFailed) else reason_of(error)
                resource_event(stack, name, kind, "UPDATE_FAILED", physical, reason)
                raise UpdateFailed(name, reason) from error
            resource_map._parsed_resources[name] = changed
            done.append((name, "Modify", made[name]))
            resource_event(stack, name, kind, "UPDATE_COMPLETE", str(changed.physical_resource_id))
        stack.template, stack.template_dict = template if isinstance(template, str) else json.dumps(template), \
            new_template
        stack.parameters = parameters
        stack.description = new_template.get("Description")
        stack.output_map = stack._create_output_map()
    except (UpdateFailed, ResourceFailed) as failure:
        failed = failure.logical_id
        stack.failed_update = [failed]
        _stack_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS",
                      f"The following resource(s) failed to update: [{failed}].")
        _roll_back(stack, old, before, done)
        return False

    _stack_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    leaving = {name: obj for name, what, obj in done if what == "Replace"}
    kept = existing(resource_map)
    leaving.update({name: obj for name, obj in made.items() if name not in kept})
    _delete(stack, leaving, old["json"])
    _stack_status(stack, "UPDATE_COMPLETE")
    stack.previous_update = (old["template"], dict(old["input"] or {}))  # what a parent's rollback restores
    return True


def _guard(name: str, kind: str, stack: cfn.Stack, operation: str) -> None:
    """An injected failure (Emulator.faults.fail) fails this resource here."""
    reason = FAULTS._fails(name)
    if reason is not None:
        resource_event(stack, name, kind, f"{operation}_FAILED", reason=reason)
        raise UpdateFailed(name, reason)


def _as_update(stack: cfn.Stack, name: str, create: Callable[[], Any]) -> Any:
    """Create a replacement; its create events read as the update's, as CloudFormation writes them."""
    start = len(stack.events)
    try:
        return create()
    except ResourceFailed as failure:
        raise UpdateFailed(name, failure.reason) from failure
    finally:
        for event in stack.events[start:]:
            if event.logical_resource_id == name and event.resource_status.startswith("CREATE_"):
                event.resource_status = "UPDATE_" + event.resource_status[len("CREATE_"):]
                if event.resource_status == "UPDATE_IN_PROGRESS":
                    event.resource_status_reason = "Resource creation Initiated"


def _delete(stack: cfn.Stack, leaving: dict[str, Any], declared: dict[str, dict]) -> None:
    """Delete what the update (or its rollback) leaves behind, dependents first; failures are only events,
    as CloudFormation's cleanup phase does not fail the stack."""
    names = [name for name in reversed(order({n: declared[n] for n in leaving if n in declared}))]
    names += [n for n in leaving if n not in names]
    for name in names:
        resource_json = declared.get(name) or {"Type": getattr(leaving[name], "cf_resource_type", "")}
        if resource_json.get("DeletionPolicy") == "Retain":
            continue
        try:
            stack.resource_map._delete_resource(leaving[name], resource_json)
        except Exception:
            pass  # DELETE_FAILED is already an event


def _roll_back(stack: cfn.Stack, old: dict, before: dict[str, dict], done: list[tuple[str, str, Any]]) -> None:
    resource_map = stack.resource_map
    account, region = stack.account_id, stack.region_name
    created: dict[str, Any] = {}
    for name, what, previous in reversed(done):
        current = resource_map._parsed_resources.get(name)
        kind = old["json"].get(name, {}).get("Type") or getattr(current, "cf_resource_type", "")
        if what in ("Add", "Replace"):
            if current is not None and not isinstance(current, str):
                created[name] = current
            continue
        resource_event(stack, name, kind, "UPDATE_IN_PROGRESS", str(previous.physical_resource_id))
        try:
            if kind == "AWS::CloudFormation::Stack":
                _roll_back_nested(previous, account, region)
            else:
                _modify(current, kind, before[name], account, region)
        except Exception as error:
            resource_event(stack, name, kind, "UPDATE_FAILED", str(previous.physical_resource_id), reason_of(error))
        else:
            resource_event(stack, name, kind, "UPDATE_COMPLETE", str(previous.physical_resource_id))
    resource_map._template, resource_map._resource_json_map = old["map_template"], old["json"]
    resource_map.input_parameters, resource_map.resolved_parameters = old["input"], old["resolved"]
    resource_map._parsed_resources = old["parsed"]
    resource_map.load_conditions()
    stack.template, stack.template_dict, stack.parameters = old["template"], old["template_dict"], old["parameters"]
    stack.output_map = stack._create_output_map()
    _stack_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    new_json = {name: {"Type": getattr(obj, "cf_resource_type", "")} for name, obj in created.items()}
    _delete(stack, created, new_json)
    _stack_status(stack, "UPDATE_ROLLBACK_COMPLETE")


def _roll_back_nested(child: cfn.Stack, account: str, region: str) -> None:
    """A nested stack that was updated goes back to what it was when its parent rolls back."""
    if child.status == "UPDATE_ROLLBACK_COMPLETE":
        return  # it failed and rolled itself back
    previous = getattr(child, "previous_update", None)
    if previous is None:
        return
    template, parameters = previous
    update_stack(child, template, parameters)
    for event in child.events[-1:]:
        if event.logical_resource_id == child.name and event.resource_status == "UPDATE_COMPLETE":
            event.resource_status = child.status = "UPDATE_ROLLBACK_COMPLETE"


# --- wiring ----------------------------------------------------------------------------------------

def install() -> None:
    """Updates, change sets and their nested change sets go through this module (emulator.install)."""
    backend = cfn.CloudFormationBackend
    execute_change_set, delete_change_set = backend.execute_change_set, backend.delete_change_set

    def execute(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.describe_change_set(change_set_name)
        if change_set.change_set_type != "UPDATE":
            execute_change_set(self, change_set_name, stack_name)
            _forget_nested(self, change_set)
            return
        stack = self.stacks[change_set.stack_id]
        if change_set.execution_status != "AVAILABLE":
            raise cfn.ValidationError(stack.stack_id, f"ChangeSet [{change_set.change_set_id}] cannot be executed "
                                                      f"in its current execution status of "
                                                      f"[{change_set.execution_status}]")
        ok = update_stack(stack, change_set.template, change_set.parameters or {})
        if change_set.tags:
            stack.tags = change_set.tags
        change_set.execution_status = "EXECUTE_COMPLETE" if ok else "EXECUTE_FAILED"
        for other in [k for k, c in self.change_sets.items() if c.stack_id == change_set.stack_id]:
            _forget_nested(self, self.change_sets[other])
            del self.change_sets[other]

    def delete(self: Any, change_set_name: str) -> None:
        change_set = self.describe_change_set(change_set_name)
        _forget_nested(self, change_set)
        delete_change_set(self, change_set_name)

    def stack_update(self: cfn.Stack, template: str, role_arn: str | None = None,
                     parameters: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> None:
        update_stack(self, template, parameters or {})
        self.role_arn = role_arn
        if tags is not None:
            self.tags = tags

    backend.execute_change_set, backend.delete_change_set = execute, delete
    cfn.Stack.update = stack_update
    cfn.ChangeSet.diff = _diff
    _include_nested()


def _include_nested() -> None:
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


INCLUDE_NESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("include_nested", default=False)
