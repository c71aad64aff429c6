"""make cleanup: delete the root and registry stacks, the templates bucket, and prove nothing is left.

Only what the deployment made: a root or registry stack without the tag deploy writes on both, or
a templates bucket of another account, is refused (exit 2) before anything is deleted; in the
bucket, only the object versions deploy recorded uploading go, and the bucket itself only when
deploy created it for this stack and nothing else is left in it (bucket.py).

A delete that ends DELETE_FAILED is diagnosed from its events and the known traps fixed before a
retry: instances still registered in Cloud Map (a namespace or service cannot go while they are),
images in a repository, hosts kept by scale-in protection, services or tasks left in the cluster,
network interfaces left in a security group, subnet or VPC. The data a stack delete keeps (the
EFS file system, its KMS key, the secrets; see data.py) goes too unless KEEP_DATA=1, whether the
stack made it or took it back from an earlier deployment: it is known from the root stack while
that exists and from the deployment's tags once it is gone, so a later cleanup finds what a
KEEP_DATA one left. The task definition revisions the stacks no longer hold (kept for rollback, or
deregistered by CloudFormation) are deregistered and deleted, each proven the deployment's by its
tags (rollback.py). Then the Resource Groups Tagging API lists whatever still carries the stack's
tag; anything there but the data kept (or being deleted) is reported and the exit is non-zero.
The validation record a certificate made for DomainName left in the user's hosted zone is named,
not deleted (see kept_validation_records).
Running it again after success, or on a stack that never existed, succeeds.
"""
from __future__ import annotations

import time
from typing import Callable

from botocore.exceptions import ClientError

from lifecycle import bucket as templates_bucket
from lifecycle import data, rollback, rollouts, stacks, wait
from lifecycle.aws import TAG, LifecycleError, Target, missing
from templates_src.app.words import plural

TRIES = 3


def refuse_strangers(target: Target, bucket: str | None) -> None:
    """Before anything is deleted: refuse (exit 2) a root or registry stack of these names that the
    deployment did not make, a templates bucket another account owns, and a deploy still running."""
    stacks.refuse_strangers(target)
    bucket = bucket or target.default_bucket()
    if templates_bucket.exists(target, bucket):
        templates_bucket.clear_stale_lock(target, bucket)


def run(target: Target, bucket: str | None, keep_data: bool = False,
        known: list[data.Item] | None = None) -> list[str]:
    """Delete everything the deployment made (its data too, unless keep_data); returns the ARNs
    still tagged with its name. `known`: the data found before (for the prompt), else found here."""
    refuse_strangers(target, bucket)
    if known is None:
        known, strangers = data.in_stack(target)
        for line in strangers:
            print(line)
    records = kept_validation_records(target)  # read while the certificate still exists
    for name in (target.stack, target.registry):  # the root uses the registry's repositories
        remove(target, name)
    revisions = rollback.remove_retained(target)  # kept for make rollback; the stacks no longer hold them
    if revisions:
        print(f"task definitions: {plural(len(revisions), 'revision')} of {target.stack} deleted "
              f"({', '.join(rollouts.revision(arn) for arn in revisions)})")
    for line in records:
        print(line)
    # Once the stacks are gone, what they kept is described again (and found by its tags too).
    found = data.merge(data.find(target), data.again(target, known))
    if keep_data:
        data.keep(target, found)
    else:
        data.delete(target, found)
    bucket = bucket or target.default_bucket()
    kept = {f"arn:aws:s3:::{bucket}"} if templates_bucket.remove(target, bucket) else set()
    return [arn for arn in leftovers(target) if not data.accounts_for(found, arn) and arn not in kept]


def kept_validation_records(target: Target) -> list[str]:
    """What deleting the root leaves in the user's hosted zone: the CNAME each certificate the stack made
    was validated through. CloudFormation never deletes it, and nor does cleanup: every certificate for
    the same name in the account validates and renews through that one record, and nothing marks it
    as this deployment's (https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1603).
    """
    root = stacks.describe(target, target.stack)
    zone = stacks.parameters(root).get("HostedZoneId", "")
    if not zone:  # the stack makes a certificate only in a hosted zone it was given
        return []
    lines = []
    for resource in stacks.resources(target, root["StackId"]):
        if resource["ResourceType"] != "AWS::CertificateManager::Certificate" or not resource.get("PhysicalResourceId"):
            continue
        try:
            described = target.client("acm").describe_certificate(CertificateArn=resource["PhysicalResourceId"])
        except ClientError as error:
            if missing(error):
                continue
            raise
        for option in described["Certificate"].get("DomainValidationOptions", []):
            record = option.get("ResourceRecord")
            if record:
                lines.append(f"dns: the validation record {record['Name']} ({record['Type']}) of the certificate for "
                             f"{option['DomainName']} stays in hosted zone {zone}, as CloudFormation leaves it; any "
                             f"other certificate for that name renews through it, so delete it by hand only if none")
    return lines


