"""The built templates deployed into the emulator as a nested set, every resource checked, then deleted.

The deploy is the README's: build/ uploaded to a bucket, the registry stack, then the root stack
with only QSS3BucketName and QSS3KeyPrefix. Each resource type in build/ has one check below that
asks the service's own describe/list API whether the resource is there with what the template
promises; the coverage line counts them. Types that exist only under a condition the defaults leave
false (the certificate and record a DomainName brings) are deployed and checked by the test named in
CONDITIONAL. The delete must leave the account as it was.
"""
from __future__ import annotations

import base64
import dataclasses
import json
from typing import Callable

import boto3

import inventory
import stacks
from helpers import BUILD
from helpers import ROOT as ROOT_DIR
from stacks import Resource
from templates_src.app import config, loading, mirror
from templates_src.stacks import registry

BUCKET = "dks-templates"
PREFIX = "dks/"
ROOT = "dks"
REGISTRY = "dks-registry"
AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


@dataclasses.dataclass
class Deployment:
    session: boto3.Session
    app: config.App
    stacks: dict[str, dict]  # template file -> stack description
    resources: list[Resource]

    def of_type(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.type == kind]

    def one(self, file: str, logical_id: str) -> Resource:
        (found,) = [r for r in self.resources if r.template == file and r.logical_id == logical_id]
        return found

    def output(self, file: str, key: str) -> str:
        return stacks.outputs(self.stacks[file])[key]

    def parameter(self, file: str, key: str) -> str:
        return stacks.parameters(self.stacks[file])[key]

    def client(self, service: str):
        return self.session.client(service)

    @property
    def environment(self) -> str:
        return self.parameter("main.yaml", "EnvironmentName")


CHECKS: dict[str, Callable[[Deployment, list[Resource]], None]] = {}


def check(kind: str) -> Callable:
    def register(function: Callable[[Deployment, list[Resource]], None]) -> Callable:
        CHECKS[kind] = function
        return function

    return register


def built_types() -> set[str]:
    return {r["Type"] for path in BUILD.glob("*.yaml") for r in stacks.load(path.name)["Resources"].values()}


# Where the types the defaults do not create are deployed and checked.
CONDITIONAL = {"AWS::CertificateManager::Certificate": "tests/stacks/test_domain.py",
               "AWS::Route53::RecordSet": "tests/stacks/test_domain.py",
               "AWS::SNS::Subscription": "tests/stacks/test_alarms_deploy.py"}


def deploy(session: boto3.Session, parameters: dict[str, str] | None = None) -> Deployment:
    stacks.upload(session, BUCKET, PREFIX)
    registry = stacks.create(session, REGISTRY, stacks.template_url(session, BUCKET, PREFIX + "registry.yaml"))
    assert registry["StackStatus"] == "CREATE_COMPLETE", registry.get("StackStatusReason")
    root = stacks.create(session, ROOT, stacks.template_url(session, BUCKET, PREFIX + "main.yaml"),
                         {"QSS3BucketName": BUCKET, "QSS3KeyPrefix": PREFIX, **(parameters or {})})
    assert root["StackStatus"] == "CREATE_COMPLETE", failure_events(session, ROOT)
    nested = stacks.nested(session, ROOT)
    everything = {**nested, "registry.yaml": registry}
    return Deployment(session, loading.load(config.DEFAULT_CONFIG), everything,
                      stacks.resources(session, everything))


def failure_events(session: boto3.Session, name: str) -> list[str]:
    events = session.client("cloudformation").describe_stack_events(StackName=name)["StackEvents"]
    return [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
            if e["ResourceStatus"].endswith("FAILED")]


def test_deploy_assert_every_resource_and_delete_leaves_nothing(aws, capsys):
    before = inventory.take(aws)
    deployment = deploy(aws)

    missing = built_types() - set(CHECKS)
    assert not missing, f"resource types in build/ with no check: {sorted(missing)}"
    deployed = {r.type for r in deployment.resources}
    # Every type the default parameters create is created; the others, made only under a condition the
    # defaults leave false, are deployed and checked where CONDITIONAL says.
    assert built_types() - deployed == set(CONDITIONAL), "a type the defaults do not create needs a test"
    assert all("Condition" in r for path in BUILD.glob("*.yaml") for r in stacks.load(path.name)["Resources"].values()
               if r["Type"] in CONDITIONAL)
    for kind in sorted(deployed):
        CHECKS[kind](deployment, deployment.of_type(kind))
    figure = f"({len(deployed)}/{len(built_types())} for DKS today"
    assert figure in (ROOT_DIR / "README.md").read_text(), f"the README quotes {figure}"
    with capsys.disabled():
        print(f"\nemulated: {len(deployed)}/{len(built_types())} resource types created and asserted "
              f"(the other {len(CONDITIONAL)} only under a condition: {', '.join(sorted(set(CONDITIONAL.values())))})")

    stacks.delete(aws, ROOT)
    stacks.delete(aws, REGISTRY)
    stacks.empty_bucket(aws, BUCKET)
    assert stacks.drop_retained(aws, before) == stacks.KEPT, "the stack delete keeps the database, its key, its secrets"
    assert inventory.difference(before, inventory.take(aws)) == {}


# --- CloudFormation --------------------------------------------------------------------------------

@check("AWS::CloudFormation::Stack")
def _nested_stacks(d: Deployment, items: list[Resource]) -> None:
    root = d.stacks["main.yaml"]
    assert {r.template for r in items} == {"main.yaml"}
    children = {file: stack for file, stack in d.stacks.items() if file not in ("main.yaml", "registry.yaml")}
    assert len(children) == len(items) == stacks.nested_count()
    for file, stack in children.items():
        assert stack["StackStatus"] == "CREATE_COMPLETE", file
        assert stack["ParentId"] == stack["RootId"] == root["StackId"], file
        # every parameter the child declares was passed (none left to a default the root did not choose)
        assert set(stacks.parameters(stack)) == set(stacks.load(file).get("Parameters", {})), file
    assert "ParentId" not in root
    out = stacks.outputs(root)
    assert out["ClusterName"] == d.environment
    assert out["NamespaceName"] == d.app.namespace
    assert out["ServiceNames"].split(",") == config.start_order(d.app)


