"""Auto Scaling hosts as AWS runs them: events, lifecycle hooks, ECS managed draining, launch templates.

Stock moto launched and terminated a group's instances silently, ignored lifecycle hooks, deleted a
group whatever held its instances, and reported every instance with the launch template's default
version. Here:

- every launch and termination by a group (including those of a group CloudFormation creates or
  deletes) is a scaling activity (DescribeScalingActivities) and an event on the default bus,
  `EC2 Instance Launch Successful` / `EC2 Instance Terminate Successful` from `aws.autoscaling`, with
  the documented detail (AutoScalingGroupName, EC2InstanceId, ActivityId, Details, Cause, ...;
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-event-reference.html);
- a termination lifecycle hook holds a terminating instance in `Terminating:Wait` and emits
  `EC2 Instance-terminate Lifecycle Action`; CompleteLifecycleAction (CONTINUE, or ABANDON, which also
  drops the instance's other hooks) and DeleteLifecycleHook (which completes outstanding actions with
  CONTINUE, https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteLifecycleHook.html)
  release it; RecordLifecycleActionHeartbeat is accepted. No clock runs the heartbeat timeout;
- ECS managed draining: a capacity provider created with ManagedDraining ENABLED (ECS's default,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/enable-managed-instance-draining.html)
  adds the termination hook `ecs-managed-draining-termination-hook` (HeartbeatTimeout 3600, DefaultResult
  CONTINUE; https://github.com/aws/containers-roadmap/issues/2467) to its group, and while such a
  provider exists ECS completes that hook for a terminating instance (no task runs here to drain).
  Once none exists, nothing completes it: the instance would wait an hour;
- CloudFormation deletes a group by scaling it to zero and waiting for its instances to terminate.
  An instance that would wait (on a hook nobody completes, or protected from scale-in) makes that
  delete fail at once, with the instances, the hook and its timeout in the reason: a test fails
  exactly where a real delete would hang. DeleteAutoScalingGroup refuses a group with instances
  unless ForceDelete, which terminates them and drops their lifecycle actions;
- each instance reports the launch template and version it was launched with
  (https://github.com/aws/aws-cli/blob/develop/awscli/examples/autoscaling/describe-auto-scaling-instances.rst).

`SETTINGS.model_draining_hook` (Emulator.model_draining_hook) turns the ECS hook off: no hook is added.
"""
from __future__ import annotations

import contextvars
import datetime
import json
import threading
import uuid
from dataclasses import dataclass

from moto.autoscaling import exceptions as autoscaling_errors
from moto.autoscaling import models as autoscaling
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.ecs import models as ecs

from . import eventbridge
from .fixes import FIXES, add, replace, replace_classmethod
from .resources import EmulatorError

DRAINING_HOOK = "ecs-managed-draining-termination-hook"
DRAINING_TIMEOUT = 3600
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


@dataclass
class Settings:
    model_draining_hook: bool = True  # ECS adds its termination hook to a managed-draining provider's group


SETTINGS = Settings()
LAUNCH_CAUSE: contextvars.ContextVar[str | None] = contextvars.ContextVar("launch_cause", default=None)
_LOCK = threading.RLock()  # lifecycle actions complete from any request thread (a function calls back)


class ResourceInUse(autoscaling_errors.AutoscalingClientError):
    code = "ResourceInUse"


class HostsRemain(EmulatorError):
    """A group CloudFormation cannot delete now: instances would wait instead of terminating."""


@dataclass
class Termination:
    activity: dict
    pending: dict[str, str]  # hook name -> lifecycle action token
    done: bool = False


def _backend(group: autoscaling.FakeAutoScalingGroup) -> autoscaling.AutoScalingBackend:
    return autoscaling.autoscaling_backends[group.account_id][group.region]


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- activities and events -------------------------------------------------------------------------

def _activity(group: autoscaling.FakeAutoScalingGroup, description: str, cause: str,
              state: autoscaling.InstanceState, status: str = "InProgress") -> dict:
    started = now()
    activity = {
        "ActivityId": str(uuid.uuid4()),
        "AutoScalingGroupName": group.name,
        "AutoScalingGroupARN": group.arn,
        "Description": description,
        "Cause": cause,
        "StartTime": started,
        "EndTime": started,
        "StatusCode": status,
        "Progress": 100 if status == "Successful" else 50,
        "Details": json.dumps({"Subnet ID": state.instance.subnet_id, "Availability Zone": state.availability_zone}),
    }
    if not hasattr(group, "emulated_activities"):
        group.emulated_activities = []
    group.emulated_activities.append(activity)
    return activity


