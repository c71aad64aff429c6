"""cluster.yaml: the ECS cluster on EC2 hosts from a Launch Template and an Auto Scaling group.

Deletion order, which decides whether a delete finishes: the root deletes the services stack
before this one (it consumes this stack's outputs), so no service still uses the capacity
provider; here the associations reference the provider, the provider references the group and
the group's launch template references the cluster, so CloudFormation deletes associations ->
provider -> group (terminating the hosts) -> launch template -> cluster. Nothing protects hosts
from termination (no managed termination protection, no scale-in protection), or the group
could never empty.

Managed draining (ECS drains a host's tasks before the group terminates it) works through a
termination lifecycle hook ECS adds to the group, `ecs-managed-draining-termination-hook`, with a
3600 s heartbeat (https://github.com/aws/containers-roadmap/issues/2467). Once the provider is
deleted nothing completes it, so the group's hosts would wait up to an hour each in
Terminating:Wait. The hosts function's custom resource depends on the provider, so CloudFormation
deletes it first: its Delete removes the hook, which completes what it holds ("CONTINUE for
terminating instances",
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteLifecycleHook.html), and the
group empties at once. The same function keeps the hosts' public addresses in the load balancer's HostAddresses
group when bridge services call the app's public URLs (network.py says why).

The group has no DesiredCapacity: managed scaling chooses it, and a fixed one would be restored by
every update that touches the group (a new AMI does). A new AMI or instance type reaches running
hosts through an instance refresh (make deploy starts one; the README gives the command).
"""
from __future__ import annotations

from pathlib import Path

from awacs import autoscaling, ec2, logs
from awacs.aws import Allow, PolicyDocument, Statement
from troposphere import Base64, GetAtt, Ref, Sub, Tags
from troposphere.autoscaling import AutoScalingGroup, LaunchTemplateSpecification, MetricsCollection
from troposphere.autoscaling import Tags as GroupTags
from troposphere.awslambda import Code, Environment, Function, LoggingConfig, Permission
from troposphere.cloudformation import AWSCustomObject
from troposphere.ec2 import (
    EBSBlockDevice,
    IamInstanceProfile,
    LaunchTemplate,
    LaunchTemplateBlockDeviceMapping,
    LaunchTemplateData,
    MetadataOptions,
    NetworkInterfaces,
    TagSpecifications,
)
from troposphere.ecs import (
    AutoScalingGroupProvider,
    CapacityProvider,
    CapacityProviderStrategy,
    Cluster,
    ClusterCapacityProviderAssociations,
    ClusterSetting,
    ManagedScaling,
)
from troposphere.events import Rule, Target
from troposphere.iam import Policy, Role
from troposphere.logs import LogGroup

from templates_src.app import capacity, names
from templates_src.stacks import iam, links
from templates_src.app.config import App
from templates_src.stacks.wiring import Stack, checkov_skip

AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/{}recommended/image_id"
# Read as text, never imported: the build needs no boto3.
HOSTS_FUNCTION = Path(__file__).with_name("hosts_function.py")
# Lambda takes at most 4096 characters of inline code (AWS::Lambda::Function Code.ZipFile).
INLINE_CODE_MAX = 4096
# Launches and terminations arrive as events; the schedule repairs what a lost event left behind
# (AWS services' events reach EventBridge on a best-effort basis:
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event.html).
RECONCILE_SCHEDULE = "rate(5 minutes)"
HOST_EVENTS = ["EC2 Instance Launch Successful", "EC2 Instance Terminate Successful"]


class HostsResource(AWSCustomObject):
    """The hosts function's custom resource: Create/Update reconcile the addresses, Delete releases the hosts."""

    resource_type = "Custom::Hosts"
    props = {"ServiceToken": (str, True), "AutoScalingGroupName": (str, True), "SecurityGroupId": (str, True),
             "Ports": (list, True)}


def ami_parameter(architecture: str) -> str:
    """Public SSM parameter holding the current ECS-optimized AL2023 AMI for an architecture."""
    return AMI_PARAMETER.format("arm64/" if architecture == "arm64" else "")


