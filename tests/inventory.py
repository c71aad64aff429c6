"""Everything an account holds of the kinds our stacks create, through the services' own list APIs.

Two inventories taken before a deploy and after its delete must be equal: that is what "nothing
left behind" means in the tests. Works against the emulator or a real account alike.
"""
from __future__ import annotations

from typing import Callable

import boto3

Inventory = dict[str, list[str]]
KINDS: dict[str, Callable[[boto3.Session], list[str]]] = {}


def kind(name: str) -> Callable:
    def register(function: Callable[[boto3.Session], list[str]]) -> Callable:
        KINDS[name] = function
        return function

    return register


def pages(client, operation: str, key: str, **kwargs) -> list:
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]
    return getattr(client, operation)(**kwargs).get(key, [])


def take(session: boto3.Session | None = None) -> Inventory:
    """The tests pass their session, which makes one client per service for the run (conftest.Session)."""
    session = session or boto3.Session()
    return {name: sorted(lister(session)) for name, lister in KINDS.items()}


def difference(before: Inventory, after: Inventory) -> dict[str, dict[str, list[str]]]:
    """Per kind, what appeared and what vanished; empty when the two are equal."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = set(before.get(name, [])), set(after.get(name, []))
        if old != new:
            changes[name] = {"left": sorted(new - old), "gone": sorted(old - new)}
    return changes


@kind("cloudformation stacks")
def _stacks(session):
    return [s["StackName"] + ":" + s["StackStatus"]
            for s in pages(session.client("cloudformation"), "list_stacks", "StackSummaries")
            if s["StackStatus"] != "DELETE_COMPLETE"]


@kind("s3 objects")
def _objects(session):
    s3 = session.client("s3")
    found = []
    for bucket in s3.list_buckets()["Buckets"]:
        found.append(bucket["Name"] + "/")
        listed = pages(s3, "list_objects_v2", "Contents", Bucket=bucket["Name"])
        found += [f"{bucket['Name']}/{item['Key']}" for item in listed]
    return found


@kind("ec2 vpcs")
def _vpcs(session):
    return [v["VpcId"] for v in pages(session.client("ec2"), "describe_vpcs", "Vpcs")]


@kind("ec2 subnets")
def _subnets(session):
    return [s["SubnetId"] for s in pages(session.client("ec2"), "describe_subnets", "Subnets")]


@kind("ec2 internet gateways")
def _gateways(session):
    return [g["InternetGatewayId"] + "".join(":" + a["VpcId"] for a in g.get("Attachments", []))
            for g in pages(session.client("ec2"), "describe_internet_gateways", "InternetGateways")]


@kind("ec2 route tables")
def _route_tables(session):
    found = []
    for table in pages(session.client("ec2"), "describe_route_tables", "RouteTables"):
        found.append(table["RouteTableId"])
        found += [f"{table['RouteTableId']} route {r.get('DestinationCidrBlock')}" for r in table["Routes"]]
        found += [f"{table['RouteTableId']} association {a.get('SubnetId', 'main')}" for a in table["Associations"]]
    return found


@kind("ec2 security groups")
def _security_groups(session):
    found = []
    for group in pages(session.client("ec2"), "describe_security_groups", "SecurityGroups"):
        found.append(group["GroupId"])
        found += [f"{group['GroupId']} in {rule_key(r)}" for r in group["IpPermissions"]]
        found += [f"{group['GroupId']} out {rule_key(r)}" for r in group["IpPermissionsEgress"]]
    return found


def rule_key(rule: dict) -> str:
    peers = [r["CidrIp"] for r in rule.get("IpRanges", [])] + [p["GroupId"] for p in rule.get("UserIdGroupPairs", [])]
    return f"{rule['IpProtocol']}:{rule.get('FromPort')}-{rule.get('ToPort')}:{','.join(sorted(peers))}"


@kind("ec2 launch templates")
def _launch_templates(session):
    listed = pages(session.client("ec2"), "describe_launch_templates", "LaunchTemplates")
    return [t["LaunchTemplateName"] for t in listed]


@kind("ec2 instances")
def _instances(session):
    return [i["InstanceId"] for r in pages(session.client("ec2"), "describe_instances", "Reservations")
            for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]


@kind("ec2 network interfaces")
def _interfaces(session):
    listed = pages(session.client("ec2"), "describe_network_interfaces", "NetworkInterfaces")
    return [n["NetworkInterfaceId"] for n in listed]


@kind("ec2 volumes")
def _volumes(session):
    return [v["VolumeId"] for v in pages(session.client("ec2"), "describe_volumes", "Volumes")
            if v["State"] not in ("deleted", "deleting")]


@kind("autoscaling groups")
def _groups(session):
    return [g["AutoScalingGroupName"] for g in pages(session.client("autoscaling"), "describe_auto_scaling_groups",
                                                     "AutoScalingGroups")]


@kind("ecs clusters")
def _clusters(session):
    return pages(session.client("ecs"), "list_clusters", "clusterArns")


@kind("ecs services")
def _services(session):
    ecs = session.client("ecs")
    return [arn for cluster in pages(ecs, "list_clusters", "clusterArns")
            for arn in pages(ecs, "list_services", "serviceArns", cluster=cluster)]


@kind("ecs task definitions")
def _task_definitions(session):
    return pages(session.client("ecs"), "list_task_definitions", "taskDefinitionArns", status="ACTIVE")


@kind("ecs capacity providers")
def _capacity_providers(session):
    return [p["name"] for p in session.client("ecs").describe_capacity_providers()["capacityProviders"]
            if p["name"] not in ("FARGATE", "FARGATE_SPOT")]


@kind("elbv2 load balancers")
def _load_balancers(session):
    elb = session.client("elbv2")
    found = []
    for balancer in pages(elb, "describe_load_balancers", "LoadBalancers"):
        found.append(balancer["LoadBalancerArn"])
        found += [listener["ListenerArn"] for listener in
                  pages(elb, "describe_listeners", "Listeners", LoadBalancerArn=balancer["LoadBalancerArn"])]
    return found


@kind("elbv2 target groups")
def _target_groups(session):
    return [g["TargetGroupArn"] for g in pages(session.client("elbv2"), "describe_target_groups", "TargetGroups")]


@kind("iam roles")
def _roles(session):
    # One call for every role with its attached and inline policies, not two more per role.
    # https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html
    found = []
    for role in pages(session.client("iam"), "get_account_authorization_details", "RoleDetailList", Filter=["Role"]):
        found.append(role["RoleName"])
        found += [f"{role['RoleName']} attached {p['PolicyArn']}" for p in role.get("AttachedManagedPolicies", [])]
        found += [f"{role['RoleName']} inline {p['PolicyName']}" for p in role.get("RolePolicyList", [])]
    return found


@kind("iam instance profiles")
def _profiles(session):
    listed = pages(session.client("iam"), "list_instance_profiles", "InstanceProfiles")
    return [p["InstanceProfileName"] for p in listed]


@kind("secretsmanager secrets")
def _secrets(session):
    return [s["ARN"] for s in pages(session.client("secretsmanager"), "list_secrets", "SecretList",
                                    IncludePlannedDeletion=True)]


@kind("cloud map namespaces")
def _namespaces(session):
    listed = pages(session.client("servicediscovery"), "list_namespaces", "Namespaces")
    return [n["Id"] + ":" + n["Name"] for n in listed]


@kind("cloud map services")
def _discovery_services(session):
    return [s["Id"] + ":" + s["Name"] for s in pages(session.client("servicediscovery"), "list_services", "Services")]


@kind("route53 hosted zones")
def _zones(session):
    return [z["Id"] + ":" + z["Name"] for z in pages(session.client("route53"), "list_hosted_zones", "HostedZones")]


@kind("route53 records")
def _records(session):
    route53 = session.client("route53")
    return [f"{z['Id']} {r['Name']} {r['Type']}" for z in pages(route53, "list_hosted_zones", "HostedZones")
            for r in pages(route53, "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=z["Id"])]


@kind("acm certificates")
def _certificates(session):
    return [c["CertificateArn"] for c in pages(session.client("acm"), "list_certificates", "CertificateSummaryList")]


@kind("logs log groups")
def _log_groups(session):
    return [g["logGroupName"] for g in pages(session.client("logs"), "describe_log_groups", "logGroups")]


@kind("ecr repositories")
def _repositories(session):
    return [r["repositoryName"] for r in pages(session.client("ecr"), "describe_repositories", "repositories")]


@kind("kms keys (not pending deletion)")
def _keys(session):
    kms = session.client("kms")
    # AWS-managed keys (alias/aws/ebs, made on first use) come and stay; they are not ours to delete.
    managed = {a.get("TargetKeyId") for a in pages(kms, "list_aliases", "Aliases") if a["AliasName"].startswith("alias/aws/")}
    found = []
    for key in pages(kms, "list_keys", "Keys"):
        if key["KeyId"] in managed:
            continue
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        if meta["KeyManager"] == "CUSTOMER" and meta["KeyState"] != "PendingDeletion":
            found.append(meta["KeyId"])
    return found


@kind("efs file systems, mount targets, access points")
def _file_systems(session):
    efs = session.client("efs")
    found = []
    for system in pages(efs, "describe_file_systems", "FileSystems"):
        found.append(system["FileSystemId"])
        found += [m["MountTargetId"] for m in efs.describe_mount_targets(FileSystemId=system["FileSystemId"])[
            "MountTargets"]]
        found += [a["AccessPointId"] for a in efs.describe_access_points(FileSystemId=system["FileSystemId"])[
            "AccessPoints"]]
    return found


@kind("lambda functions")
def _functions(session):
    return [f["FunctionName"] for f in pages(session.client("lambda"), "list_functions", "Functions")]


@kind("eventbridge rules")
def _rules(session):
    events = session.client("events")
    return [f"{bus['Name']}/{rule['Name']}" for bus in pages(events, "list_event_buses", "EventBuses")
            for rule in pages(events, "list_rules", "Rules", EventBusName=bus["Name"])]


@kind("application auto scaling targets and policies")
def _scaling(session):
    scaling = session.client("application-autoscaling")
    return [f"{t['ResourceId']}|{t['ScalableDimension']}"
            for t in pages(scaling, "describe_scalable_targets", "ScalableTargets", ServiceNamespace="ecs")] + [
        p["PolicyARN"] for p in pages(scaling, "describe_scaling_policies", "ScalingPolicies", ServiceNamespace="ecs")]


@kind("cloudwatch alarms")
def _alarms(session):
    cloudwatch = session.client("cloudwatch")
    answer = cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    return [a["AlarmName"] for a in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", [])]


@kind("cloudwatch dashboards")
def _dashboards(session):
    return [d["DashboardName"] for d in pages(session.client("cloudwatch"), "list_dashboards", "DashboardEntries")]


@kind("sns topics and subscriptions")
def _topics(session):
    sns = session.client("sns")
    return ([t["TopicArn"] for t in pages(sns, "list_topics", "Topics")]
            + [s["SubscriptionArn"] for s in pages(sns, "list_subscriptions", "Subscriptions")])
