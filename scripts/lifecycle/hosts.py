"""The deployment's hosts after a deploy: a new launch template reaches them through an instance refresh.

A new AMI (the SSM parameter moved on) or a new InstanceType makes CloudFormation write a new
launch template version and point the Auto Scaling group at it, but running hosts keep the version
they were launched with. `refresh` starts the group's instance refresh for the hosts on an older
version: a replacement launches before each old host goes (MinHealthyPercentage 100, up to 200),
and ECS's managed draining moves the old host's tasks first
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/instance-refresh-overview.html,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/managed-instance-draining.html).
The group is found by stack membership: the root's ClusterStack, its HostGroup resource.
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from lifecycle.aws import Target, missing

CLUSTER_STACK, GROUP = "ClusterStack", "HostGroup"
ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
PREFERENCES = {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, "SkipMatching": True,
               "InstanceWarmup": 120}


def group(target: Target) -> str | None:
    """The physical name of the deployment's Auto Scaling group, or None before it exists."""
    cfn = target.client("cloudformation")
    try:
        nested = cfn.describe_stack_resource(StackName=target.stack, LogicalResourceId=CLUSTER_STACK)
        cluster = nested["StackResourceDetail"].get("PhysicalResourceId")
        if not cluster:
            return None
        found = cfn.describe_stack_resource(StackName=cluster, LogicalResourceId=GROUP)
    except ClientError as error:
        if missing(error):
            return None
        raise
    return found["StackResourceDetail"].get("PhysicalResourceId") or None


def stale(target: Target, name: str) -> tuple[list[str], int]:
    """Hosts in service on a launch template version other than the group's, and how many there are."""
    (asg,) = target.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"]
    wanted = asg.get("LaunchTemplate", {})
    running = [i for i in asg["Instances"] if i["LifecycleState"] == "InService"]
    old = [i["InstanceId"] for i in running
           if (i.get("LaunchTemplate", {}).get("LaunchTemplateId"), i.get("LaunchTemplate", {}).get("Version"))
           != (wanted.get("LaunchTemplateId"), wanted.get("Version"))]
    return old, len(running)


def refresh(target: Target) -> str | None:
    """Start an instance refresh when hosts run an older launch template; returns what was done."""
    name = group(target)
    if name is None:
        return None
    old, running = stale(target, name)
    if not old:
        return None
    scaling = target.client("autoscaling")
    current = scaling.describe_instance_refreshes(AutoScalingGroupName=name, MaxRecords=1)["InstanceRefreshes"]
    if current and current[0]["Status"] in ACTIVE:
        return (f"hosts: {len(old)} of {running} on an older launch template; instance refresh "
                f"{current[0]['InstanceRefreshId']} is already {current[0]['Status']}")
    started = scaling.start_instance_refresh(AutoScalingGroupName=name, Strategy="Rolling", Preferences=PREFERENCES)
    return (f"hosts: {len(old)} of {running} run an older launch template (a new AMI or instance type); instance "
            f"refresh {started['InstanceRefreshId']} replaces them, a new host before each old one goes "
            f"(aws autoscaling describe-instance-refreshes --auto-scaling-group-name {name})")