def remove(target: Target, name: str) -> None:
    stack = stacks.settle(target, name)
    if stack is None:
        print(f"{name}: no such stack (nothing to delete)")
        return
    unprotect_hosts(target, stack["StackId"])
    for attempt in range(1, TRIES + 1):
        since = stacks.now()
        failed = stacks.delete(target, name, note=f"retry {attempt - 1} of {TRIES - 1}" if attempt > 1 else "")
        if failed is None:
            # A retry that succeeds settles the DELETE_FAILED of the attempt before: say so, so it does not alarm.
            print(f"{name}: deleted" + (f" on retry {attempt - 1}: the DELETE_FAILED above is fixed"
                                        if attempt > 1 else ""))
            return
        blocking = [e for _, e in stacks.failures(target, failed["StackId"], since)
                    if e["ResourceStatus"] == "DELETE_FAILED" and e["ResourceType"] != "AWS::CloudFormation::Stack"]
        print(f"{name}: DELETE_FAILED (attempt {attempt} of {TRIES}); held by:")
        fixed = 0
        for event in blocking:
            print(f"  {event['LogicalResourceId']} ({event['ResourceType']} {event.get('PhysicalResourceId')}): "
                  f"{event.get('ResourceStatusReason', '')}")
            fix = FIXES.get(event["ResourceType"])
            if fix is None:
                print("    no known fix for this type")
                continue
            for line in fix(target, event.get("PhysicalResourceId") or ""):
                print(f"    fixed: {line}")
                fixed += 1
        if not fixed:
            break
    raise LifecycleError(f"{name} stays DELETE_FAILED and no known trap explains it; the events above say what "
                         "holds it. Remove that by hand, then run make cleanup again")


def unprotect_hosts(target: Target, stack_id: str) -> None:
    """Hosts protected from scale-in keep an Auto Scaling group (and so the stack) from being deleted."""
    for resource in stacks.resources(target, stack_id):
        if resource["ResourceType"] == "AWS::AutoScaling::AutoScalingGroup":
            for line in _release_hosts(target, resource.get("PhysicalResourceId", "")):
                print(f"  {line}")


# --- the traps, by the type of the resource that did not delete ----------------------------------

def _release_hosts(target: Target, group: str) -> list[str]:
    autoscaling = target.client("autoscaling")
    done = []
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=[group]):
        for asg in page["AutoScalingGroups"]:
            protected = [i["InstanceId"] for i in asg.get("Instances", []) if i.get("ProtectedFromScaleIn")]
            if protected:
                autoscaling.set_instance_protection(AutoScalingGroupName=group, InstanceIds=protected,
                                                    ProtectedFromScaleIn=False)
                done.append(f"scale-in protection removed from {plural(len(protected), 'host')} of {group}")
            if asg["MinSize"] or asg["DesiredCapacity"]:
                autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, DesiredCapacity=0)
                done.append(f"{group} scaled to 0 hosts")
    return done


def _deregister_instances(target: Target, service_id: str) -> list[str]:
    sd = target.client("servicediscovery")
    done = []
    try:
        pages = list(sd.get_paginator("list_instances").paginate(ServiceId=service_id))
    except ClientError as error:
        if missing(error):
            return []
        raise
    for page in pages:
        for instance in page["Instances"]:
            operation = sd.deregister_instance(ServiceId=service_id, InstanceId=instance["Id"])["OperationId"]
            _operation_done(target, operation)
            done.append(f"Cloud Map instance {instance['Id']} deregistered from {service_id}")
    return done


def _operation_done(target: Target, operation: str) -> None:
    """Cloud Map operations are asynchronous and have no boto3 waiter."""
    sd = target.client("servicediscovery")
    with wait.shown(f"Cloud Map: waiting for operation {operation} to end",
                    f"Ctrl-C stops waiting; make cleanup STACK={target.stack} again goes on", after=3):
        for _ in range(60):
            status = sd.get_operation(OperationId=operation)["Operation"]["Status"]
            if status in ("SUCCESS", "FAIL"):
                return
            time.sleep(2)


