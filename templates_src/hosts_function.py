"""The hosts function, inline in cluster.yaml (at most 4096 characters: templates_src/cluster.py checks).

Keeps the hosts' public IPs in the load balancer's HostAddresses group (bridge containers call the
app's public URLs from them), on every launch, termination and a schedule; and, as the custom
resource's Delete, removes ECS's draining hook so the hosts terminate at once.
"""
import json
import os
import urllib.request

import boto3
from botocore.exceptions import ClientError

HOOK = "ecs-managed-draining-termination-hook"
GONE = ("InvalidPermission.Duplicate", "InvalidSecurityGroupRuleId.NotFound", "InvalidPermission.NotFound")


def addresses(group):
    """Public IP (/32) -> instance, for the group's instances that are not terminating."""
    groups = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    ids = [i["InstanceId"] for g in groups["AutoScalingGroups"] for i in g["Instances"]
           if not i["LifecycleState"].startswith("Terminat")]
    found = {}
    for page in boto3.client("ec2").get_paginator("describe_instances").paginate(InstanceIds=ids) if ids else ():
        for r in page["Reservations"]:
            for i in r["Instances"]:
                if i.get("PublicIpAddress"):
                    found[i["PublicIpAddress"] + "/32"] = i["InstanceId"]
    return found


def reconcile(group, sg, ports):
    """One ingress rule per host and port, none for hosts that are gone; racing runs tolerate each other."""
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
    for call, items in ((revoke, stale), (authorize, new)):
        for item in items:
            try:
                call(ec2, sg, item, want)
            except ClientError as error:
                if error.response["Error"]["Code"] not in GONE:
                    raise
    return f"{len(want)} rules: {len(new)} added, {len(stale)} removed"


def revoke(ec2, sg, rule, want):
    ec2.revoke_security_group_ingress(GroupId=sg, SecurityGroupRuleIds=[rule])


def authorize(ec2, sg, key, want):
    cidr, port = key
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
        "IpRanges": [{"CidrIp": cidr, "Description": "host " + want[key]}]}])


def release(group):
    """Deleting a hook completes its outstanding actions (CONTINUE for terminating instances)."""
    scaling = boto3.client("autoscaling")
    hooks = scaling.describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]
    if not any(h["LifecycleHookName"] == HOOK for h in hooks):
        return "no draining hook"
    scaling.delete_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName=HOOK)
    return "draining hook removed"


def handler(event, context):
    if "RequestType" not in event:  # EventBridge: a host launched or terminated, or the schedule
        ports = [int(p) for p in os.environ["PORTS"].split(",") if p]
        return reconcile(os.environ["GROUP"], os.environ["SECURITY_GROUP"], ports)
    props = event["ResourceProperties"]
    group = props["AutoScalingGroupName"]
    status = "SUCCESS"
    try:
        if event["RequestType"] == "Delete":
            reason = release(group)
        else:
            reason = reconcile(group, props["SecurityGroupId"], [int(p) for p in props["Ports"]])
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        # A failed release only slows the delete (the hook times out); a failed reconcile is a fault.
        status = "SUCCESS" if event["RequestType"] == "Delete" else "FAILED"
    print(status, reason)
    body = {"Status": status, "Reason": reason[:1000], "PhysicalResourceId": group + "-hosts",
            **{key: event[key] for key in ("StackId", "RequestId", "LogicalResourceId")}}
    request = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=30).close()
