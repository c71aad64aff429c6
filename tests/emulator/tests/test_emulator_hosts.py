"""The emulator's Auto Scaling hosts: launch/terminate events, lifecycle hooks, ECS managed draining,
instance refresh, and what today's build/ does on delete with the draining hook modelled."""
from __future__ import annotations

import json
import textwrap

import pytest
from botocore.exceptions import ClientError, WaiterError

import inventory
import stacks
from emulator.hosts import DRAINING_HOOK
from test_emulated_deploy import REGISTRY, ROOT, deploy
from test_emulator_lambda import TRUST, recorded

AMI = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


def group(aws, name: str, desired: int = 2, version: str = "1") -> str:
    """An Auto Scaling group made through the APIs; returns its launch template's ID."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24")["Subnet"]["SubnetId"]
    image = aws.client("ssm").get_parameter(Name=AMI)["Parameter"]["Value"]
    template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=4, DesiredCapacity=desired, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateId": template, "Version": version})
    return template


def instances(aws, name: str) -> list[dict]:
    (described,) = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"]
    return described["Instances"]


def ec2_state(aws, instance_id: str) -> str:
    (reservation,) = aws.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]["State"]["Name"]


def hosts_template(**extra: dict) -> dict:
    """A VPC, a launch template and a group of two hosts, plus extra resources."""
    return {
        "Parameters": {"Image": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "Default": AMI}},
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.8.0.0/16"}},
            "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.8.1.0/24"}},
            "Template": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": {
                "ImageId": {"Ref": "Image"}, "InstanceType": "t3.micro"}}},
            "Hosts": {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {
                "MinSize": 0, "MaxSize": 2, "DesiredCapacity": 2, "VPCZoneIdentifier": [{"Ref": "Subnet"}],
                "LaunchTemplate": {"LaunchTemplateId": {"Ref": "Template"},
                                   "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}}}},
            **extra,
        },
    }


def inline_function(code: str, **variables: str) -> dict:
    return {"Type": "AWS::Lambda::Function", "Properties": {
        "Runtime": "python3.12", "Handler": "index.handler", "Timeout": 5, "Code": {"ZipFile": textwrap.dedent(code)},
        "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Environment": {"Variables": variables}}}


def create(aws, name: str, template: dict) -> dict:
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
    return cfn.describe_stacks(StackName=name)["Stacks"][0]


def delete(aws, stack: dict) -> str:
    cfn = aws.client("cloudformation")
    cfn.delete_stack(StackName=stack["StackId"])
    return cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"]


def physical(aws, stack: dict, logical: str) -> str:
    return aws.client("cloudformation").describe_stack_resource(
        StackName=stack["StackId"], LogicalResourceId=logical)["StackResourceDetail"]["PhysicalResourceId"]


# --- events ---------------------------------------------------------------------------------------

WATCHER = """
    import json, os
    import boto3

    def handler(event, context):
        detail = event["detail"]
        event["group_found"] = bool(boto3.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[detail["AutoScalingGroupName"]])["AutoScalingGroups"])
        boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Body=json.dumps(event),
                                      Key=f"{event['detail-type']}/{detail['EC2InstanceId']}")