def _announce(group: autoscaling.FakeAutoScalingGroup, detail_type: str, state: autoscaling.InstanceState,
              activity: dict, origin: str, destination: str) -> None:
    """One Launch/Terminate Successful event, once the group is there to be described."""
    detail = {
        "Origin": origin,
        "Destination": destination,
        "Description": activity["Description"],
        "AutoScalingGroupName": group.name,
        "ActivityId": activity["ActivityId"],
        "Details": json.loads(activity["Details"]),
        "RequestId": str(uuid.uuid4()),
        "StatusMessage": "",
        "EndTime": stamp(activity["EndTime"]),
        "EC2InstanceId": state.instance.id,
        "StartTime": stamp(activity["StartTime"]),
        "Cause": activity["Cause"],
        "StatusCode": "InProgress",
    }
    instance_arn = f"arn:aws:ec2:{group.region}:{group.account_id}:instance/{state.instance.id}"
    _emit(group, detail_type, detail, [group.arn, instance_arn])


def _emit(group: autoscaling.FakeAutoScalingGroup, detail_type: str, detail: dict, resources: list[str]) -> None:
    if _backend(group).autoscaling_groups.get(group.name) is not group and not getattr(group, "emulated_gone", False):
        # A group launches its first instances before CreateAutoScalingGroup returns; a function
        # reacting to the launch would not find the group yet. They go out once it exists.
        group.__dict__.setdefault("unannounced", []).append((detail_type, detail, resources))
        return
    eventbridge.publish(group.account_id, group.region, "aws.autoscaling", detail_type, detail, resources)


@replace(autoscaling.AutoScalingBackend, "create_auto_scaling_group")
def _create_group(original, self, *args, **kwargs):
    group = original(self, *args, **kwargs)
    for detail_type, detail, resources in group.__dict__.pop("unannounced", []):
        eventbridge.publish(group.account_id, group.region, "aws.autoscaling", detail_type, detail, resources)
    return group


@replace(AutoScalingResponse, "describe_scaling_activities")
def _describe_activities(original, self):
    name, wanted = self._get_param("AutoScalingGroupName"), set(self._get_param("ActivityIds", []))
    groups = [g for g in self.autoscaling_backend.autoscaling_groups.values() if not name or g.name == name]
    found = [a for g in groups for a in reversed(getattr(g, "emulated_activities", []))
             if not wanted or a["ActivityId"] in wanted]
    return ActionResult({"Activities": found})


# --- launches and the launch template of each instance ------------------------------------------------

def launch_template_of(group: autoscaling.FakeAutoScalingGroup) -> dict | None:
    """The launch template and resolved version the group launches with now."""
    template = group.ec2_launch_template
    if template is None:
        return None
    version = template.get_version(group.launch_template_version).number
    return {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name, "Version": str(version)}


@replace(autoscaling.FakeAutoScalingGroup, "replace_autoscaling_group_instances")
def _launch(original, self, count_needed, propagated_tags):
    before = {s.instance.id for s in self.instance_states}
    running = len(self.active_instances())
    original(self, count_needed, propagated_tags)
    template = launch_template_of(self)
    for number, state in enumerate([s for s in self.instance_states if s.instance.id not in before], 1):
        state.launch_template_spec = template
        cause = LAUNCH_CAUSE.get() or (
            f"At {stamp(now())} an instance was started in response to a difference between desired and actual "
            f"capacity, increasing the capacity from {running + number - 1} to {running + number}.")
        activity = _activity(self, f"Launching a new EC2 instance: {state.instance.id}", cause, state, "Successful")
        _announce(self, "EC2 Instance Launch Successful", state, activity, "EC2", "AutoScalingGroup")


_moto_launch_template = autoscaling.InstanceState.launch_template
# The version an instance was launched with, not the template's default version at the time of asking.
autoscaling.InstanceState.launch_template = property(
    lambda self: getattr(self, "launch_template_spec", None) or _moto_launch_template.fget(self))
FIXES.append("InstanceState.launch_template")


# --- terminations and lifecycle hooks ------------------------------------------------------------------