# --- Alarms ----------------------------------------------------------------------------------------

@check("AWS::CloudWatch::Alarm")
def _alarms(d: Deployment, items: list[Resource]) -> None:
    names = sorted(r.physical_id for r in items)
    described = d.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in described) == names
    topic = d.one("alarms.yaml", "AlarmTopic").physical_id
    for alarm in described:
        assert alarm["AlarmName"].startswith(f"{d.environment}-")  # what the topic and key policies admit
        assert alarm["AlarmActions"] == alarm["OKActions"] == [topic], alarm["AlarmName"]


@check("AWS::CloudWatch::Dashboard")
def _dashboard(d: Deployment, items: list[Resource]) -> None:
    (dashboard,) = items
    answer = d.client("cloudwatch").get_dashboard(DashboardName=d.environment)
    body = json.loads(answer["DashboardBody"])
    assert {w["properties"]["region"] for w in body["widgets"]} == {d.session.region_name}
    assert "${" not in answer["DashboardBody"]


@check("AWS::SNS::Topic")
def _topic(d: Deployment, items: list[Resource]) -> None:
    (topic,) = items
    attributes = d.client("sns").get_topic_attributes(TopicArn=topic.physical_id)["Attributes"]
    assert attributes["KmsMasterKeyId"] == d.output("secrets.yaml", "KmsKeyArn")


@check("AWS::SNS::TopicPolicy")
def _topic_policy(d: Deployment, items: list[Resource]) -> None:
    (policy,) = items
    topic = d.one("alarms.yaml", "AlarmTopic").physical_id
    attributes = d.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    (statement,) = json.loads(attributes["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Resource"] == [topic]


@check("AWS::SNS::Subscription")
def _subscription(d: Deployment, items: list[Resource]) -> None:
    (subscription,) = items
    topic = d.one("alarms.yaml", "AlarmTopic").physical_id
    (found,) = d.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (found["Protocol"], found["Endpoint"]) == ("email", d.parameter("main.yaml", "AlarmEmail"))
    assert found["SubscriptionArn"] == subscription.physical_id


# --- Network ---------------------------------------------------------------------------------------

@check("AWS::EC2::VPC")
def _vpc(d: Deployment, items: list[Resource]) -> None:
    (vpc,) = items
    ec2 = d.client("ec2")
    (described,) = ec2.describe_vpcs(VpcIds=[vpc.physical_id])["Vpcs"]
    assert described["CidrBlock"] == d.app.network.cidr
    assert d.output("network.yaml", "VpcId") == vpc.physical_id
    for attribute, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
        assert ec2.describe_vpc_attribute(VpcId=vpc.physical_id, Attribute=attribute)[key]["Value"] is True


@check("AWS::EC2::DHCPOptions")
def _dhcp_options(d: Deployment, items: list[Resource]) -> None:
    (options,) = items
    (described,) = d.client("ec2").describe_dhcp_options(DhcpOptionsIds=[options.physical_id])["DhcpOptions"]
    found = {c["Key"]: [v["Value"] for v in c["Values"]] for c in described["DhcpConfigurations"]}
    # One domain, the namespace: bare service names resolve through the search list.
    assert found == {"domain-name": [d.app.namespace or f"{d.app.name}.local"],
                     "domain-name-servers": ["AmazonProvidedDNS"]}


@check("AWS::EC2::VPCDHCPOptionsAssociation")
def _dhcp_association(d: Deployment, items: list[Resource]) -> None:
    (association,) = items
    (vpc,) = d.client("ec2").describe_vpcs(VpcIds=[d.one("network.yaml", "Vpc").physical_id])["Vpcs"]
    assert vpc["DhcpOptionsId"] == d.one("network.yaml", "DhcpOptions").physical_id


@check("AWS::EC2::Subnet")
def _subnets(d: Deployment, items: list[Resource]) -> None:
    ec2 = d.client("ec2")
    ids = [r.physical_id for r in items]
    described = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
    assert len(described) == d.app.network.availability_zones
    assert len({s["AvailabilityZone"] for s in described}) == len(described), "one subnet per zone"
    assert {s["VpcId"] for s in described} == {d.one("network.yaml", "Vpc").physical_id}
    assert sorted(s["CidrBlock"] for s in described) == sorted(r.properties["CidrBlock"] for r in items)
    assert not any(s["MapPublicIpOnLaunch"] for s in described)
    assert sorted(d.output("network.yaml", "SubnetIds").split(",")) == sorted(ids)
    gateway = d.one("network.yaml", "InternetGateway").physical_id
    for subnet in ids:  # public: its route table sends 0.0.0.0/0 to the internet gateway
        associated = [{"Name": "association.subnet-id", "Values": [subnet]}]
        (table,) = ec2.describe_route_tables(Filters=associated)["RouteTables"]
        assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": gateway} in [
            {k: r.get(k) for k in ("DestinationCidrBlock", "GatewayId")} for r in table["Routes"]]
    nat = ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [described[0]["VpcId"]]}])["NatGateways"]
    assert nat == [], "public subnets only: no NAT gateway"


@check("AWS::EC2::InternetGateway")
def _gateway(d: Deployment, items: list[Resource]) -> None:
    (gateway,) = items
    ec2 = d.client("ec2")
    (described,) = ec2.describe_internet_gateways(InternetGatewayIds=[gateway.physical_id])["InternetGateways"]
    assert [a["VpcId"] for a in described["Attachments"]] == [d.one("network.yaml", "Vpc").physical_id]