def build(app: App) -> Stack:
    stack = Stack("cluster", app, f"{app.name}: ECS cluster on an Auto Scaling group of EC2 hosts "
                                  "with a managed-scaling capacity provider")
    stack.use(links.ENVIRONMENT_NAME)
    cluster = _cluster(stack)
    template = _launch_template(stack, cluster)
    group = _group(stack, template)
    provider = _capacity(stack, cluster, group)
    _hosts_function(stack, group, provider)
    return stack


def inline_code(source: Path) -> str:
    """A module's source as Code.ZipFile, as it is in the repository: the template shows the very file."""
    code = source.read_text()
    if len(code) > INLINE_CODE_MAX:
        raise ValueError(f"{source.name} is {len(code)} characters; Lambda takes {INLINE_CODE_MAX} inline")
    return code


def user_data(app: App) -> str:
    # Quoted heredoc: the shell expands nothing; CloudFormation substitutes ${Cluster}.
    return "\n".join([
        "#!/bin/bash",
        "cat >> /etc/ecs/ecs.config <<'EOF'",
        "ECS_CLUSTER=${Cluster}",
        # awsvpc tasks must not reach the host's instance metadata (and its role credentials).
        "ECS_AWSVPC_BLOCK_IMDS=true",
        # No task may run a privileged container (root's power over the host), whatever its definition says:
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-agent-config.html
        "ECS_DISABLE_PRIVILEGED=true",
        f"ECS_RESERVED_MEMORY={app.cluster.reserved_memory_mib}",
        "ECS_ENABLE_CONTAINER_METADATA=true",
        # Bridge containers get their task role from the agent only with this on; otherwise the SDKs
        # fall back to the host's (which IMDSv2's hop limit of 1 keeps out of reach anyway):
        # https://repost.aws/knowledge-center/ecs-iam-task-roles-config-errors
        *(["ECS_ENABLE_TASK_IAM_ROLE=true"] if app.bridge_services else []),
        "EOF",
        "",
    ])


def _cluster(stack: Stack) -> Cluster:
    cluster = stack.add(Cluster(
        "Cluster", ClusterName=names.cluster().sub(),
        ClusterSettings=[ClusterSetting(Name="containerInsights", Value="enabled")],
    ))
    stack.publish(links.CLUSTER_NAME, Ref(cluster))
    return cluster


def _launch_template(stack: Stack, cluster: Cluster) -> LaunchTemplate:
    app = stack.app
    return stack.add(LaunchTemplate(
        "HostLaunchTemplate",
        Metadata=checkov_skip(("CKV_AWS_88", "Public subnets only, by design (no NAT gateway): the host's "
                                                  "ECS agent reaches ECR, ECS, Secrets Manager and CloudWatch through "
                                                  "this address; the host security group admits only the load "
                                                  "balancer, on bridge services' dynamic ports")),
        LaunchTemplateData=LaunchTemplateData(
            ImageId=stack.use(links.AMI_ID),
            InstanceType=stack.use(links.INSTANCE_TYPE),
            IamInstanceProfile=IamInstanceProfile(Arn=stack.use(links.INSTANCE_PROFILE_ARN)),
            # IMDSv2 only; one hop keeps containers (one hop further) away from the host's credentials.
            MetadataOptions=MetadataOptions(HttpTokens="required", HttpPutResponseHopLimit=1, HttpEndpoint="enabled"),
            BlockDeviceMappings=[LaunchTemplateBlockDeviceMapping(
                DeviceName="/dev/xvda",
                Ebs=EBSBlockDevice(VolumeType="gp3", VolumeSize=app.cluster.root_volume_gib, Encrypted=True,
                                   DeleteOnTermination=True),
            )],
            # Public subnets without NAT: the host's own public IP is how the agent reaches ECS and ECR.
            NetworkInterfaces=[NetworkInterfaces(
                DeviceIndex=0, AssociatePublicIpAddress=True, DeleteOnTermination=True,
                Groups=[stack.use(links.HOST_SECURITY_GROUP)],
            )],
            UserData=Base64(Sub(user_data(app), Cluster=Ref(cluster))),
            TagSpecifications=[TagSpecifications(ResourceType=kind, Tags=Tags(Name=Sub("${EnvironmentName}-ecs-host")))
                               for kind in ("instance", "volume")],
        ),
    ))