def _termination_hooks(group: autoscaling.FakeAutoScalingGroup) -> list[autoscaling.LifecycleHook]:
    return [h for h in _backend(group).describe_lifecycle_hooks(group.name) if h.lifecycle_transition == TERMINATING]


def terminate(group: autoscaling.FakeAutoScalingGroup, states: list[autoscaling.InstanceState], cause: str) -> None:
    """Take instances out of service as Auto Scaling does: through the group's termination hooks."""
    hooks = _termination_hooks(group)
    started = []
    for state in states:
        if getattr(state, "termination", None) is not None:
            continue  # already on its way out
        activity = _activity(group, f"Terminating EC2 instance: {state.instance.id}", cause, state)
        state.termination = Termination(activity, {hook.name: str(uuid.uuid4()) for hook in hooks})
        state.lifecycle_state = "Terminating:Wait" if hooks else "Terminating"
        started.append(state)
    for state in started:
        for hook in hooks:
            _emit(group, "EC2 Instance-terminate Lifecycle Action", {
                "LifecycleActionToken": state.termination.pending[hook.name],
                "AutoScalingGroupName": group.name,
                "LifecycleHookName": hook.name,
                "EC2InstanceId": state.instance.id,
                "LifecycleTransition": TERMINATING,
                "Origin": "AutoScalingGroup",
                "Destination": "EC2",
            }, [group.arn])
    if drained_by_ecs(group):
        for state in started:
            if DRAINING_HOOK in state.termination.pending:
                complete(group, state, DRAINING_HOOK, "CONTINUE")  # ECS drains the host (no task here), then this
    for state in started:
        _finish_if_released(group, state)


def complete(group: autoscaling.FakeAutoScalingGroup, state: autoscaling.InstanceState, hook: str,
             result: str) -> None:
    # https://docs.aws.amazon.com/autoscaling/ec2/userguide/completing-lifecycle-hooks.html
    with _LOCK:
        if result == "ABANDON":
            state.termination.pending.clear()
        else:
            state.termination.pending.pop(hook, None)
    _finish_if_released(group, state)


def _finish_if_released(group: autoscaling.FakeAutoScalingGroup, state: autoscaling.InstanceState) -> None:
    with _LOCK:
        termination = state.termination
        if termination.pending or termination.done:
            return
        termination.done = True
    state.lifecycle_state = "Terminating:Proceed"
    _backend(group).ec2_backend.terminate_instances([state.instance.id])
    if state in group.instance_states:
        group.instance_states.remove(state)
    termination.activity.update(StatusCode="Successful", Progress=100, EndTime=now())
    _announce(group, "EC2 Instance Terminate Successful", state, termination.activity, "AutoScalingGroup", "EC2")
    if _backend(group).autoscaling_groups.get(group.name) is group:
        _backend(group).update_attached_elbs(group.name)
        _backend(group).update_attached_target_groups(group.name)


def _group_and_state(backend: autoscaling.AutoScalingBackend, instance_id: str):
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return group, state
    return None, None


@replace(autoscaling.FakeAutoScalingGroup, "set_desired_capacity")
def _set_desired_capacity(original, self, new_capacity):
    desired = self.min_size if new_capacity is None else new_capacity
    running = self.active_instances()
    mixed = self.mixed_instances_policy and self.mixed_instances_policy.get("LaunchTemplate", {}).get("Overrides")
    if mixed or (desired or 0) >= len(running):
        return original(self, new_capacity)
    self.desired_capacity = desired
    leaving = [s for s in running if not s.protected_from_scale_in][:len(running) - desired]
    terminate(self, leaving, f"At {stamp(now())} a user request update of AutoScalingGroup constraints changed the "
                             f"desired capacity, shrinking the capacity from {len(running)} to {desired}.")
    if _backend(self).autoscaling_groups.get(self.name) is self:
        _backend(self).update_attached_elbs(self.name)
        _backend(self).update_attached_target_groups(self.name)


