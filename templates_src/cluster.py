"""cluster.yaml: the ECS cluster on EC2 hosts from a Launch Template and an Auto Scaling group.

Deletion order, which decides whether a delete finishes: the root deletes the services stack
before this one (it consumes this stack's outputs), so no service still uses the capacity
provider; here the associations reference the provider, the provider references the group and
the group's launch template references the cluster, so CloudFormation deletes associations ->
provider -> group (terminating the hosts) -> launch template -> cluster. Nothing protects hosts
from termination (no managed termination protection, no scale-in protection), or the group
could never empty.
"""
from __future__ import annotations

from troposphere import Base64, GetAtt, Ref, Sub, Tags
from troposphere.autoscaling import AutoScalingGroup, LaunchTemplateSpecification
from troposphere.autoscaling import Tags as GroupTags
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
from troposphere.policies import AutoScalingScheduledAction, UpdatePolicy

from templates_src import links, names
from templates_src.config import App
from templates_src.wiring import Stack, checkov_skip

AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/{}recommended/image_id"


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
    _capacity(stack, cluster, group)
    return stack


def user_data(app: App) -> str:
    # Quoted heredoc: the shell expands nothing; CloudFormation substitutes ${Cluster}.
    return "\n".join([
        "#!/bin/bash",
        "cat >> /etc/ecs/ecs.config <<'EOF'",
        "ECS_CLUSTER=${Cluster}",
        # awsvpc tasks must not reach the host's instance metadata (and its role credentials).
        "ECS_AWSVPC_BLOCK_IMDS=true",
        f"ECS_RESERVED_MEMORY={app.cluster.reserved_memory_mib}",
        "ECS_ENABLE_CONTAINER_METADATA=true",
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
                                                  "this address; the host security group admits no inbound traffic")),
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


def _group(stack: Stack, template: LaunchTemplate) -> AutoScalingGroup:
    return stack.add(AutoScalingGroup(
        "HostGroup",
        LaunchTemplate=LaunchTemplateSpecification(LaunchTemplateId=Ref(template),
                                                   Version=GetAtt(template, "LatestVersionNumber")),
        MinSize=stack.use(links.MIN_SIZE), MaxSize=stack.use(links.MAX_SIZE),
        DesiredCapacity=stack.use(links.DESIRED_CAPACITY),
        VPCZoneIdentifier=stack.use(links.SUBNET_IDS),
        HealthCheckType="EC2", HealthCheckGracePeriod=120,
        # Scale-in protection would keep hosts alive and block the group's deletion.
        NewInstancesProtectedFromScaleIn=False,
        Tags=GroupTags(Name=Sub("${EnvironmentName}-ecs-host")),
        # Managed scaling owns the group's size after creation; updates must not reset it.
        UpdatePolicy=UpdatePolicy(AutoScalingScheduledAction=AutoScalingScheduledAction(
            IgnoreUnmodifiedGroupSizeProperties=True)),
    ))


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
