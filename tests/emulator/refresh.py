"""Instance refresh: StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh, which moto lacks.

The emulator replaces at once what a real refresh replaces over time
(https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_StartInstanceRefresh.html):

- with a DesiredConfiguration launch template, the group takes it first;
- the instances replaced are all the InService ones, or with SkipMatching those whose launch template
  or version differs from what the group launches now
  (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html);
- with MaxHealthyPercentage above 100 the new instances launch before the old ones terminate,
  otherwise after; MinHealthyPercentage (0-100, default 90), MaxHealthyPercentage (100-200, only
  with MinHealthyPercentage, at most 100 above it) and InstanceWarmup are checked and reported;
- old instances terminate through the group's hooks (hosts.py): while one waits on a hook the refresh
  is InProgress, then Successful, with PercentageComplete and InstancesToUpdate counting them;
- one refresh at a time (InstanceRefreshInProgress); CancelInstanceRefresh cancels the one in
  progress, or answers ActiveInstanceRefreshNotFound.
"""
from __future__ import annotations

import uuid

from moto.autoscaling import exceptions as autoscaling_errors
from moto.autoscaling import models as autoscaling
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from . import hosts
from .fixes import add

ACTIVE = ("Pending", "InProgress", "Cancelling")


class InstanceRefreshInProgress(autoscaling_errors.AutoscalingClientError):
    code = "InstanceRefreshInProgress"


class ActiveInstanceRefreshNotFound(autoscaling_errors.AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


def _group(request: AutoScalingResponse) -> autoscaling.FakeAutoScalingGroup:
    name = request._get_param("AutoScalingGroupName")
    group = request.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise autoscaling_errors.ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup {name} not found")
    return group


def _refreshes(group: autoscaling.FakeAutoScalingGroup) -> list[dict]:
    return group.__dict__.setdefault("emulated_refreshes", [])


def preferences(given: dict) -> dict:
    """The refresh's preferences with AWS's defaults, or AWS's ValidationError."""
    chosen = {"MinHealthyPercentage": 90, "MaxHealthyPercentage": 100, "SkipMatching": False, **given}
    low, high = int(chosen["MinHealthyPercentage"]), int(chosen["MaxHealthyPercentage"])
    if not 0 <= low <= 100:
        raise autoscaling_errors.ValidationError("MinHealthyPercentage must be between 0 and 100")
    if not 100 <= high <= 200:
        raise autoscaling_errors.ValidationError("MaxHealthyPercentage must be between 100 and 200")
    if "MaxHealthyPercentage" in given and "MinHealthyPercentage" not in given:
        raise autoscaling_errors.ValidationError("If you specify MaxHealthyPercentage, you must also specify "
                                                 "MinHealthyPercentage")
    if high - low > 100:
        raise autoscaling_errors.ValidationError("The difference between MaxHealthyPercentage and "
                                                 "MinHealthyPercentage cannot be greater than 100")
    return chosen


def settle(group: autoscaling.FakeAutoScalingGroup) -> None:
    """Bring each refresh's status and counts up to date with the instances still to go."""
    present = {state.instance.id for state in group.instance_states}
    for refresh in _refreshes(group):
        if refresh["Status"] not in ACTIVE:
            continue
        left = len(set(refresh["replacing"]) & present)
        total = len(refresh["replacing"])
        refresh["InstancesToUpdate"] = left
        refresh["PercentageComplete"] = 100 if not total else round(100 * (total - left) / total)
        refresh["ProgressDetails"] = {"LivePoolProgress": {
            "PercentageComplete": refresh["PercentageComplete"], "InstancesToUpdate": left}}
        if not left:
            refresh.update(Status="Successful", EndTime=hosts.now())


def _matches(state: autoscaling.InstanceState, target: dict | None) -> bool:
    spec = getattr(state, "launch_template_spec", None)
    return target is not None and spec is not None and \
        (spec["LaunchTemplateId"], spec["Version"]) == (target["LaunchTemplateId"], target["Version"])


@add(AutoScalingResponse, "start_instance_refresh")
def _start_instance_refresh(self):
    group = _group(self)
    settle(group)
    if any(r["Status"] in ACTIVE for r in _refreshes(group)):
        raise InstanceRefreshInProgress("An Instance Refresh is already in progress and blocks the execution of this "
                                        "Instance Refresh.")
    chosen = preferences(self._get_param("Preferences") or {})
    desired = self._get_param("DesiredConfiguration") or {}
    if desired.get("LaunchTemplate"):
        group._set_launch_configuration(None, desired["LaunchTemplate"], None)
    target = hosts.launch_template_of(group)
    replacing = [s for s in group.instance_states if s.lifecycle_state == "InService"
                 and not (chosen["SkipMatching"] and _matches(s, target))]
    refresh = {
        "InstanceRefreshId": str(uuid.uuid4()),
        "AutoScalingGroupName": group.name,
        "Status": "InProgress",
        "StartTime": hosts.now(),
        "PercentageComplete": 0,
        "InstancesToUpdate": len(replacing),
        "Preferences": chosen,
        "Strategy": self._get_param("Strategy") or "Rolling",
        "replacing": [s.instance.id for s in replacing],
    }
    if desired:
        refresh["DesiredConfiguration"] = desired
    _refreshes(group).insert(0, refresh)
    stamp = hosts.stamp(hosts.now())
    token = hosts.LAUNCH_CAUSE.set(f"At {stamp} an instance was launched in response to an instance refresh.")
    launch_first = chosen["MaxHealthyPercentage"] > 100  # the group may exceed its desired capacity meanwhile
    try:
        if replacing and launch_first:
            group.replace_autoscaling_group_instances(len(replacing), group.get_propagated_tags())
        hosts.terminate(group, replacing, f"At {stamp} an instance was taken out of service in response to an "
                                          "instance refresh.")
        if replacing and not launch_first:
            group.replace_autoscaling_group_instances(len(replacing), group.get_propagated_tags())
    finally:
        hosts.LAUNCH_CAUSE.reset(token)
    settle(group)
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


@add(AutoScalingResponse, "describe_instance_refreshes")
def _describe_instance_refreshes(self):
    group = _group(self)
    settle(group)
    wanted = set(self._get_param("InstanceRefreshIds") or [])
    listed = [{k: v for k, v in r.items() if k != "replacing"} for r in _refreshes(group)
              if not wanted or r["InstanceRefreshId"] in wanted]
    return ActionResult({"InstanceRefreshes": listed})


@add(AutoScalingResponse, "cancel_instance_refresh")
def _cancel_instance_refresh(self):
    group = _group(self)
    settle(group)
    active = next((r for r in _refreshes(group) if r["Status"] in ACTIVE), None)
    if active is None:
        raise ActiveInstanceRefreshNotFound(f"No in progress or pending Instance Refresh found for Auto Scaling group "
                                            f"{group.name}")
    active.update(Status="Cancelled", StatusReason="Cancelled due to user request.", EndTime=hosts.now())
    return ActionResult({"InstanceRefreshId": active["InstanceRefreshId"]})