"""


def test_a_template_made_group_announces_its_launches_and_terminations_to_a_rule_s_function(aws):
    before = inventory.take(aws)
    aws.client("s3").create_bucket(Bucket="scaling")
    template = hosts_template(
        Role={"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": TRUST}},
        Watcher=inline_function(WATCHER, BUCKET="scaling"),
        Rule={"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"source": ["aws.autoscaling"],
                             "detail-type": ["EC2 Instance Launch Successful", "EC2 Instance Terminate Successful"]},
            "Targets": [{"Id": "watcher", "Arn": {"Fn::GetAtt": ["Watcher", "Arn"]}}]}},
        Permission={"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Fn::GetAtt": ["Watcher", "Arn"]}, "Action": "lambda:InvokeFunction",
            "Principal": "events.amazonaws.com", "SourceArn": {"Fn::GetAtt": ["Rule", "Arn"]}}})
    template["Resources"]["Hosts"]["DependsOn"] = ["Rule", "Permission"]  # listening before the first launch

    stack = create(aws, "watched", template)

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    name = physical(aws, stack, "Hosts")
    hosts = instances(aws, name)
    assert {h["LaunchTemplate"]["LaunchTemplateId"] for h in hosts} == {physical(aws, stack, "Template")}
    assert {h["LaunchTemplate"]["Version"] for h in hosts} == {"1"}, "each instance reports the version it runs"
    launched = recorded(aws, "scaling", "EC2 Instance Launch Successful/")
    assert sorted(e["detail"]["EC2InstanceId"] for e in launched) == sorted(h["InstanceId"] for h in hosts)
    activities = {a["ActivityId"]: a for a in aws.client("autoscaling").describe_scaling_activities(
        AutoScalingGroupName=name)["Activities"]}
    (arn,) = {g["AutoScalingGroupARN"] for g in aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"]}
    subnet = physical(aws, stack, "Subnet")
    for event in launched:
        assert (event["source"], event["resources"][0], event["group_found"]) == ("aws.autoscaling", arn, True)
        detail = event["detail"]
        assert detail["AutoScalingGroupName"] == name and detail["Details"]["Subnet ID"] == subnet
        described = activities[detail["ActivityId"]]["Description"]
        assert described == f"Launching a new EC2 instance: {detail['EC2InstanceId']}"

    assert delete(aws, stack) == "DELETE_COMPLETE"

    terminated = recorded(aws, "scaling", "EC2 Instance Terminate Successful/")
    assert sorted(e["detail"]["EC2InstanceId"] for e in terminated) == sorted(h["InstanceId"] for h in hosts)
    assert {ec2_state(aws, h["InstanceId"]) for h in hosts} == {"terminated"}
    stacks.empty_bucket(aws, "scaling")
    assert inventory.difference(before, inventory.take(aws)) == {}


# --- ECS managed draining -------------------------------------------------------------------------

def test_ecs_adds_its_draining_hook_and_completes_it_only_while_a_draining_provider_stands(aws):
    group(aws, "hosts", desired=2)
    asg, ecs = aws.client("autoscaling"), aws.client("ecs")
    (arn,) = [g["AutoScalingGroupARN"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]]

    ecs.create_capacity_provider(name="drains", autoScalingGroupProvider={"autoScalingGroupArn": arn})

    (provider,) = ecs.describe_capacity_providers(capacityProviders=["drains"])["capacityProviders"]
    assert provider["autoScalingGroupProvider"]["managedDraining"] == "ENABLED", "ECS's default"
    (hook,) = asg.describe_lifecycle_hooks(AutoScalingGroupName="hosts")["LifecycleHooks"]
    assert [hook[k] for k in ("LifecycleHookName", "LifecycleTransition", "HeartbeatTimeout", "DefaultResult")] == [
        DRAINING_HOOK, TERMINATING, 3600, "CONTINUE"]
    assert "NotificationTargetARN" not in hook, "not moto's example queue of another account"

    first, second = (h["InstanceId"] for h in instances(aws, "hosts"))
    asg.set_desired_capacity(AutoScalingGroupName="hosts", DesiredCapacity=1)
    assert [h["InstanceId"] for h in instances(aws, "hosts")] == [second], "ECS drained and completed the hook"
    assert ec2_state(aws, first) == "terminated"

    ecs.delete_capacity_provider(capacityProvider="drains")
    asg.set_desired_capacity(AutoScalingGroupName="hosts", DesiredCapacity=0)
    (waiting,) = instances(aws, "hosts")
    assert (waiting["InstanceId"], waiting["LifecycleState"]) == (second, "Terminating:Wait"), "nobody completes it"
    assert ec2_state(aws, second) == "running"

    asg.complete_lifecycle_action(LifecycleHookName=DRAINING_HOOK, AutoScalingGroupName="hosts",
                                  LifecycleActionResult="CONTINUE", InstanceId=second)
    assert instances(aws, "hosts") == [] and ec2_state(aws, second) == "terminated"
    with pytest.raises(ClientError, match=f"No active Lifecycle Action found with instance ID {second}"):
        asg.complete_lifecycle_action(LifecycleHookName=DRAINING_HOOK, AutoScalingGroupName="hosts",
                                      LifecycleActionResult="CONTINUE", InstanceId=second)


def test_without_managed_draining_no_hook_and_a_group_with_hosts_deletes_only_by_force(aws):
    group(aws, "plain", desired=1)
    asg = aws.client("autoscaling")
    aws.client("ecs").create_capacity_provider(name="plain", autoScalingGroupProvider={
        "autoScalingGroupArn": "plain", "managedDraining": "DISABLED"})
    assert asg.describe_lifecycle_hooks(AutoScalingGroupName="plain")["LifecycleHooks"] == []
    (host,) = instances(aws, "plain")

    with pytest.raises(ClientError, match="while there are instances") as refused:
        asg.delete_auto_scaling_group(AutoScalingGroupName="plain")
    assert refused.value.response["Error"]["Code"] == "ResourceInUse"
    asg.delete_auto_scaling_group(AutoScalingGroupName="plain", ForceDelete=True)
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert ec2_state(aws, host["InstanceId"]) == "terminated"


def draining_template(**extra: dict) -> dict:
    """Hosts under a capacity provider that leaves ManagedDraining to ECS's default, deleted before them."""
    return hosts_template(Provider={"Type": "AWS::ECS::CapacityProvider", "Properties": {
        "AutoScalingGroupProvider": {"AutoScalingGroupArn": {"Ref": "Hosts"}}}}, **extra)