@check("AWS::EC2::VPCGatewayAttachment")
def _attachment(d: Deployment, items: list[Resource]) -> None:
    (attachment,) = items
    gateway = d.one("network.yaml", attachment.properties["InternetGatewayId"]["Ref"]).physical_id
    (described,) = d.client("ec2").describe_internet_gateways(InternetGatewayIds=[gateway])["InternetGateways"]
    assert described["Attachments"][0]["State"] == "available"


@check("AWS::EC2::RouteTable")
def _route_tables(d: Deployment, items: list[Resource]) -> None:
    (table,) = items
    (described,) = d.client("ec2").describe_route_tables(RouteTableIds=[table.physical_id])["RouteTables"]
    assert described["VpcId"] == d.one("network.yaml", "Vpc").physical_id
    associated = {a["SubnetId"] for a in described["Associations"] if not a.get("Main")}
    assert associated == {r.physical_id for r in d.of_type("AWS::EC2::Subnet")}


@check("AWS::EC2::Route")
def _routes(d: Deployment, items: list[Resource]) -> None:
    (route,) = items
    table = d.one("network.yaml", route.properties["RouteTableId"]["Ref"]).physical_id
    (described,) = d.client("ec2").describe_route_tables(RouteTableIds=[table])["RouteTables"]
    gateway = d.one("network.yaml", route.properties["GatewayId"]["Ref"]).physical_id
    wanted = {"DestinationCidrBlock": route.properties["DestinationCidrBlock"], "GatewayId": gateway}
    assert wanted in [{k: r.get(k) for k in wanted} for r in described["Routes"]]


@check("AWS::EC2::SubnetRouteTableAssociation")
def _associations(d: Deployment, items: list[Resource]) -> None:
    ec2 = d.client("ec2")
    for association in items:
        subnet = d.one("network.yaml", association.properties["SubnetId"]["Ref"]).physical_id
        table = d.one("network.yaml", association.properties["RouteTableId"]["Ref"]).physical_id
        (described,) = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]
        assert subnet in {a.get("SubnetId") for a in described["Associations"]}


def rules(d: Deployment, group_id: str, direction: str) -> set[tuple]:
    """A group's rules as (protocol, from, to, peer) with peers as CIDRs or logical group names."""
    names = {r.physical_id: r.logical_id for r in d.of_type("AWS::EC2::SecurityGroup")}
    (group,) = d.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    found = set()
    for rule in group["IpPermissions" if direction == "in" else "IpPermissionsEgress"]:
        for peer in [r["CidrIp"] for r in rule.get("IpRanges", [])] + \
                [names.get(p["GroupId"], p["GroupId"]) for p in rule.get("UserIdGroupPairs", [])]:
            found.add((rule["IpProtocol"], rule.get("FromPort"), rule.get("ToPort"), peer))
    return found