def _empty_namespace(target: Target, namespace_id: str) -> list[str]:
    sd = target.client("servicediscovery")
    done = []
    for page in sd.get_paginator("list_services").paginate(
            Filters=[{"Name": "NAMESPACE_ID", "Values": [namespace_id], "Condition": "EQ"}]):
        for service in page["Services"]:
            done += _deregister_instances(target, service["Id"])
            sd.delete_service(Id=service["Id"])
            done.append(f"Cloud Map service {service['Name']} ({service['Id']}) deleted from {namespace_id}")
    return done


def _empty_repository(target: Target, name: str) -> list[str]:
    ecr = target.client("ecr")
    ids = [image for page in ecr.get_paginator("list_images").paginate(repositoryName=name)
           for image in page["imageIds"]]
    for start in range(0, len(ids), 100):
        ecr.batch_delete_image(repositoryName=name, imageIds=ids[start:start + 100])
    return [f"{plural(len(ids), 'image')} deleted from {name}"] if ids else []


def _drain_cluster(target: Target, cluster: str) -> list[str]:
    ecs = target.client("ecs")
    done = []
    for page in ecs.get_paginator("list_services").paginate(cluster=cluster):
        for arn in page["serviceArns"]:
            ecs.update_service(cluster=cluster, service=arn, desiredCount=0)
            ecs.delete_service(cluster=cluster, service=arn, force=True)
            done.append(f"service {arn.rsplit('/', 1)[-1]} deleted from {cluster}")
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster):
        for arn in page["taskArns"]:
            ecs.stop_task(cluster=cluster, task=arn, reason="make cleanup")
            done.append(f"task {arn.rsplit('/', 1)[-1]} stopped")
    return done


def _detached_interfaces(key: str) -> Callable[[Target, str], list[str]]:
    """Network interfaces left "available" (e.g. by tasks) keep a security group, subnet or VPC alive."""
    def fix(target: Target, resource_id: str) -> list[str]:
        ec2 = target.client("ec2")
        done = []
        for page in ec2.get_paginator("describe_network_interfaces").paginate(
                Filters=[{"Name": key, "Values": [resource_id]}]):
            for eni in page["NetworkInterfaces"]:
                if eni["Status"] == "available":
                    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
                    done.append(f"detached network interface {eni['NetworkInterfaceId']} deleted")
                else:
                    print(f"    {eni['NetworkInterfaceId']} is in use ({eni.get('Description', '')}): not touched")
        return done
    return fix


def _via_cluster(target: Target, physical_id: str) -> list[str]:
    """A capacity provider association or capacity provider: the cluster's services and hosts go first."""
    done = []
    cluster = physical_id.split("|")[0] if "|" in physical_id else physical_id
    try:
        done += _drain_cluster(target, cluster)
    except ClientError as error:
        if not missing(error) and "ClusterNotFound" not in str(error):
            raise
    return done


FIXES: dict[str, Callable[[Target, str], list[str]]] = {
    "AWS::ServiceDiscovery::Service": _deregister_instances,
    "AWS::ServiceDiscovery::PrivateDnsNamespace": _empty_namespace,
    "AWS::ECR::Repository": _empty_repository,
    "AWS::ECS::Cluster": _drain_cluster,
    "AWS::ECS::ClusterCapacityProviderAssociations": _via_cluster,
    "AWS::AutoScaling::AutoScalingGroup": _release_hosts,
    "AWS::EC2::SecurityGroup": _detached_interfaces("group-id"),
    "AWS::EC2::Subnet": _detached_interfaces("subnet-id"),
    "AWS::EC2::VPC": _detached_interfaces("vpc-id"),
}


# --- the bucket and the final check ------------------------------------------------------------------

def leftovers(target: Target) -> list[str]:
    """ARNs still tagged with the stack, but for KMS keys pending deletion: KMS deletes a key only
    after its waiting period, so such a key is as deleted as it can be made."""
    tagging = target.client("resourcegroupstaggingapi")
    found = [item["ResourceARN"] for page in tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG, "Values": [target.stack]}]) for item in page["ResourceTagMappingList"]]
    scheduled = {item.arn for item in data.keys(target, {data.key_id(arn) for arn in found if ":kms:" in arn})
                 if item.state == "PendingDeletion"}
    return [arn for arn in found if arn not in scheduled]