def test_a_group_deleted_after_its_draining_provider_fails_the_stack_delete_until_the_hook_goes(aws):
    before = inventory.take(aws)
    stack = create(aws, "drained", draining_template())
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    name = physical(aws, stack, "Hosts")
    hosts = sorted(h["InstanceId"] for h in instances(aws, name))

    assert delete(aws, stack) == "DELETE_FAILED"

    events = aws.client("cloudformation").describe_stack_events(StackName=stack["StackId"])["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "DELETE_FAILED" and e["LogicalResourceId"] == "Hosts"]
    reason = failed["ResourceStatusReason"]
    assert DRAINING_HOOK in reason and "3600 s" in reason and ", ".join(hosts) in reason
    assert {h["LifecycleState"] for h in instances(aws, name)} == {"Terminating:Wait"}
    assert aws.client("ecs").describe_capacity_providers()["capacityProviders"] == [], "the provider went first"

    aws.client("autoscaling").delete_lifecycle_hook(AutoScalingGroupName=name, LifecycleHookName=DRAINING_HOOK)

    assert instances(aws, name) == [], "deleting the hook completes its outstanding actions with CONTINUE"
    assert delete(aws, stack) == "DELETE_COMPLETE"
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_with_the_draining_hook_unmodelled_the_same_stack_deletes(aws, draining_hook_unmodelled):
    stack = create(aws, "undrained", draining_template())
    assert aws.client("autoscaling").describe_lifecycle_hooks(
        AutoScalingGroupName=physical(aws, stack, "Hosts"))["LifecycleHooks"] == []
    assert delete(aws, stack) == "DELETE_COMPLETE"


RELEASER = """
    import boto3, cfnresponse

    def handler(event, context):
        group = event["ResourceProperties"]["GroupName"]
        if event["RequestType"] == "Delete":
            boto3.client("autoscaling").delete_lifecycle_hook(AutoScalingGroupName=group,
                                                              LifecycleHookName="ecs-managed-draining-termination-hook")
        cfnresponse.send(event, context, cfnresponse.SUCCESS, {}, physicalResourceId=group + "-release")
"""


def test_a_custom_resource_whose_delete_releases_the_hosts_lets_the_stack_delete(aws):
    before = inventory.take(aws)
    # It refers to the group, so CloudFormation deletes it, and runs its Delete, before the group.
    stack = create(aws, "released", draining_template(
        Role={"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": TRUST}},
        Releaser=inline_function(RELEASER),
        Release={"Type": "Custom::ReleaseHosts", "Properties": {
            "ServiceToken": {"Fn::GetAtt": ["Releaser", "Arn"]}, "GroupName": {"Ref": "Hosts"}}}))
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert physical(aws, stack, "Release") == physical(aws, stack, "Hosts") + "-release"

    assert delete(aws, stack) == "DELETE_COMPLETE"
    assert inventory.difference(before, inventory.take(aws)) == {}


class DeleteWouldHang(AssertionError):
    """The delete failed on the draining hook: on AWS it would wait an hour."""


def test_the_build_deletes_without_its_hosts_waiting_on_the_draining_hook(aws):
    # build/cluster.yaml deletes its capacity provider (ManagedDraining ENABLED) before its group; the hosts
    # function's custom resource goes before the provider and removes ECS's hook, so nothing waits. Without
    # it this raises DeleteWouldHang: the hosts would wait 3600 s in Terminating:Wait.
    deploy(aws)
    cfn = aws.client("cloudformation")
    root = stacks.describe(aws, ROOT)["StackId"]
    try:
        stacks.delete(aws, ROOT)
    except WaiterError:
        pass
    if cfn.describe_stacks(StackName=root)["Stacks"][0]["StackStatus"] != "DELETE_COMPLETE":
        reasons = [e.get("ResourceStatusReason", "") for s in cfn.list_stacks()["StackSummaries"]
                   for e in cfn.describe_stack_events(StackName=s["StackId"])["StackEvents"]
                   if e["ResourceStatus"] == "DELETE_FAILED"]
        hang = next((r for r in reasons if DRAINING_HOOK in r), None)
        if hang is not None:
            raise DeleteWouldHang(hang)
        raise AssertionError(f"the root did not delete: {reasons}")
    stacks.delete(aws, REGISTRY)
    assert aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []


# --- instance refresh -----------------------------------------------------------------------------

def refreshes(aws, name: str) -> list[dict]:
    return aws.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"]


def test_an_instance_refresh_replaces_what_differs_launching_first_when_allowed(aws):
    template = group(aws, "fleet", desired=2, version="1")
    aws.client("ec2").create_launch_template_version(LaunchTemplateId=template, SourceVersion="1",
                                                     LaunchTemplateData={"InstanceType": "t3.small"})
    asg = aws.client("autoscaling")
    old = {h["InstanceId"] for h in instances(aws, "fleet")}

    refresh_id = asg.start_instance_refresh(
        AutoScalingGroupName="fleet", DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template,
                                                                                "Version": "2"}},
        Preferences={"SkipMatching": True, "MinHealthyPercentage": 50, "MaxHealthyPercentage": 150},
    )["InstanceRefreshId"]

    (refresh,) = refreshes(aws, "fleet")
    assert (refresh["InstanceRefreshId"], refresh["Status"], refresh["PercentageComplete"],
            refresh["InstancesToUpdate"]) == (refresh_id, "Successful", 100, 0)
    assert refresh["Preferences"]["MaxHealthyPercentage"] == 150 and refresh["Preferences"]["SkipMatching"] is True
    new = instances(aws, "fleet")
    assert len(new) == 2 and not old & {h["InstanceId"] for h in new}
    assert {h["LaunchTemplate"]["Version"] for h in new} == {"2"}
    described = asg.describe_auto_scaling_instances()["AutoScalingInstances"]
    assert {i["LaunchTemplate"]["Version"] for i in described} == {"2"}
    steps = [a["Description"].split(":")[0] for a in reversed(asg.describe_scaling_activities(
        AutoScalingGroupName="fleet")["Activities"])][2:]
    assert steps == ["Launching a new EC2 instance"] * 2 + ["Terminating EC2 instance"] * 2, "150 %: launch first"

    asg.start_instance_refresh(AutoScalingGroupName="fleet", Preferences={"SkipMatching": True})
    assert refreshes(aws, "fleet")[0]["Status"] == "Successful"
    assert {h["InstanceId"] for h in instances(aws, "fleet")} == {h["InstanceId"] for h in new}, "all match: none go"
    with pytest.raises(ClientError, match="ActiveInstanceRefreshNotFound"):
        asg.cancel_instance_refresh(AutoScalingGroupName="fleet")
    with pytest.raises(ClientError, match="must also specify MinHealthyPercentage"):
        asg.start_instance_refresh(AutoScalingGroupName="fleet", Preferences={"MaxHealthyPercentage": 120})


def test_a_refresh_whose_old_instances_wait_on_a_hook_stays_in_progress_and_can_be_cancelled(aws):
    group(aws, "held", desired=2)
    asg = aws.client("autoscaling")
    asg.put_lifecycle_hook(LifecycleHookName="hold", AutoScalingGroupName="held", LifecycleTransition=TERMINATING,
                           HeartbeatTimeout=300, DefaultResult="CONTINUE")
    old = sorted(h["InstanceId"] for h in instances(aws, "held"))

    asg.start_instance_refresh(AutoScalingGroupName="held")  # no SkipMatching: every instance is replaced

    (refresh,) = refreshes(aws, "held")
    assert (refresh["Status"], refresh["InstancesToUpdate"]) == ("InProgress", 2)
    waiting = sorted(h["InstanceId"] for h in instances(aws, "held") if h["LifecycleState"] == "Terminating:Wait")
    assert waiting == old
    with pytest.raises(ClientError, match="InstanceRefreshInProgress"):
        asg.start_instance_refresh(AutoScalingGroupName="held")

    asg.cancel_instance_refresh(AutoScalingGroupName="held")
    for instance in old:
        asg.complete_lifecycle_action(LifecycleHookName="hold", AutoScalingGroupName="held",
                                      LifecycleActionResult="ABANDON", InstanceId=instance)

    assert refreshes(aws, "held")[0]["Status"] == "Cancelled"
    assert [h["LifecycleState"] for h in instances(aws, "held")] == ["InService"] * 2
    assert {ec2_state(aws, instance) for instance in old} == {"terminated"}