# What the alarm "hosts at their maximum" compares (alarms.py). Group metrics are sent at one-minute granularity
# at no charge once collection is on, and only when it is on:
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-metrics.html
GROUP_METRICS = ["GroupInServiceInstances", "GroupMaxSize"]


def _group(stack: Stack, template: LaunchTemplate) -> AutoScalingGroup:
    group = stack.add(AutoScalingGroup(
        "HostGroup",
        LaunchTemplate=LaunchTemplateSpecification(LaunchTemplateId=Ref(template),
                                                   Version=GetAtt(template, "LatestVersionNumber")),
        MinSize=stack.use(links.MIN_SIZE), MaxSize=stack.use(links.MAX_SIZE),
        VPCZoneIdentifier=stack.use(links.SUBNET_IDS),
        HealthCheckType="EC2", HealthCheckGracePeriod=120,
        # Scale-in protection would keep hosts alive and block the group's deletion.
        NewInstancesProtectedFromScaleIn=False,
        Tags=GroupTags(Name=Sub("${EnvironmentName}-ecs-host")),
        **({"MetricsCollection": [MetricsCollection(Granularity="1Minute", Metrics=GROUP_METRICS)]}
           if stack.app.alarms else {}),
    ))
    if stack.app.alarms:
        stack.publish(links.HOST_GROUP_NAME, Ref(group))
    return group


def _capacity(stack: Stack, cluster: Cluster, group: AutoScalingGroup) -> None:
    provider = stack.add(CapacityProvider(
        "CapacityProvider", Name=names.capacity_provider().sub(),
        AutoScalingGroupProvider=AutoScalingGroupProvider(
            AutoScalingGroupArn=Ref(group),
            ManagedScaling=ManagedScaling(Status="ENABLED", TargetCapacity=100,
                                          MinimumScalingStepSize=1, MaximumScalingStepSize=10),
            # DISABLED: with protection on, hosts running tasks could never be terminated on delete.
            ManagedTerminationProtection="DISABLED",
            ManagedDraining="ENABLED",
        ),
    ))
    stack.add(ClusterCapacityProviderAssociations(
        "CapacityProviderAssociations", Cluster=Ref(cluster), CapacityProviders=[Ref(provider)],
        DefaultCapacityProviderStrategy=[CapacityProviderStrategy(CapacityProvider=Ref(provider), Weight=1, Base=0)],
    ))
    stack.publish(links.CAPACITY_PROVIDER, Ref(provider))
    return provider