@check("AWS::EC2::SecurityGroup")
def _security_groups(d: Deployment, items: list[Resource]) -> None:
    group = {r.logical_id: r.physical_id for r in items}
    vpc = d.one("network.yaml", "Vpc").physical_id
    described = d.client("ec2").describe_security_groups(GroupIds=list(group.values()))["SecurityGroups"]
    assert {g["VpcId"] for g in described} == {vpc}
    cidr = d.parameter("network.yaml", "AllowedIngressCidr")
    bridge = [s for s in d.app.services if s.network_mode == "bridge"]
    # Hosts: inbound only the load balancer on the bridge UI's dynamic ports, no SSH; out the AWS APIs and
    # (the bridge UI's calls) the API's listener and task.
    assert rules(d, group["HostSecurityGroup"], "in") == {("tcp", 32768, 65535, "LoadBalancerSecurityGroup")}
    assert rules(d, group["HostSecurityGroup"], "out") == {
        ("tcp", 443, 443, "0.0.0.0/0"), ("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 8080, 8080, "0.0.0.0/0"),
        ("tcp", 8080, 8080, "DksApiSecurityGroup")}
    assert rules(d, group["LoadBalancerSecurityGroup"], "in") == {
        ("tcp", s.public.port, s.public.port, cidr) for s in d.app.services if s.public}
    assert rules(d, group["LoadBalancerSecurityGroup"], "out") == {
        ("tcp", s.port, s.port, f"{config.logical_id(s.name)}SecurityGroup") for s in d.app.services
        if s.public and s not in bridge} | {("tcp", 32768, 65535, "HostSecurityGroup")}
    assert rules(d, group["DksDbSecurityGroup"], "in") == {("tcp", 5432, 5432, "DksApiSecurityGroup")}
    for service in d.app.services:  # tasks reach nothing but the services they depend on (and their data)
        if service in bridge:
            assert f"{config.logical_id(service.name)}SecurityGroup" not in group  # it uses the hosts' group
            continue
        allowed = {("tcp", dep.port, dep.port, f"{config.logical_id(dep.name)}SecurityGroup")
                   for dep in d.app.services if dep.name in service.depends_on}
        if service in d.app.stored_services:
            allowed.add(("tcp", 2049, 2049, "DataSecurityGroup"))
        sentinel = {("icmp", 252, 86, "255.255.255.255/32")}  # the rule that matches nothing, when nothing else
        assert rules(d, group[f"{config.logical_id(service.name)}SecurityGroup"], "out") == (allowed or sentinel)


@check("AWS::EC2::SecurityGroupIngress")
@check("AWS::EC2::SecurityGroupEgress")
def _separate_rules(d: Deployment, items: list[Resource]) -> None:
    for rule in items:
        group = d.one("network.yaml", rule.properties["GroupId"]["Ref"]).physical_id
        inbound = rule.type.endswith("Ingress")
        peer = rule.properties["SourceSecurityGroupId" if inbound else "DestinationSecurityGroupId"]["Ref"]
        ports = rule.properties["FromPort"], rule.properties["ToPort"]
        assert ("tcp", *ports, peer) in rules(d, group, "in" if inbound else "out"), rule.logical_id


# --- Cluster ---------------------------------------------------------------------------------------

@check("AWS::EC2::LaunchTemplate")
def _launch_template(d: Deployment, items: list[Resource]) -> None:
    (template,) = items
    ec2 = d.client("ec2")
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateId=template.physical_id)["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    ami = d.client("ssm").get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    assert data["ImageId"] == ami, "the AMI the SSM parameter names"
    assert data["InstanceType"] == d.app.cluster.instance_type
    assert data["MetadataOptions"]["HttpTokens"] == "required", "IMDSv2 only"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1, "containers cannot reach IMDS"
    (volume,) = data["BlockDeviceMappings"]
    assert volume["Ebs"]["Encrypted"] is True
    (interface,) = data["NetworkInterfaces"]
    assert interface["AssociatePublicIpAddress"] is True, "public subnets, no NAT: hosts need public IPs"
    assert interface["Groups"] == [d.one("network.yaml", "HostSecurityGroup").physical_id]
    profile = d.client("iam").get_instance_profile(
        InstanceProfileName=d.one("iam.yaml", "HostInstanceProfile").physical_id)["InstanceProfile"]
    assert data["IamInstanceProfile"]["Arn"] == profile["Arn"]
    user_data = base64.b64decode(data["UserData"]).decode()
    assert f"ECS_CLUSTER={d.environment}\n" in user_data
    assert "ECS_AWSVPC_BLOCK_IMDS=true" in user_data


@check("AWS::AutoScaling::AutoScalingGroup")
def _group(d: Deployment, items: list[Resource]) -> None:
    (group,) = items
    (described,) = d.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group.physical_id])["AutoScalingGroups"]
    assert described["LaunchTemplate"]["LaunchTemplateId"] == d.one("cluster.yaml", "HostLaunchTemplate").physical_id
    cluster = d.app.cluster
    # No DesiredCapacity in the template: the group starts at MinSize, managed scaling does the rest.
    assert "DesiredCapacity" not in group.properties
    assert (described["MinSize"], described["DesiredCapacity"], described["MaxSize"]) == (
        cluster.min_size, cluster.min_size, cluster.max_size)
    assert set(described["VPCZoneIdentifier"].split(",")) == {r.physical_id for r in d.of_type("AWS::EC2::Subnet")}
    assert len(described["Instances"]) == cluster.min_size
    instances = [i["InstanceId"] for i in described["Instances"]]
    reservations = d.client("ec2").describe_instances(InstanceIds=instances)["Reservations"]
    for instance in (i for r in reservations for i in r["Instances"]):
        assert instance["ImageId"] == d.client("ssm").get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
        assert instance["InstanceType"] == cluster.instance_type


@check("AWS::ECS::Cluster")
def _cluster(d: Deployment, items: list[Resource]) -> None:
    (cluster,) = items
    (described,) = d.client("ecs").describe_clusters(clusters=[cluster.physical_id], include=["SETTINGS"])["clusters"]
    assert described["clusterName"] == d.environment and described["status"] == "ACTIVE"
    assert {"name": "containerInsights", "value": "enabled"} in described["settings"]


@check("AWS::ECS::CapacityProvider")
def _capacity_provider(d: Deployment, items: list[Resource]) -> None:
    (provider,) = items
    ecs = d.client("ecs")
    (described,) = ecs.describe_capacity_providers(capacityProviders=[provider.physical_id])["capacityProviders"]
    group = d.one("cluster.yaml", "HostGroup").physical_id
    asg = described["autoScalingGroupProvider"]
    assert asg["autoScalingGroupArn"] in (group, d.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["AutoScalingGroupARN"])
    assert asg["managedScaling"]["status"] == "ENABLED"
    assert asg["managedScaling"]["targetCapacity"] == 100
    assert asg["managedTerminationProtection"] == "DISABLED"


@check("AWS::ECS::ClusterCapacityProviderAssociations")
def _associations_cp(d: Deployment, items: list[Resource]) -> None:
    (association,) = items
    provider = d.one("cluster.yaml", "CapacityProvider").physical_id
    (cluster,) = d.client("ecs").describe_clusters(clusters=[d.environment])["clusters"]
    assert cluster["capacityProviders"] == [provider]
    assert cluster["defaultCapacityProviderStrategy"] == [{"capacityProvider": provider, "weight": 1, "base": 0}]


# --- Services --------------------------------------------------------------------------------------

def task_definition_of(d: Deployment, name: str) -> dict:
    arn = d.one("services.yaml", f"{config.logical_id(name)}TaskDefinition").physical_id
    return d.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]