@replace(autoscaling.AutoScalingBackend, "terminate_instance")
def _terminate_instance(original, self, instance_id, should_decrement):
    group, state = _group_and_state(self, instance_id)
    if group is None:
        return original(self, instance_id, should_decrement)
    size = group.desired_capacity
    if should_decrement:
        if size - 1 < group.min_size:
            raise autoscaling_errors.ValidationError(
                f"Currently, desiredSize equals minSize ({group.min_size}). Terminating instance without replacement "
                "will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false "
                "or lower group's min size.")
        group.desired_capacity = size - 1
    shrinking = f", shrinking the capacity from {size} to {size - 1}." if should_decrement else "."
    terminate(group, [state], f"At {stamp(now())} instance {instance_id} was taken out of service in response to "
                              f"a user request{shrinking}")
    if not should_decrement:
        group.set_desired_capacity(group.desired_capacity)  # the replacement
    return state.termination.activity


@replace(autoscaling.AutoScalingBackend, "notify_terminate_instances")
def _instances_terminated(original, self, instance_ids):
    """Instances terminated through EC2 leave their group, which notices and replaces them."""
    gone = [(g, s) for g in self.autoscaling_groups.values() for s in g.instance_states
            if s.instance.id in instance_ids]
    activities = [_activity(g, f"Terminating EC2 instance: {s.instance.id}",
                            f"At {stamp(now())} an instance was taken out of service in response to an EC2 health "
                            "check indicating it has been terminated or stopped.", s, "Successful") for g, s in gone]
    for (group, state), activity in zip(gone, activities):
        _announce(group, "EC2 Instance Terminate Successful", state, activity, "AutoScalingGroup", "EC2")
    original(self, instance_ids)


@add(AutoScalingResponse, "complete_lifecycle_action")
def _complete_lifecycle_action(self):
    group, state = _waiting(self)
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise autoscaling_errors.ValidationError("LifecycleActionResult must be CONTINUE or ABANDON")
    complete(group, state, self._get_param("LifecycleHookName"), result)
    return EmptyResult()


@add(AutoScalingResponse, "record_lifecycle_action_heartbeat")
def _record_heartbeat(self):
    _waiting(self)  # no clock runs the timeout; the action only has to exist
    return EmptyResult()


def _waiting(request: AutoScalingResponse):
    """The group and instance whose lifecycle action a request names, or AWS's ValidationError."""
    hook, token = request._get_param("LifecycleHookName"), request._get_param("LifecycleActionToken")
    instance_id = request._get_param("InstanceId")
    group = request.autoscaling_backend.autoscaling_groups.get(request._get_param("AutoScalingGroupName"))
    for state in group.instance_states if group is not None else []:
        termination = getattr(state, "termination", None)
        if termination is not None and hook in termination.pending and \
                (state.instance.id == instance_id or termination.pending[hook] == token):
            return group, state
    subject = f"instance ID {instance_id}" if instance_id else f"token {token}"
    raise autoscaling_errors.ValidationError(f"No active Lifecycle Action found with {subject}")


@replace(autoscaling.AutoScalingBackend, "delete_lifecycle_hook")
def _delete_lifecycle_hook(original, self, as_name, name):
    group = self.autoscaling_groups.get(as_name)
    original(self, as_name, name)
    for state in list(group.instance_states) if group is not None else []:
        termination = getattr(state, "termination", None)
        if termination is not None and name in termination.pending:
            complete(group, state, name, "CONTINUE")


# --- ECS managed draining ------------------------------------------------------------------------------

def _group_of(account_id: str, region_name: str, name_or_arn: str) -> autoscaling.FakeAutoScalingGroup | None:
    groups = autoscaling.autoscaling_backends[account_id][region_name].autoscaling_groups.values()
    return next((g for g in groups if name_or_arn in (g.name, g.arn)), None)


@replace(ecs.EC2ContainerServiceBackend, "create_capacity_provider")
def _create_capacity_provider(original, self, name, asg_details, tags):
    asg_details.setdefault("managedDraining", "ENABLED")
    provider = original(self, name, asg_details, tags)
    group = _group_of(self.account_id, self.region_name, asg_details.get("autoScalingGroupArn", ""))
    if group is not None and asg_details["managedDraining"] == "ENABLED" and SETTINGS.model_draining_hook:
        hook = _backend(group).create_lifecycle_hook(DRAINING_HOOK, group.name, TERMINATING, DRAINING_TIMEOUT,
                                                     "CONTINUE")
        # moto gives every hook an example role and SQS queue of another account; the emulated ECS
        # needs neither (it completes the hook itself).
        hook.role_arn = hook.notification_target_arn = None
    return provider


