"""Auto Scaling: group sizes checked as the API checks them; a group already gone deletes.

moto 5.2.5 takes a MinSize above MaxSize or a desired capacity outside them, and fails deleting a group that is
gone.
"""
from __future__ import annotations

from moto.autoscaling import models as autoscaling

from . import replace


# MinSize <= DesiredCapacity <= MaxSize
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html
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


# A group already gone counts as deleted, as for every resource
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackEvent.html
@replace(autoscaling.FakeAutoScalingGroup, "delete")
def _group_delete(original, self, account_id, region_name):
    if self.name in autoscaling.autoscaling_backends[account_id][region_name].autoscaling_groups:
        original(self, account_id, region_name)