@check("AWS::ECS::TaskDefinition")
def _task_definitions(d: Deployment, items: list[Resource]) -> None:
    assert len(items) == len(d.app.services)
    secrets = d.output("secrets.yaml", "SecretArns").split(",")
    execution = d.output("iam.yaml", "ExecutionRoleArn")
    for service in d.app.services:
        task = task_definition_of(d, service.name)
        assert task["family"] == f"{d.environment}-{service.name}"
        assert task["networkMode"] == service.network_mode
        if service.network_mode == "bridge":  # Docker picks each task's host port
            assert container_port_mappings(task) == [{"containerPort": service.port, "hostPort": 0}]
        assert task["requiresCompatibilities"] == ["EC2"]
        assert (int(task["cpu"]), int(task["memory"])) == (service.cpu, service.memory)
        assert task["executionRoleArn"] == execution
        assert task["taskRoleArn"].endswith(f"-{service.name}-task")
        (container,) = task["containerDefinitions"]
        assert container["portMappings"][0]["containerPort"] == service.port
        for secret in container.get("secrets", []):
            assert secret["valueFrom"] in secrets, "secrets by ARN, never by value"
        assert {s["name"] for s in container.get("secrets", [])} == set(service.secrets)
        logs = container["logConfiguration"]
        assert logs["logDriver"] == "awslogs"
        assert logs["options"]["awslogs-group"] == f"/ecs/{d.environment}/{service.name}"
        copy = mirror.copy_of(d.app, service.image)
        if service.repository:  # the image pushed to the registry stack's repository, at ImageTag
            uri = stacks.outputs(d.stacks["registry.yaml"])[f"{config.logical_id(service.repository)}RepositoryUri"]
            assert container["image"] == f"{uri}:{d.parameter('services.yaml', 'ImageTag')}"
        elif copy:  # a Docker Hub image: its copy in the registry stack's repository for it
            uri = stacks.outputs(d.stacks["registry.yaml"])[f"{config.logical_id(copy.repository)}RepositoryUri"]
            assert container["image"] == f"{uri}:{copy.tag}"
        else:
            assert container["image"] == service.image
        # Least privilege as ECS registered it: read-only root, no capability but the config's, init, never privileged.
        linux = container["linuxParameters"]
        assert container["readonlyRootFilesystem"] is service.read_only and container["privileged"] is False
        assert linux["capabilities"]["drop"] == ["ALL"] and linux["capabilities"].get("add", []) == list(
            service.capabilities)
        assert linux["initProcessEnabled"] is service.init and container.get("user") == service.user
        assert [t["containerPath"] for t in linux.get("tmpfs", [])] == list(service.tmpfs_paths())
        environment = {e["name"]: e["value"] for e in container.get("environment", [])}
        if "DB_HOST" in environment:
            assert environment["DB_HOST"] == f"dks-db.{d.app.namespace}"


def container_port_mappings(task: dict) -> list[dict]:
    (container,) = task["containerDefinitions"]
    return [{"containerPort": m["containerPort"], "hostPort": m.get("hostPort", 0)} for m in container["portMappings"]]


@check("AWS::ECS::Service")
def _services(d: Deployment, items: list[Resource]) -> None:
    ecs = d.client("ecs")
    described = ecs.describe_services(cluster=d.environment, services=[r.physical_id for r in items])["services"]
    by_name = {s["serviceName"]: s for s in described}
    assert sorted(by_name) == sorted(s.name for s in d.app.services)
    provider = d.one("cluster.yaml", "CapacityProvider").physical_id
    subnets = {r.physical_id for r in d.of_type("AWS::EC2::Subnet")}
    discovery = {r.logical_id: r.physical_id for r in d.of_type("AWS::ServiceDiscovery::Service")}
    sd = d.client("servicediscovery")
    groups = {r.logical_id: r.physical_id for r in d.of_type("AWS::EC2::SecurityGroup")}
    for service in d.app.services:
        live = by_name[service.name]
        name = config.logical_id(service.name)
        assert live["status"] == "ACTIVE" and live["desiredCount"] == 1
        assert live["taskDefinition"] == task_definition_of(d, service.name)["taskDefinitionArn"]
        assert live["capacityProviderStrategy"] == [{"capacityProvider": provider, "weight": 1, "base": 0}]
        assert "launchType" not in live, "capacity provider, not a launch type"
        if service.network_mode == "bridge":  # the host's interface: nothing to configure, no A record
            assert not live.get("networkConfiguration") and not live.get("serviceRegistries")
        else:
            network = live["networkConfiguration"]["awsvpcConfiguration"]
            assert set(network["subnets"]) == subnets
            assert network["securityGroups"] == [groups[f"{name}SecurityGroup"]]
            assert network["assignPublicIp"] == "DISABLED"
            (registry,) = live["serviceRegistries"]
            assert registry["registryArn"] == sd.get_service(Id=discovery[f"{name}Discovery"])["Service"]["Arn"]
        if service.public:
            (balancer,) = live["loadBalancers"]
            group = d.one("loadbalancer.yaml", f"{name}TargetGroup").physical_id
            assert (balancer["targetGroupArn"], balancer["containerName"], balancer["containerPort"]) == (
                group, service.name, service.port)
        else:
            assert live.get("loadBalancers", []) == []


@check("AWS::Logs::LogGroup")
def _log_groups(d: Deployment, items: list[Resource]) -> None:
    groups = d.client("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{d.environment}/")["logGroups"]
    expected = {r.physical_id: r.properties["RetentionInDays"] for r in items}
    assert {g["logGroupName"]: g.get("retentionInDays") for g in groups} == expected
    assert sorted(expected) == sorted([f"/ecs/{d.environment}/{s.name}" for s in d.app.services]
                                      + [f"/ecs/{d.environment}/hosts-function"])
    key = d.output("secrets.yaml", "KmsKeyArn")
    assert {g["logGroupName"]: g.get("kmsKeyId") for g in groups} == {name: key for name in expected}


@check("AWS::SecretsManager::Secret")
def _secrets(d: Deployment, items: list[Resource]) -> None:
    sm = d.client("secretsmanager")
    assert len(items) == len(d.app.secrets)
    for secret in items:
        described = sm.describe_secret(SecretId=secret.physical_id)
        assert described["ARN"] == secret.physical_id
        assert described["Description"] == secret.properties["Description"]
        assert described["KmsKeyId"] == d.one("secrets.yaml", "Key").physical_id
        value = sm.get_secret_value(SecretId=secret.physical_id)["SecretString"]
        spec = secret.properties["GenerateSecretString"]
        assert len(value) == spec["PasswordLength"] and value.isalnum(), "generated, no punctuation"
    assert sorted(d.output("secrets.yaml", "SecretArns").split(",")) == sorted(r.physical_id for r in items)