def drained_by_ecs(group: autoscaling.FakeAutoScalingGroup) -> bool:
    """Whether an ECS capacity provider with managed draining still stands over the group."""
    providers = ecs.ecs_backends[group.account_id][group.region].capacity_providers.values()
    return any(p.auto_scaling_group_provider.get("autoScalingGroupArn") in (group.name, group.arn)
               and p.auto_scaling_group_provider.get("managedDraining") == "ENABLED" for p in providers)


# --- deleting a group ----------------------------------------------------------------------------------

def _held(group: autoscaling.FakeAutoScalingGroup) -> str:
    """Why the group's remaining instances would not terminate, for the stack event."""
    reasons = []
    hooks = {hook.name: hook for hook in _backend(group).describe_lifecycle_hooks(group.name)}
    waiting: dict[str, list[str]] = {}
    for state in group.instance_states:
        termination = getattr(state, "termination", None)
        for name in termination.pending if termination is not None else []:
            waiting.setdefault(name, []).append(state.instance.id)
    for name, instances in waiting.items():
        hook = hooks.get(name)
        timeout, result = (hook.heartbeat_timeout, hook.default_result) if hook else ("?", "?")
        nobody = " (no ECS capacity provider with managed draining is left over the group to complete it)" \
            if name == DRAINING_HOOK and not drained_by_ecs(group) else " (nothing completes its lifecycle action)"
        reasons.append(f"instances {', '.join(sorted(instances))} would wait in Terminating:Wait on lifecycle hook "
                       f"{name} for its heartbeat timeout of {timeout} s, then {result}{nobody}")
    protected = sorted(s.instance.id for s in group.instance_states if s.lifecycle_state == "InService")
    if protected:
        reasons.append(f"instances {', '.join(protected)} are protected from scale-in and would never terminate")
    return f"Deleting Auto Scaling group {group.name} would not finish: " + "; ".join(reasons)


def delete_for_cloudformation(group: autoscaling.FakeAutoScalingGroup) -> None:
    """CloudFormation's delete: scale to zero, wait for the instances to terminate, delete the group."""
    backend = _backend(group)
    if backend.autoscaling_groups.get(group.name) is not group:
        return  # already gone: CloudFormation counts that as deleted
    group.min_size = 0
    group.set_desired_capacity(0)
    if group.instance_states:
        raise HostsRemain(_held(group))
    backend.delete_auto_scaling_group(group.name, force=True)


@replace(autoscaling.FakeAutoScalingGroup, "delete")
def _group_delete(original, self, account_id, region_name):
    delete_for_cloudformation(self)


@replace_classmethod(autoscaling.FakeAutoScalingGroup, "delete_from_cloudformation_json")
def _group_delete_from_template(original, cls, resource_name, cloudformation_json, account_id, region_name):
    group = autoscaling.autoscaling_backends[account_id][region_name].autoscaling_groups.get(resource_name)
    if group is not None:
        delete_for_cloudformation(group)


@replace(autoscaling.AutoScalingBackend, "delete_auto_scaling_group")
def _delete_group(original, self, group_name, force=False):
    group = self.autoscaling_groups.get(group_name)
    if group is not None:
        if group.instance_states and not force:
            raise ResourceInUse("You cannot delete an AutoScalingGroup while there are instances or pending Spot "
                                "instance request(s) still in the group.")
        for state in list(group.instance_states):  # ForceDelete drops outstanding lifecycle actions
            if getattr(state, "termination", None) is None:
                state.termination = Termination(_activity(
                    group, f"Terminating EC2 instance: {state.instance.id}",
                    f"At {stamp(now())} an instance was taken out of service in response to a user request "
                    "to delete the group.", state), {})
            with _LOCK:
                state.termination.pending.clear()
            _finish_if_released(group, state)
        for key in [k for k, h in self.lifecycle_hooks.items() if h.auto_scaling_group_name == group_name]:
            del self.lifecycle_hooks[key]  # they go with their group
        group.emulated_gone = True
    return original(self, group_name)


@replace(AutoScalingResponse, "delete_auto_scaling_group")
def _delete_group_request(original, self):
    self.autoscaling_backend.delete_auto_scaling_group(self._get_param("AutoScalingGroupName"),
                                                      force=self._get_bool_param("ForceDelete", False))
    return EmptyResult()
