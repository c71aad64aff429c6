"""templates_src/hosts_function.py: cluster.yaml's hosts function, as is (cluster.py says what it does)."""
import json
import os
import urllib.request

import boto3
from botocore.exceptions import ClientError

HOOK = "ecs-managed-draining-termination-hook"
GONE = ("InvalidPermission.Duplicate", "InvalidSecurityGroupRuleId.NotFound", "InvalidPermission.NotFound")


def addresses(group):
    """Public IP (/32) -> instance, for the group's hosts that are not terminating."""
    groups = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    ids = [i["InstanceId"] for g in groups["AutoScalingGroups"] for i in g["Instances"]
           if not i["LifecycleState"].startswith("Terminat")]
    pages = boto3.client("ec2").get_paginator("describe_instances").paginate(InstanceIds=ids) if ids else []
    return {i["PublicIpAddress"] + "/32": i["InstanceId"] for page in pages for r in page["Reservations"]
            for i in r["Instances"] if i.get("PublicIpAddress")}


def reconcile(group, sg, ports):
    """A rule per host and port, none for hosts gone; racing runs tolerate each other."""
    if not sg or not ports:
        return "no addresses to keep"
    ec2 = boto3.client("ec2")
    want = {(cidr, p): i for cidr, i in addresses(group).items() for p in ports}
    have = {}
    for page in ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=[{"Name": "group-id", "Values": [sg]}]):
        for r in page["SecurityGroupRules"]:
            if not r["IsEgress"] and r.get("CidrIpv4"):
                have[r["CidrIpv4"], r["FromPort"]] = r["SecurityGroupRuleId"]
    stale = [rule for key, rule in have.items() if key not in want]
    new = [key for key in want if key not in have]
    for rule in stale:
        quietly(ec2.revoke_security_group_ingress, GroupId=sg, SecurityGroupRuleIds=[rule])
    for cidr, port in new:
        quietly(ec2.authorize_security_group_ingress, GroupId=sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": cidr, "Description": "host " + want[cidr, port]}]}])
    return f"{len(want)} rules: {len(new)} added, {len(stale)} removed"


def quietly(call, **args):
    """A rule another run already wrote or removed is no fault."""
    try:
        call(**args)
    except ClientError as error:
        if error.response["Error"]["Code"] not in GONE:
            raise


def release(group):
    """Deleting a hook completes what it holds (CONTINUE for terminating hosts)."""
    scaling = boto3.client("autoscaling")
    hooks = scaling.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]
    if not any(h["LifecycleHookName"] == HOOK for h in hooks):
        return "no draining hook"
    scaling.delete_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName=HOOK)
    return "draining hook removed"


def handler(event, context):
    if "RequestType" not in event:  # EventBridge: a launch, a termination, the schedule
        ports = [int(p) for p in os.environ["PORTS"].split(",") if p]
        return reconcile(os.environ["GROUP"], os.environ["SECURITY_GROUP"], ports)
    props, delete = event["ResourceProperties"], event["RequestType"] == "Delete"
    group, status = props["AutoScalingGroupName"], "SUCCESS"
    try:
        ports = [int(p) for p in props["Ports"]]
        reason = release(group) if delete else reconcile(group, props["SecurityGroupId"], ports)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        status = "SUCCESS" if delete else "FAILED"  # a failed release only slows the delete
    print(status, reason)
    body = {"Status": status, "Reason": reason[:1000], "PhysicalResourceId": group + "-hosts",
            **{key: event[key] for key in ("StackId", "RequestId", "LogicalResourceId")}}
    request = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=30).close()