@check("AWS::KMS::Key")
def _key(d: Deployment, items: list[Resource]) -> None:
    (key,) = items
    kms = d.client("kms")
    described = kms.describe_key(KeyId=key.physical_id)["KeyMetadata"]
    assert described["Enabled"] and described["KeyManager"] == "CUSTOMER"
    assert d.output("secrets.yaml", "KmsKeyArn") == described["Arn"]
    assert kms.get_key_rotation_status(KeyId=key.physical_id)["KeyRotationEnabled"] is True
    policy = json.loads(kms.get_key_policy(KeyId=key.physical_id, PolicyName="default")["Policy"])
    logs = next(s for s in policy["Statement"] if s["Sid"] == "LogsEncryptOwnLogGroups")
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == \
        f"arn:aws:logs:us-east-1:123456789012:log-group:/ecs/{d.environment}/*"
    assert all("*" not in action for s in policy["Statement"] for action in s["Action"]), "no wildcard action"


# --- Storage ---------------------------------------------------------------------------------------

@check("AWS::EFS::FileSystem")
def _file_system(d: Deployment, items: list[Resource]) -> None:
    (system,) = items
    (described,) = d.client("efs").describe_file_systems(FileSystemId=system.physical_id)["FileSystems"]
    assert described["Encrypted"] is True and described["KmsKeyId"] == d.output("secrets.yaml", "KmsKeyArn")
    assert described["ThroughputMode"] == "elastic"
    assert d.client("efs").describe_backup_policy(FileSystemId=system.physical_id)["BackupPolicy"]["Status"] == \
        "ENABLED"
    assert d.output("storage.yaml", "FileSystemId") == system.physical_id


@check("AWS::EFS::MountTarget")
def _mount_targets(d: Deployment, items: list[Resource]) -> None:
    efs = d.client("efs")
    subnets = {r.physical_id for r in d.of_type("AWS::EC2::Subnet")}
    data_group = d.output("network.yaml", "DataSecurityGroupId")
    assert len(items) == d.app.network.availability_zones
    described = [efs.describe_mount_targets(MountTargetId=m.physical_id)["MountTargets"][0] for m in items]
    assert {m["SubnetId"] for m in described} == subnets, "one mount target in each public subnet"
    for target in items:
        groups = efs.describe_mount_target_security_groups(MountTargetId=target.physical_id)["SecurityGroups"]
        assert groups == [data_group]
    (group,) = d.client("ec2").describe_security_groups(GroupIds=[data_group])["SecurityGroups"]
    sources = {pair["GroupId"] for rule in group["IpPermissions"] for pair in rule["UserIdGroupPairs"]}
    ports = {(rule["FromPort"], rule["ToPort"]) for rule in group["IpPermissions"]}
    db_group = d.one("network.yaml", "DksDbSecurityGroup").physical_id
    assert sources == {db_group} and ports == {(2049, 2049)}, "NFS from the database's tasks only"


@check("AWS::EFS::AccessPoint")
def _access_points(d: Deployment, items: list[Resource]) -> None:
    (point,) = items
    (described,) = d.client("efs").describe_access_points(AccessPointId=point.physical_id)["AccessPoints"]
    data = d.app.service("dks-db").data
    assert described["PosixUser"] == {"Uid": data.uid, "Gid": data.gid}
    assert described["RootDirectory"]["Path"] == "/dks-db"
    assert described["FileSystemId"] == d.output("storage.yaml", "FileSystemId")
    ecs = d.client("ecs")
    (db,) = ecs.describe_services(cluster=d.environment, services=["dks-db"])["services"]
    definition = ecs.describe_task_definition(taskDefinition=db["taskDefinition"])["taskDefinition"]
    (volume,) = definition["volumes"]
    efs = volume["efsVolumeConfiguration"]
    assert efs["fileSystemId"] == described["FileSystemId"] and efs["transitEncryption"] == "ENABLED"
    assert efs["authorizationConfig"] == {"accessPointId": point.physical_id, "iam": "ENABLED"}
    assert definition["containerDefinitions"][0]["mountPoints"] == [
        {"sourceVolume": volume["name"], "containerPath": data.path}]


# --- Load balancer ---------------------------------------------------------------------------------

@check("AWS::ElasticLoadBalancingV2::LoadBalancer")
def _load_balancer(d: Deployment, items: list[Resource]) -> None:
    (balancer,) = items
    (described,) = d.client("elbv2").describe_load_balancers(LoadBalancerArns=[balancer.physical_id])["LoadBalancers"]
    assert (described["Scheme"], described["Type"]) == ("internet-facing", "application")
    assert described["LoadBalancerName"] == f"{d.environment}-alb"
    subnets = {r.physical_id for r in d.of_type("AWS::EC2::Subnet")}
    assert {z["SubnetId"] for z in described["AvailabilityZones"]} == subnets
    # its own group, and the group the hosts function keeps the hosts' public addresses in
    assert described["SecurityGroups"] == [d.one("network.yaml", "LoadBalancerSecurityGroup").physical_id,
                                           d.one("network.yaml", "HostAddressesSecurityGroup").physical_id]
    assert d.output("main.yaml", "AppUrl") == f"http://{described['DNSName']}"
    assert d.output("main.yaml", "ApiUrl") == f"http://{described['DNSName']}:8080"


