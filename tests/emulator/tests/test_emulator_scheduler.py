"""The emulator's ECS scheduler: hosts register with their type's resources, awsvpc tasks fill the
hosts' interfaces and then wait in PROVISIONING with ECS's RESOURCE:ENI event, managed scaling adds
hosts for them, and a deployment keeps to minimumHealthyPercent / maximumPercent."""
from __future__ import annotations

import ipaddress
import json

from templates_src.app import capacity, instance_types

AMI = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
CLUSTER = "placing"
TYPE = "t3.medium"
RESERVED = 256
CIDR = "10.9.1.0/24"


def cluster_template(desired: int, min_size: int = 1, max_size: int = 1, min_healthy: int = 100) -> dict:
    """A cluster on one subnet: hosts from a launch template whose user data names it, a capacity provider
    with managed scaling, and an awsvpc service of small tasks (256 CPU, 512 MiB)."""
    user_data = (f"#!/bin/bash\ncat >> /etc/ecs/ecs.config <<'EOF'\nECS_CLUSTER=${{Cluster}}\n"
                 f"ECS_RESERVED_MEMORY={RESERVED}\nEOF\n")
    return {
        "Parameters": {"Image": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "Default": AMI}},
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}},
            "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {
                "VpcId": {"Ref": "Vpc"}, "CidrBlock": CIDR, "AvailabilityZone": "us-east-1a"}},
            "Tasks": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
                "GroupDescription": "tasks", "VpcId": {"Ref": "Vpc"}}},
            "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": CLUSTER}},
            "Template": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": {
                "ImageId": {"Ref": "Image"}, "InstanceType": TYPE,
                "UserData": {"Fn::Base64": {"Fn::Sub": user_data}}}}},
            "Hosts": {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {
                "MinSize": min_size, "MaxSize": max_size, "VPCZoneIdentifier": [{"Ref": "Subnet"}],
                "LaunchTemplate": {"LaunchTemplateId": {"Ref": "Template"},
                                   "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}}}},
            "Provider": {"Type": "AWS::ECS::CapacityProvider", "Properties": {"AutoScalingGroupProvider": {
                "AutoScalingGroupArn": {"Ref": "Hosts"}, "ManagedTerminationProtection": "DISABLED",
                "ManagedScaling": {"Status": "ENABLED", "TargetCapacity": 100}}}},
            "Associations": {"Type": "AWS::ECS::ClusterCapacityProviderAssociations", "Properties": {
                "Cluster": {"Ref": "Cluster"}, "CapacityProviders": [{"Ref": "Provider"}],
                "DefaultCapacityProviderStrategy": [{"CapacityProvider": {"Ref": "Provider"}, "Weight": 1}]}},
            "Definition": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
                "Family": "small", "NetworkMode": "awsvpc", "Cpu": "256", "Memory": "512",
                "RequiresCompatibilities": ["EC2"],
                "ContainerDefinitions": [{"Name": "app", "Image": "busybox", "Essential": True,
                                          "PortMappings": [{"ContainerPort": 80}]}]}},
            "Service": {"Type": "AWS::ECS::Service", "DependsOn": "Associations", "Properties": {
                "ServiceName": "small", "Cluster": {"Ref": "Cluster"}, "TaskDefinition": {"Ref": "Definition"},
                "DesiredCount": desired,
                "CapacityProviderStrategy": [{"CapacityProvider": {"Ref": "Provider"}, "Weight": 1}],
                "DeploymentConfiguration": {"MinimumHealthyPercent": min_healthy, "MaximumPercent": 200},
                "NetworkConfiguration": {"AwsvpcConfiguration": {
                    "Subnets": [{"Ref": "Subnet"}], "SecurityGroups": [{"Ref": "Tasks"}]}}}},
        },
    }


def create(aws, template: dict) -> None:
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="placing", TemplateBody=json.dumps(template))
    status = cfn.describe_stacks(StackName="placing")["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE", cfn.describe_stack_events(StackName="placing")["StackEvents"][:3]


def tasks(aws) -> list[dict]:
    ecs = aws.client("ecs")
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName="small")["taskArns"]
    return ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []


def service(aws) -> dict:
    return aws.client("ecs").describe_services(cluster=CLUSTER, services=["small"])["services"][0]


def hosts(aws) -> list[dict]:
    ecs = aws.client("ecs")
    arns = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    return ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)["containerInstances"] \
        if arns else []


def group(aws) -> dict:
    (found,) = aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return found


def address(task: dict, detail: str = "privateIPv4Address") -> str:
    (attachment,) = task["attachments"]
    return {d["name"]: d["value"] for d in attachment["details"]}[detail]


def eni_message(host: dict) -> str:
    ident = host["containerInstanceArn"].rsplit("/", 1)[-1]
    return ("service small was unable to place a task because no container instance met all of its requirements. "
            f'The closest matching container-instance {ident} encountered error "RESOURCE:ENI". '
            "For more information, see the Troubleshooting section.")


def test_one_host_fills_its_interfaces_then_tasks_wait_with_resource_eni_and_deploy_within_the_percentages(aws):
    create(aws, cluster_template(desired=3, max_size=1))
    (host,) = hosts(aws)
    found = tasks(aws)
    running = [t for t in found if t["lastStatus"] == "RUNNING"]
    (waiting,) = [t for t in found if t["lastStatus"] == "PROVISIONING"]
    # a t3.medium has 3 interfaces: the host keeps one, each awsvpc task takes one of the other two,
    # though its CPU (2048) and memory would hold more 256/512 tasks
    assert len(running) == instance_types.TYPES[TYPE].task_slots == 2
    assert all(t["containerInstanceArn"] == host["containerInstanceArn"] for t in running)
    assert "containerInstanceArn" not in waiting and waiting["desiredStatus"] == "RUNNING"
    assert all(t["healthStatus"] == "UNKNOWN" for t in found), "no health check runs here"
    ips = [address(t) for t in running]
    assert len(set(ips)) == 2 and all(ipaddress.ip_address(ip) in ipaddress.ip_network(CIDR) for ip in ips)
    enis = aws.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "addresses.private-ip-address", "Values": ips}])["NetworkInterfaces"]
    assert sorted(e["PrivateIpAddress"] for e in enis) == sorted(ips)

    described = service(aws)
    assert (described["runningCount"], described["pendingCount"]) == (2, 1)
    assert described["events"][0]["message"] == eni_message(host)
    assert group(aws)["DesiredCapacity"] == 1, "MaxSize 1 leaves managed scaling nowhere to go"

    # a stopped task frees its interface; the service puts the waiting one there
    ecs = aws.client("ecs")
    ecs.stop_task(cluster=CLUSTER, task=running[0]["taskArn"], reason="by hand")
    now = tasks(aws)
    assert sorted(t["lastStatus"] for t in now) == ["PROVISIONING", "RUNNING", "RUNNING"]
    assert waiting["taskArn"] in {t["taskArn"] for t in now if t["lastStatus"] == "RUNNING"}
    interfaces = {e["NetworkInterfaceId"] for e in aws.client("ec2").describe_network_interfaces()["NetworkInterfaces"]}
    assert address(running[0], "networkInterfaceId") not in interfaces
    assert address(running[1], "networkInterfaceId") in interfaces

    # a deployment on the full host: minimumHealthyPercent 100 keeps both old tasks until new ones run,
    # maximumPercent 200 lets ECS start both new ones at once, and neither finds an interface
    ecs.update_service(cluster=CLUSTER, service="small", desiredCount=2)
    old = {t["taskArn"] for t in tasks(aws)}
    assert len(old) == 2
    described = ecs.describe_task_definition(taskDefinition=service(aws)["taskDefinition"])["taskDefinition"]
    second = ecs.register_task_definition(
        family="small", networkMode="awsvpc", cpu="256", memory="512", requiresCompatibilities=["EC2"],
        containerDefinitions=described["containerDefinitions"])["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service="small", taskDefinition=second)
    found = tasks(aws)
    assert {t["taskArn"] for t in found if t["lastStatus"] == "RUNNING"} == old
    waiting = [t for t in found if t["lastStatus"] == "PROVISIONING"]
    assert [t["taskDefinitionArn"] for t in waiting] == [second] * 2
    described = service(aws)
    assert [d["status"] for d in described["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert described["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert '"RESOURCE:ENI"' in described["events"][0]["message"]

    # 50 %: one old task may stop first, then the new ones take the interfaces
    ecs.update_service(cluster=CLUSTER, service="small",
                       deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200})
    found = tasks(aws)
    assert [(t["lastStatus"], t["taskDefinitionArn"]) for t in found] == [("RUNNING", second)] * 2
    described = service(aws)
    assert [d["status"] for d in described["deployments"]] == ["PRIMARY"]
    assert described["deployments"][0]["rolloutState"] == "COMPLETED"
    stopped = ecs.describe_tasks(cluster=CLUSTER, tasks=sorted(old))["tasks"]
    assert all(t["lastStatus"] == "STOPPED" and t["stoppedReason"].startswith("Scaling activity initiated by")
               for t in stopped)


def test_managed_scaling_adds_hosts_that_register_with_their_type_s_resources_up_to_max_size(aws):
    create(aws, cluster_template(desired=3, max_size=3))
    assert group(aws)["DesiredCapacity"] == 2
    assert [t["lastStatus"] for t in tasks(aws)] == ["RUNNING"] * 3
    messages = [e["message"] for e in service(aws)["events"]]
    assert any('"RESOURCE:ENI"' in m for m in messages), "ECS said why before the host came"
    assert messages[0] == "service small has reached a steady state."
    causes = [a["Cause"] for a in aws.client("autoscaling").describe_scaling_activities()["Activities"]]
    assert any("ECSManagedAutoScalingPolicy" in c and "from 1 to 2" in c for c in causes)

    itype = instance_types.TYPES[TYPE]
    registered = hosts(aws)
    assert {h["ec2InstanceId"] for h in registered} == {i["InstanceId"] for i in group(aws)["Instances"]}
    for host in registered:
        resources = {r["name"]: r.get("integerValue") for r in host["registeredResources"]}
        assert resources["CPU"] == itype.vcpus * 1024 == 2048
        # what the agent registers: the type's memory less the platform's share, less ECS_RESERVED_MEMORY
        assert resources["MEMORY"] == int(itype.memory_mib * (1 - capacity.PLATFORM_OVERHEAD)) - RESERVED
        assert {a["name"]: a.get("value") for a in host["attributes"]}["ecs.instance-type"] == TYPE

    ecs = aws.client("ecs")
    ecs.update_service(cluster=CLUSTER, service="small", desiredCount=6)
    assert group(aws)["DesiredCapacity"] == 3
    assert [t["lastStatus"] for t in tasks(aws)] == ["RUNNING"] * 6
    assert len(hosts(aws)) == 3

    ecs.update_service(cluster=CLUSTER, service="small", desiredCount=7)
    assert group(aws)["DesiredCapacity"] == 3, "never above MaxSize"
    assert sorted(t["lastStatus"] for t in tasks(aws)) == ["PROVISIONING"] + ["RUNNING"] * 6
    assert '"RESOURCE:ENI"' in service(aws)["events"][0]["message"]

    # a host scaled in by hand deregisters; its tasks stop and the ones that fit nowhere wait
    name = group(aws)["AutoScalingGroupName"]
    aws.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, DesiredCapacity=2)
    assert len(hosts(aws)) == 2
    assert ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]["registeredContainerInstancesCount"] == 2
    assert group(aws)["DesiredCapacity"] == 2, "a host's loss alone does not scale out"
    assert sorted(t["lastStatus"] for t in tasks(aws)) == ["PROVISIONING"] * 3 + ["RUNNING"] * 4

    ecs.update_service(cluster=CLUSTER, service="small", desiredCount=2)
    assert [t["lastStatus"] for t in tasks(aws)] == ["RUNNING"] * 2
    assert (service(aws)["runningCount"], service(aws)["pendingCount"]) == (2, 0)