def _hosts_function(stack: Stack, group: AutoScalingGroup, provider: CapacityProvider) -> None:
    app = stack.app
    ports = capacity.called_ports(app)
    addresses = stack.use(links.HOST_ADDRESSES_SECURITY_GROUP) if ports else ""
    logs_group = stack.add(LogGroup(
        "HostsFunctionLogGroup", LogGroupName=names.hosts_function_log_group().sub(),
        RetentionInDays=app.log_retention_days, KmsKeyId=stack.use(links.KEY_ARN)))
    role = stack.add(Role(
        "HostsFunctionRole", RoleName=names.hosts_function_role().sub(), AssumeRolePolicyDocument=iam.trust(
            "lambda.amazonaws.com"), Description="The hosts function: read the hosts, keep their addresses, "
                                                  "release the draining hook",
        Policies=[Policy(PolicyName="hosts", PolicyDocument=PolicyDocument(
            Version="2012-10-17", Statement=_hosts_statements(group, bool(ports))))]))
    function = stack.add(Function(
        "HostsFunction", FunctionName=names.hosts_function().sub(), Runtime="python3.12", Handler="index.handler",
        Role=GetAtt(role, "Arn"), Timeout=60, MemorySize=128, Code=Code(ZipFile=inline_code(HOSTS_FUNCTION)),
        Description="Keeps the hosts' public addresses in the load balancer's group; releases the hosts on delete",
        # boto3 in Lambda retries a throttled or failed call 4 times in its legacy mode; a custom resource that
        # fails its stack over one AWS hiccup is worth 10 attempts, as the lifecycle makes. Read by botocore:
        # https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
        Environment=Environment(Variables={"GROUP": Ref(group), "SECURITY_GROUP": addresses,
                                           "PORTS": ",".join(map(str, ports)),
                                           "AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": "10"}),
        LoggingConfig=LoggingConfig(LogGroup=Ref(logs_group)),
        # Reserved concurrency is taken from the account's pool, which must keep its unreserved minimum:
        # https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
        Metadata=checkov_skip(
            ("CKV_AWS_115", "A reserved concurrency takes from the account's unreserved pool, which a new "
                            "account's quota cannot spare; the function runs a few times an hour"),
            ("CKV_AWS_116", "Nothing to retry from a queue: the schedule reconciles again within minutes, and "
                            "CloudFormation waits for the custom resource's own answer"),
            ("CKV_AWS_117", "It calls AWS APIs only; the VPC has no NAT gateway or endpoints to reach them from"),
            ("CKV_AWS_173", "The environment holds a group name, a security group id and ports: no secret"),
            ("CKV_AWS_272", "Inline code written by this template, readable in it; signing applies to packages")),
    ))
    stack.add(HostsResource(
        "Hosts", ServiceToken=GetAtt(function, "Arn"), AutoScalingGroupName=Ref(group), SecurityGroupId=addresses,
        Ports=[str(port) for port in ports],
        # Deleted before the provider: the draining hook goes while nothing else holds the hosts.
        DependsOn=[provider.title]))
    if not ports:
        return
    rules = [stack.add(Rule("HostsEvents", Description="The hosts' launches and terminations", State="ENABLED",
                            EventPattern={"source": ["aws.autoscaling"], "detail-type": HOST_EVENTS,
                                          "detail": {"AutoScalingGroupName": [Ref(group)]}},
                            Targets=[Target(Arn=GetAtt(function, "Arn"), Id="hosts")])),
             stack.add(Rule("HostsSchedule", Description="Repairs the hosts' addresses if an event was lost",
                            ScheduleExpression=RECONCILE_SCHEDULE, State="ENABLED",
                            Targets=[Target(Arn=GetAtt(function, "Arn"), Id="hosts")]))]
    for rule in rules:
        stack.add(Permission(f"{rule.title}Permission", Action="lambda:InvokeFunction", FunctionName=Ref(function),
                             Principal="events.amazonaws.com", SourceArn=GetAtt(rule, "Arn")))


def _arn(service: str, rest: str) -> str:
    """A Fn::Sub ARN of this account and region."""
    return f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{rest}"


def _hosts_statements(group: AutoScalingGroup, addresses: bool) -> list[Statement]:
    reads = [autoscaling.DescribeAutoScalingGroups, autoscaling.DescribeLifecycleHooks]
    statements = [
        Statement(Sid="WriteOwnLogs", Effect=Allow, Action=[logs.CreateLogStream, logs.PutLogEvents],
                  Resource=[Sub(_arn("logs", f"log-group:{names.hosts_function_log_group().pattern}:*"))]),
        # Describe actions take no resource: https://docs.aws.amazon.com/service-authorization/latest/reference/
        # list_amazonec2autoscaling.html and list_amazonec2.html (the Resource types column is empty for them).
        Statement(Sid="ReadHosts", Effect=Allow,
                  Action=reads + ([ec2.DescribeInstances, ec2.DescribeSecurityGroupRules] if addresses else []),
                  Resource=["*"]),
        Statement(Sid="ReleaseDrainingHook", Effect=Allow, Action=[autoscaling.DeleteLifecycleHook],
                  Resource=[Sub(_arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/${Group}"),
                                Group=Ref(group))]),
    ]
    if addresses:
        statements.append(Statement(
            Sid="KeepHostAddresses", Effect=Allow,
            Action=[ec2.AuthorizeSecurityGroupIngress, ec2.RevokeSecurityGroupIngress],
            Resource=[Sub(_arn("ec2", f"security-group/${{{links.HOST_ADDRESSES_SECURITY_GROUP.name}}}"))]))
    return statements