@check("AWS::CertificateManager::Certificate")
def _certificate(d: Deployment, items: list[Resource]) -> None:
    (made,) = items
    domain, zone = d.parameter("main.yaml", "DomainName"), d.parameter("main.yaml", "HostedZoneId")
    described = d.client("acm").describe_certificate(CertificateArn=made.physical_id)["Certificate"]
    assert (described["DomainName"], described["Status"], described["Type"]) == (domain, "ISSUED", "AMAZON_ISSUED")
    (option,) = described["DomainValidationOptions"]
    record = option["ResourceRecord"]
    # the validation CNAME ACM asked for is in the zone (CloudFormation wrote it; the certificate is issued)
    found = d.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    assert (record["Name"], "CNAME", [{"Value": record["Value"]}]) in [
        (r["Name"], r["Type"], r.get("ResourceRecords")) for r in found]
    listeners = d.client("elbv2").describe_listeners(
        LoadBalancerArn=d.one("loadbalancer.yaml", "LoadBalancer").physical_id)["Listeners"]
    served = {listener["Port"]: [c["CertificateArn"] for c in listener.get("Certificates", [])]
              for listener in listeners if listener["Protocol"] == "HTTPS"}
    assert served == {443: [made.physical_id], 8080: [made.physical_id]}
    tags = d.client("acm").list_tags_for_certificate(CertificateArn=made.physical_id)["Tags"]
    assert {"Key": "Name", "Value": f"{d.environment}-alb"} in tags


@check("AWS::Route53::RecordSet")
def _records(d: Deployment, items: list[Resource]) -> None:
    (record,) = items
    domain, zone = d.parameter("main.yaml", "DomainName"), d.parameter("main.yaml", "HostedZoneId")
    (balancer,) = d.client("elbv2").describe_load_balancers(
        LoadBalancerArns=[d.one("loadbalancer.yaml", "LoadBalancer").physical_id])["LoadBalancers"]
    (found,) = [r for r in d.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
                if r["Name"].rstrip(".") == domain]
    assert record.physical_id.rstrip(".") == domain and found["Type"] == "A" and "ResourceRecords" not in found
    assert found["AliasTarget"] == {"HostedZoneId": balancer["CanonicalHostedZoneId"], "DNSName": balancer["DNSName"],
                                    "EvaluateTargetHealth": False}


@check("AWS::ElasticLoadBalancingV2::Listener")
def _listeners(d: Deployment, items: list[Resource]) -> None:
    balancer = d.one("loadbalancer.yaml", "LoadBalancer").physical_id
    listeners = d.client("elbv2").describe_listeners(LoadBalancerArn=balancer)["Listeners"]
    assert sorted(listener["ListenerArn"] for listener in listeners) == sorted(r.physical_id for r in items)
    groups = {s.public.port: d.one("loadbalancer.yaml", f"{config.logical_id(s.name)}TargetGroup").physical_id
              for s in d.app.services if s.public}
    actions = {}
    for listener in listeners:
        (action,) = listener["DefaultActions"]
        actions[listener["Port"]] = (listener["Protocol"], action["Type"], action["TargetGroupArn"])
    assert actions == {port: ("HTTP", "forward", group) for port, group in groups.items()}


@check("AWS::ElasticLoadBalancingV2::TargetGroup")
def _target_groups(d: Deployment, items: list[Resource]) -> None:
    elb = d.client("elbv2")
    vpc = d.one("network.yaml", "Vpc").physical_id
    public = {s.name: s for s in d.app.services if s.public}
    assert len(items) == len(public)
    for group in items:
        (described,) = elb.describe_target_groups(TargetGroupArns=[group.physical_id])["TargetGroups"]
        service = public[described["TargetGroupName"].removeprefix(f"{d.environment}-")]
        # awsvpc tasks register by IP; a bridge service's by their host and dynamic port
        kind = "ip" if service.network_mode == "awsvpc" else "instance"
        assert (described["TargetType"], described["Protocol"], described["Port"], described["VpcId"]) == (
            kind, "HTTP", service.port, vpc)
        assert described["HealthCheckPath"] == service.health_check.path
        assert described["LoadBalancerArns"] == [d.one("loadbalancer.yaml", "LoadBalancer").physical_id]


# --- Discovery -------------------------------------------------------------------------------------

@check("AWS::ServiceDiscovery::PrivateDnsNamespace")
def _namespace(d: Deployment, items: list[Resource]) -> None:
    (namespace,) = items
    described = d.client("servicediscovery").get_namespace(Id=namespace.physical_id)["Namespace"]
    assert (described["Name"], described["Type"]) == (d.app.namespace, "DNS_PRIVATE")
    zone = described["Properties"]["DnsProperties"]["HostedZoneId"]
    assert d.client("route53").get_hosted_zone(Id=zone)["HostedZone"]["Config"]["PrivateZone"] is True


