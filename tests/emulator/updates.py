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

The rules live in update_plan.py, which also plans change sets by them before anything runs, so
what a change set (and `make diff`) shows is what the update then does.

A modification reaches the service API for the types the templates change on a routine update
(MODIFIERS: nested stacks, launch templates, Auto Scaling groups, ECS services, custom resources);
any other type's modification is recorded (events, the new properties) and its physical resource kept.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

from moto.cloudformation import models as cfn

from . import update_plan
from .faults import FAULTS
from .fixes.cloudformation import ResourceFailed, reason_of, resource_event
from .fixes.nested_stacks import _parameter_value
from .update_plan import _diff, _forget_nested, _template_dict, changed_properties, existing, order, replacement
from .update_plan import resolved, snapshot

REPLACING = "Requested update requires the creation of a new physical resource; hence creating one."


# --- the update ------------------------------------------------------------------------------------

class UpdateFailed(Exception):
    def __init__(self, logical_id: str, reason: str):
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id, self.reason = logical_id, reason


def _nested_stack(original: Any, properties: dict, account_id: str, region_name: str) -> Any:
    child: cfn.Stack = original
    template = cfn.get_stack_from_s3_url(properties["TemplateURL"], account_id=account_id, partition="aws")
    parameters = {k: _parameter_value(v) for k, v in (properties.get("Parameters") or {}).items()}
    if not update_stack(child, template, parameters, nested=True):
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

    from .resources import camel

    count = properties.get("DesiredCount")
    # UpdateService takes the load balancers and Cloud Map registries too
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html): a replaced
    # target group or discovery service is repointed here, not left holding the old one's tasks.
    return ecs_backends[account_id][region_name].update_service({
        "cluster": original.cluster_arn, "service": original.name, "task_definition": properties.get("TaskDefinition"),
        "desired_count": int(count) if count is not None else None,
        "load_balancers": camel(properties.get("LoadBalancers") or []),
        "service_registries": camel(properties.get("ServiceRegistries") or [])})


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


def update_stack(stack: cfn.Stack, template: str | dict, parameters: dict[str, Any], nested: bool = False) -> bool:
    """Update `stack` in place; True when it ends UPDATE_COMPLETE, False when it rolled back.

    A nested stack's cleanup waits for its root's: what it replaced or removed is deleted only once the
    whole update succeeded, so a root that rolls back still finds the previous resources to go back to
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-monitor-stack.html:
    the old resources go in the cleanup phase, after every update)."""
    resource_map = stack.resource_map
    account, region = stack.account_id, stack.region_name
    old = {"template": stack.template, "template_dict": stack.template_dict, "parameters": stack.parameters,
           "map_template": resource_map._template, "json": resource_map._resource_json_map,
           "input": resource_map.input_parameters, "resolved": dict(resource_map.resolved_parameters),
           "parsed": dict(resource_map._parsed_resources)}
    before = snapshot(stack)
    made = existing(resource_map)
    new_template = _template_dict(template)
    resource_map._template = new_template
    resource_map.input_parameters = parameters
    resource_map.resolved_parameters = {}
    try:  # parameters and conditions: what CloudFormation checks before it starts
        resource_map.load()
        new_resources = new_template.get("Resources") or {}
        steps = order(new_resources)
    except Exception as error:
        resource_map._template, resource_map.input_parameters = old["map_template"], old["input"]
        resource_map.resolved_parameters, resource_map._parsed_resources = old["resolved"], old["parsed"]
        raise error if isinstance(error, cfn.ValidationError) else cfn.ValidationError(message=reason_of(error))
    _stack_status(stack, "UPDATE_IN_PROGRESS", "User Initiated")
    resource_map._resource_json_map = new_resources

    done: list[tuple[str, str, Any]] = []  # (logical ID, what was done, the resource it replaced or modified)
    name = stack.name
    try:
        for name in steps:
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
    except Exception as failure:  # UpdateFailed, ResourceFailed, or a property that does not resolve
        failed = getattr(failure, "logical_id", None) or name
        if not isinstance(failure, (UpdateFailed, ResourceFailed)):
            kind = new_resources.get(name, {}).get("Type", "")
            resource_event(stack, name, kind, "UPDATE_FAILED", reason=reason_of(failure))
        stack.failed_update = [failed]
        _stack_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS",
                      f"The following resource(s) failed to update: [{failed}].")
        _roll_back(stack, old, before, done)
        return False

    _stack_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    leaving = {name: obj for name, what, obj in done if what == "Replace"}
    kept = existing(resource_map)
    leaving.update({name: obj for name, obj in made.items() if name not in kept})
    stack.previous_update = (old["template"], dict(old["input"] or {}))  # what a parent's rollback restores
    stack.pending_update = (old, before, done, leaving)
    if not nested:
        _clean_up(stack)
    return True


def _clean_up(stack: cfn.Stack) -> None:
    """The cleanup phase: nested stacks' leftovers (last updated first), then the stack's own."""
    pending = getattr(stack, "pending_update", None)
    if pending is None:
        return
    old, _, done, leaving = pending
    for _, what, previous in reversed(done):
        if what == "Modify" and isinstance(previous, cfn.Stack):
            _clean_up(previous)
    # A replaced resource's old instance follows its UpdateReplacePolicy, one removed from the template its
    # DeletionPolicy (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/
    # aws-attribute-updatereplacepolicy.html); moto knew neither here.
    replaced = {name for name, what, _ in done if what == "Replace"}
    _delete(stack, leaving, old["json"], replaced, (stack.template_dict or {}).get("Resources") or {})
    stack.pending_update = None
    _stack_status(stack, "UPDATE_COMPLETE")


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


def _delete(stack: cfn.Stack, leaving: dict[str, Any], declared: dict[str, dict], replaced: set[str] = frozenset(),
            now: dict[str, dict] | None = None) -> None:
    """Delete what the update (or its rollback) leaves behind, dependents first; failures are only events,
    as CloudFormation's cleanup phase does not fail the stack. `replaced`: the old instances of resources the
    update replaced, kept when the template (`now`, the updated one) says UpdateReplacePolicy Retain."""
    names = [name for name in reversed(order({n: declared[n] for n in leaving if n in declared}))]
    names += [n for n in leaving if n not in names]
    for name in names:
        resource_json = declared.get(name) or {"Type": getattr(leaving[name], "cf_resource_type", "")}
        if name in replaced:
            if ((now or {}).get(name) or resource_json).get("UpdateReplacePolicy") == "Retain":
                continue
        elif resource_json.get("DeletionPolicy") == "Retain":
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
    pending = getattr(child, "pending_update", None)
    if pending is not None:  # updated, its previous resources kept until the cleanup: go back to them
        child.pending_update = None
        old, before, done, _ = pending
        _stack_status(child, "UPDATE_ROLLBACK_IN_PROGRESS", "The parent stack's update failed.")
        _roll_back(child, old, before, done)
        return
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
    update_plan.install()