@check("AWS::ServiceDiscovery::Service")
def _discovery(d: Deployment, items: list[Resource]) -> None:
    sd = d.client("servicediscovery")
    namespace = d.one("discovery.yaml", "Namespace").physical_id
    listed = sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [namespace]}])["Services"]
    # one per awsvpc service: a bridge service has no address of its own for an A record
    assert sorted(s["Name"] for s in listed) == sorted(s.name for s in d.app.awsvpc_services), "one per awsvpc service"
    for item in items:
        service = sd.get_service(Id=item.physical_id)["Service"]
        assert service["NamespaceId"] == namespace
        assert service["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 10}]
        assert service["HealthCheckCustomConfig"] == {"FailureThreshold": 1}


# --- IAM and ECR -----------------------------------------------------------------------------------

@check("AWS::IAM::Role")
def _roles(d: Deployment, items: list[Resource]) -> None:
    iam = d.client("iam")
    assert len(items) == 3 + len(d.app.services)  # hosts, execution, the hosts function, one per service
    trusted = {"HostRole": "ec2.amazonaws.com", "HostsFunctionRole": "lambda.amazonaws.com"}
    for role in items:
        described = iam.get_role(RoleName=role.physical_id)["Role"]
        trust = described["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        service = trust["Statement"][0]["Principal"]["Service"]
        assert service == trusted.get(role.logical_id, "ecs-tasks.amazonaws.com")
        attached = {p["PolicyArn"].rsplit("/", 1)[-1]
                    for p in iam.list_attached_role_policies(RoleName=role.physical_id)["AttachedPolicies"]}
        declared = {arn["Fn::Sub"].rsplit("/", 1)[-1] for arn in role.properties.get("ManagedPolicyArns", [])}
        assert attached == declared, role.logical_id
        inline = set(iam.list_role_policies(RoleName=role.physical_id)["PolicyNames"])
        assert inline == {p["PolicyName"] for p in role.properties.get("Policies", [])}, role.logical_id
    assert "AmazonEC2ContainerServiceforEC2Role" in {
        p["PolicyArn"].rsplit("/", 1)[-1] for p in iam.list_attached_role_policies(
            RoleName=d.one("iam.yaml", "HostRole").physical_id)["AttachedPolicies"]}


@check("AWS::IAM::InstanceProfile")
def _profile(d: Deployment, items: list[Resource]) -> None:
    (profile,) = items
    described = d.client("iam").get_instance_profile(InstanceProfileName=profile.physical_id)["InstanceProfile"]
    assert [r["RoleName"] for r in described["Roles"]] == [d.one("iam.yaml", "HostRole").physical_id]
    assert d.output("iam.yaml", "InstanceProfileArn") == described["Arn"]


@check("AWS::ECR::Repository")
def _repositories(d: Deployment, items: list[Resource]) -> None:
    ecr = d.client("ecr")
    built = sorted(registry.repositories(d.app))  # the images built, then the Docker Hub copies
    described = ecr.describe_repositories(repositoryNames=[r.physical_id for r in items])["repositories"]
    assert sorted(r["repositoryName"] for r in described) == [f"{d.environment}/{name}" for name in built]
    for repository in described:
        assert repository["imageScanningConfiguration"]["scanOnPush"] is True
        assert repository["encryptionConfiguration"]["encryptionType"] == "KMS"
        assert repository["imageTagMutability"] == "IMMUTABLE"
    out = stacks.outputs(d.stacks["registry.yaml"])
    assert sorted(out.values()) == sorted(r["repositoryUri"] for r in described)


# --- the hosts function ------------------------------------------------------------------------------

@check("AWS::Lambda::Function")
def _hosts_function(d: Deployment, items: list[Resource]) -> None:
    (function,) = items
    described = d.client("lambda").get_function(FunctionName=function.physical_id)["Configuration"]
    assert (described["Runtime"], described["Handler"]) == ("python3.12", "index.handler")
    role = d.client("iam").get_role(RoleName=d.one("cluster.yaml", "HostsFunctionRole").physical_id)["Role"]
    assert described["Role"] == role["Arn"]
    assert described["Environment"]["Variables"] == {
        "GROUP": d.one("cluster.yaml", "HostGroup").physical_id,
        "SECURITY_GROUP": d.one("network.yaml", "HostAddressesSecurityGroup").physical_id, "PORTS": "8080",
        "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "10"}
    assert described["LoggingConfig"]["LogGroup"] == f"/ecs/{d.environment}/hosts-function"


@check("Custom::Hosts")
def _hosts(d: Deployment, items: list[Resource]) -> None:
    # The function ran when the stack made its custom resource: each host's public IP is let in on 8080.
    (group,) = d.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[d.one("cluster.yaml", "HostGroup").physical_id])["AutoScalingGroups"]
    reservations = d.client("ec2").describe_instances(InstanceIds=[i["InstanceId"] for i in group["Instances"]])
    addresses = {i["PublicIpAddress"] for r in reservations["Reservations"] for i in r["Instances"]}
    assert addresses
    rules = d.client("ec2").describe_security_group_rules(Filters=[{
        "Name": "group-id", "Values": [d.one("network.yaml", "HostAddressesSecurityGroup").physical_id]}])
    assert {(r["CidrIpv4"], r["FromPort"]) for r in rules["SecurityGroupRules"] if not r["IsEgress"]} == {
        (f"{address}/32", 8080) for address in addresses}


@check("AWS::Events::Rule")
def _hosts_events(d: Deployment, items: list[Resource]) -> None:
    events = d.client("events")
    function = d.client("lambda").get_function(
        FunctionName=d.one("cluster.yaml", "HostsFunction").physical_id)["Configuration"]["FunctionArn"]
    found = {}
    for rule in items:
        described = events.describe_rule(Name=rule.physical_id.rsplit("/", 1)[-1])
        targets = events.list_targets_by_rule(Rule=described["Name"])["Targets"]
        assert [t["Arn"] for t in targets] == [function]
        found[rule.logical_id] = described
    pattern = json.loads(found["HostsEvents"]["EventPattern"])
    assert pattern["source"] == ["aws.autoscaling"]
    assert pattern["detail"]["AutoScalingGroupName"] == [d.one("cluster.yaml", "HostGroup").physical_id]
    assert found["HostsSchedule"]["ScheduleExpression"] == "rate(5 minutes)"


@check("AWS::Lambda::Permission")
def _hosts_permissions(d: Deployment, items: list[Resource]) -> None:
    policy = json.loads(d.client("lambda").get_policy(
        FunctionName=d.one("cluster.yaml", "HostsFunction").physical_id)["Policy"])
    rules = {r.physical_id for r in d.of_type("AWS::Events::Rule")}
    allowed = {s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in policy["Statement"]
               if s["Principal"] == {"Service": "events.amazonaws.com"}}
    assert len(items) == 2 and len(allowed) == 2
    assert {arn.rsplit("/", 1)[-1] for arn in allowed} == {arn.rsplit("/", 1)[-1] for arn in rules}
