"""Single changes to build/ that CloudFormation or a service API refuses, each with its source.

A mutation names the template, what it changes (one property, one resource), the words the refusal
must contain, and where AWS says it refuses it: the resource type's registry schema (the copy cfn-lint
ships in cfnlint/data/schemas, which CloudFormation validates properties against), an API reference
page, or an error message quoted in an issue. tests/emulator/tests/test_strictness.py deploys each on the emulator.

`Context` carries what a change may point at that the templates do not hold: a security group and a
subnet of another VPC, made by the suite beside the deployment.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

SCHEMA = "resource schema {type}: {pointer}"
SG_OTHER_VPC = ("EC2 refuses a rule between groups of two unpeered VPCs: 'You have specified two resources that "
                "belong to different networks' (AuthorizeSecurityGroupIngress; "
                "https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html: a referenced group "
                "must be in the same VPC or a peered one)")


@dataclasses.dataclass(frozen=True)
class Context:
    foreign_group: str  # a security group of another VPC
    foreign_subnet: str  # a subnet of that VPC


@dataclasses.dataclass(frozen=True)
class Mutation:
    template: str
    name: str
    change: Callable[[dict, Context], None]
    refusal: str  # words the stack's failure must contain
    source: str

    @property
    def id(self) -> str:
        return f"{self.template[:-5]}: {self.name}"


MUTATIONS: list[Mutation] = []


def mutation(template: str, name: str, refusal: str, source: str) -> Callable:
    def register(change: Callable[[dict, Context], None]) -> Callable:
        MUTATIONS.append(Mutation(template, name, change, refusal, source))
        return change

    return register


def props(template: dict, logical_id: str) -> dict:
    return template["Resources"][logical_id]["Properties"]


def schema(resource_type: str, pointer: str) -> str:
    return SCHEMA.format(type=resource_type, pointer=pointer)


def container(template: dict, task: str) -> dict:
    return props(template, task)["ContainerDefinitions"][0]


def setting(**values: Any) -> Callable[[dict, Context], None]:
    """A change that sets properties of one resource: setting(Resource={"Prop": value})."""
    ((logical_id, given),) = values.items()

    def change(template: dict, _context: Context) -> None:
        props(template, logical_id).update(given)

    return change


def dropping(logical_id: str, prop: str) -> Callable[[dict, Context], None]:
    def change(template: dict, _context: Context) -> None:
        del props(template, logical_id)[prop]

    return change


def simple(template: str, name: str, refusal: str, source: str, change: Callable[[dict, Context], None]) -> None:
    MUTATIONS.append(Mutation(template, name, change, refusal, source))


TG = "AWS::ElasticLoadBalancingV2::TargetGroup"
TD = "AWS::ECS::TaskDefinition"

# --- the resource schemas: required, enum, pattern, bounds, unknown properties ---------------------------------

simple("loadbalancer.yaml", "a listener without a default action", "required key [DefaultActions] not found",
       schema("AWS::ElasticLoadBalancingV2::Listener", "required: DefaultActions"),
       dropping("Listener80", "DefaultActions"))
simple("loadbalancer.yaml", "a listener on port 70000", "#/Port: failed validation constraint for keyword [maximum]",
       schema("AWS::ElasticLoadBalancingV2::Listener", "/properties/Port maximum 65535"),
       setting(Listener8080={"Port": 70000}))
simple("loadbalancer.yaml", "a health check every 400 s",
       "#/HealthCheckIntervalSeconds: failed validation constraint for keyword [maximum]",
       schema(TG, "/properties/HealthCheckIntervalSeconds maximum 300"),
       setting(DksApiTargetGroup={"HealthCheckIntervalSeconds": 400}))
simple("loadbalancer.yaml", "a healthy threshold of 1",
       "#/HealthyThresholdCount: failed validation constraint for keyword [minimum]",
       schema(TG, "/properties/HealthyThresholdCount minimum 2"),
       setting(DksApiTargetGroup={"HealthyThresholdCount": 1}))
simple("loadbalancer.yaml", "a load balancer of type 'app'", "#/Type: failed validation constraint for keyword [enum]",
       schema("AWS::ElasticLoadBalancingV2::LoadBalancer", "/properties/Type enum"),
       setting(LoadBalancer={"Type": "app"}))
simple("loadbalancer.yaml", "a load balancer scheme 'public'",
       "#/Scheme: failed validation constraint for keyword [enum]",
       schema("AWS::ElasticLoadBalancingV2::LoadBalancer", "/properties/Scheme enum"),
       setting(LoadBalancer={"Scheme": "public"}))
simple("loadbalancer.yaml", "a target group property misspelt", "extraneous key [HealthCheckUrl] is not permitted",
       schema(TG, "additionalProperties: false"), setting(DksApiTargetGroup={"HealthCheckUrl": "/actuator/health"}))
simple("loadbalancer.yaml", "a target group name of 33 characters", "cannot be longer than '32' characters",
       "ELB CreateTargetGroup: 'can have a maximum of 32 characters' (https://docs.aws.amazon.com/"
       "elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html)",
       setting(DksApiTargetGroup={"Name": "a" * 33}))

simple("services.yaml", "a network mode 'vpc'", "#/NetworkMode: failed validation constraint for keyword [enum]",
       schema(TD, "/properties/NetworkMode enum"), setting(DksApiTaskDefinition={"NetworkMode": "vpc"}))
simple("services.yaml", "a log group kept 8 days", "#/RetentionInDays: failed validation constraint for keyword [enum]",
       schema("AWS::Logs::LogGroup", "/properties/RetentionInDays enum"),
       setting(DksApiLogGroup={"RetentionInDays": 8}))
simple("services.yaml", "a service property misspelt", "extraneous key [DesiredTasks] is not permitted",
       schema("AWS::ECS::Service", "additionalProperties: false"), setting(DksApiService={"DesiredTasks": 1}))
simple("services.yaml", "a service propagating tags from 'ALL'",
       "#/PropagateTags: failed validation constraint for keyword [enum]",
       schema("AWS::ECS::Service", "/properties/PropagateTags enum"), setting(DksApiService={"PropagateTags": "ALL"}))
simple("services.yaml", "a placement strategy 'pack'", "failed validation constraint for keyword [enum]",
       schema("AWS::ECS::Service", "#/definitions/PlacementStrategy/properties/Type enum"),
       setting(DksApiService={"PlacementStrategies": [{"Type": "pack", "Field": "memory"}]}))


@mutation("services.yaml", "a port mapping protocol 'TCP'", "failed validation constraint for keyword [enum]",
          schema(TD, "#/definitions/PortMapping/properties/Protocol enum (tcp, udp; case-sensitive)"))
def _protocol_upper(template: dict, _context: Context) -> None:
    container(template, "DksApiTaskDefinition")["PortMappings"][0]["Protocol"] = "TCP"


@mutation("services.yaml", "a secret without its ValueFrom", "required key [ValueFrom] not found",
          schema(TD, "#/definitions/Secret required: Name, ValueFrom"))
def _secret_without_value(template: dict, _context: Context) -> None:
    del container(template, "DksApiTaskDefinition")["Secrets"][0]["ValueFrom"]


simple("cluster.yaml", "a function with a 1000 s timeout", "Member must have value less than or equal to 900",
       "Lambda CreateFunction: Timeout at most 900 (https://docs.aws.amazon.com/lambda/latest/api/"
       "API_CreateFunction.html)", setting(HostsFunction={"Timeout": 1000}))
simple("cluster.yaml", "a function with 64 MB", "#/MemorySize: failed validation constraint for keyword [minimum]",
       schema("AWS::Lambda::Function", "/properties/MemorySize minimum 128"), setting(HostsFunction={"MemorySize": 64}))
simple("cluster.yaml", "a rule in state 'ON'", "#/State: failed validation constraint for keyword [enum]",
       schema("AWS::Events::Rule", "/properties/State enum"), setting(HostsSchedule={"State": "ON"}))
simple("cluster.yaml", "a group without MaxSize", "required key [MaxSize] not found",
       schema("AWS::AutoScaling::AutoScalingGroup", "required: MaxSize, MinSize"), dropping("HostGroup", "MaxSize"))
simple("cluster.yaml", "a capacity provider's target capacity of 101 %",
       "TargetCapacity: failed validation constraint for keyword [maximum]",
       schema("AWS::ECS::CapacityProvider", "#/definitions/ManagedScaling/properties/TargetCapacity maximum 100"),
       lambda t, _c: props(t, "CapacityProvider")["AutoScalingGroupProvider"]["ManagedScaling"].update(
           TargetCapacity=101))
simple("cluster.yaml", "a permission without its Action", "required key [Action] not found",
       schema("AWS::Lambda::Permission", "required: Action, FunctionName, Principal"),
       dropping("HostsSchedulePermission", "Action"))


@mutation("cluster.yaml", "IMDS tokens 'mandatory'", "HttpTokens: failed validation constraint for keyword [enum]",
          schema("AWS::EC2::LaunchTemplate", "#/definitions/MetadataOptions/properties/HttpTokens enum (optional, "
                                             "required)"))
def _imds_mandatory(template: dict, _context: Context) -> None:
    props(template, "HostLaunchTemplate")["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] = "mandatory"


simple("network.yaml", "a subnet without its VPC", "required key [VpcId] not found",
       schema("AWS::EC2::Subnet", "required: VpcId"), dropping("PublicSubnetA", "VpcId"))
simple("network.yaml", "an ingress rule without a protocol", "required key [IpProtocol] not found",
       schema("AWS::EC2::SecurityGroupIngress", "required: IpProtocol"), dropping("DksApiToDksDbIngress", "IpProtocol"))

simple("storage.yaml", "a performance mode 'fast'",
       "#/PerformanceMode: failed validation constraint for keyword [enum]",
       schema("AWS::EFS::FileSystem", "/properties/PerformanceMode enum"),
       setting(FileSystem={"PerformanceMode": "fast"}))


@mutation("storage.yaml", "an access point root directory without '/'",
          "Path: failed validation constraint for keyword",
          schema("AWS::EFS::AccessPoint", "#/definitions/RootDirectory/properties/Path pattern (absolute)"))
def _access_point_relative(template: dict, _context: Context) -> None:
    props(template, "DksDbAccessPoint")["RootDirectory"]["Path"] = "dks-db"


simple("secrets.yaml", "a key deleted after 3 days", "#/PendingWindowInDays: failed validation constraint for keyword "
       "[minimum]", schema("AWS::KMS::Key", "/properties/PendingWindowInDays minimum 7"),
       setting(Key={"PendingWindowInDays": 3}))
simple("secrets.yaml", "a key spec 'RSA_1024'", "#/KeySpec: failed validation constraint for keyword [enum]",
       schema("AWS::KMS::Key", "/properties/KeySpec enum"), setting(Key={"KeySpec": "RSA_1024"}))


@mutation("secrets.yaml", "a generated password of 5000 characters", "less than or equal to 4096",
          "Secrets Manager GetRandomPassword: PasswordLength 1-4096 (https://docs.aws.amazon.com/secretsmanager/latest/"
          "apireference/API_GetRandomPassword.html)")
def _password_too_long(template: dict, _context: Context) -> None:
    props(template, "PostgresPasswordSecret")["GenerateSecretString"]["PasswordLength"] = 5000


simple("registry.yaml", "a repository name in capitals",
       "#/RepositoryName: failed validation constraint for keyword [pattern]",
       schema("AWS::ECR::Repository", "/properties/RepositoryName pattern (lower case)"),
       setting(DksApiRepository={"RepositoryName": {"Fn::Sub": "${EnvironmentName}/DKS-API"}}))
simple("registry.yaml", "a tag mutability 'LOCKED'", "#/ImageTagMutability: failed validation constraint for keyword "
       "[enum]", schema("AWS::ECR::Repository", "/properties/ImageTagMutability enum"),
       setting(DksUiRepository={"ImageTagMutability": "LOCKED"}))

simple("iam.yaml", "a role name of 70 characters", "#/RoleName: failed validation constraint for keyword [maxLength]",
       schema("AWS::IAM::Role", "/properties/RoleName maxLength 64"), setting(DksApiTaskRole={"RoleName": "r" * 70}))
simple("iam.yaml", "a role without its trust policy", "required key [AssumeRolePolicyDocument] not found",
       schema("AWS::IAM::Role", "required: AssumeRolePolicyDocument"),
       dropping("DksUiTaskRole", "AssumeRolePolicyDocument"))

simple("discovery.yaml", "a DNS record of type 'AA'", "failed validation constraint for keyword [enum]",
       schema("AWS::ServiceDiscovery::Service", "#/definitions/DnsRecord/properties/Type enum"),
       lambda t, _c: props(t, "DksApiDiscovery")["DnsConfig"]["DnsRecords"][0].update(Type="AA"))


# --- template-level: what CloudFormation refuses before it calls any service ---------------------------

@mutation("loadbalancer.yaml", "an unknown GetAtt attribute", "does not support attribute type DnsName in Fn::GetAtt",
          "CloudFormation template validation: 'Template error: resource X does not support attribute type Y in "
          "Fn::GetAtt' (attributes: the schema's readOnlyProperties; https://github.com/jagregory/cfval/issues/1)")
def _unknown_getatt(template: dict, _context: Context) -> None:
    props(template, "DksApiTargetGroup")["Tags"] = [{"Key": "alb", "Value": {"Fn::GetAtt": ["LoadBalancer",
                                                                                            "DnsName"]}}]


# --- the service APIs, across resources ----------------------------------------------------------------

simple("loadbalancer.yaml", "a health check path without '/'", "HealthCheckPath",
       "ELB CreateTargetGroup: the ping path starts with '/' (https://docs.aws.amazon.com/elasticloadbalancing/latest/"
       "APIReference/API_CreateTargetGroup.html; the same rule in Lightsail's words: 'HealthCheckPath must begin "
       "with a "
       "'/' character', https://github.com/hashicorp/terraform/issues/32616)",
       setting(DksApiTargetGroup={"HealthCheckPath": "actuator/health"}))
simple("loadbalancer.yaml", "a health check timeout not below its interval", "timeout",
       "ELB CreateTargetGroup: HealthCheckTimeoutSeconds must be smaller than HealthCheckIntervalSeconds "
       "(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html)",
       setting(DksApiTargetGroup={"HealthCheckTimeoutSeconds": 30}))
simple("loadbalancer.yaml", "an application load balancer in one subnet",
       "At least two subnets in two different Availability Zones must be specified",
       "ELB CreateLoadBalancer ValidationError, quoted in https://github.com/aws-samples/aws-cdk-examples/issues/226",
       setting(LoadBalancer={"Subnets": [{"Fn::Select": [0, {"Ref": "SubnetIds"}]}]}))
simple("loadbalancer.yaml", "a load balancer given one subnet twice", "#/Subnets: failed validation constraint for "
       "keyword [uniqueItems]", schema("AWS::ElasticLoadBalancingV2::LoadBalancer", "/properties/Subnets uniqueItems"),
       setting(LoadBalancer={"Subnets": [{"Fn::Select": [0, {"Ref": "SubnetIds"}]},
                                         {"Fn::Select": [0, {"Ref": "SubnetIds"}]}]}))


@mutation("loadbalancer.yaml", "a load balancer with a group of another VPC", "belong to different networks",
          "ELB CreateLoadBalancer: the security groups must be in the subnets' VPC "
          "(https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html); "
          + SG_OTHER_VPC)
def _alb_foreign_group(template: dict, context: Context) -> None:
    props(template, "LoadBalancer")["SecurityGroups"][1] = context.foreign_group


@mutation("services.yaml", "an awsvpc port mapping with another hostPort", "hostPort must equal containerPort",
          "ECS PortMapping: 'in awsvpc ... the hostPort can either be left blank or set to the same value as the "
          "containerPort' (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PortMapping.html)")
def _awsvpc_host_port(template: dict, _context: Context) -> None:
    container(template, "DksApiTaskDefinition")["PortMappings"][0]["HostPort"] = 18080


@mutation("services.yaml", "container memory above the task's", "'memory' setting for container 'dks-api' is greater "
          "than for the task", "ECS RegisterTaskDefinition ClientException, quoted in "
          "https://github.com/pulumi/pulumi-awsx/issues/1220")
def _container_memory(template: dict, _context: Context) -> None:
    container(template, "DksApiTaskDefinition")["Memory"] = 2048


@mutation("services.yaml", "memory reservation above the container's memory", "memoryReservation",
          "ECS ContainerDefinition: 'memory must be greater than memoryReservation' when both are given "
          "(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html)")
def _reservation_over_limit(template: dict, _context: Context) -> None:
    container(template, "DksApiTaskDefinition").update(Memory=256, MemoryReservation=512)


@mutation("services.yaml", "no essential container", "essential",
          "ECS RegisterTaskDefinition: 'All tasks must have at least one essential container' "
          "(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html#ECS-Type-"
          "ContainerDefinition-essential)")
def _nothing_essential(template: dict, _context: Context) -> None:
    container(template, "DksApiTaskDefinition")["Essential"] = False


@mutation("services.yaml", "a secret's valueFrom that is not an ARN", "ResourceInitializationError",
          "ECS Secret.valueFrom: the full ARN of the Secrets Manager secret, or an SSM parameter's ARN or name "
          "(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Secret.html); a task whose secret cannot be "
          "read stops with ResourceInitializationError and the circuit breaker fails the service")
def _value_from_name(template: dict, _context: Context) -> None:
    container(template, "DksApiTaskDefinition")["Secrets"][0]["ValueFrom"] = "dks-db-role-password"


@mutation("services.yaml", "an ip target group behind a bridge service", "incompatible with the bridge network mode",
          "ECS CreateService InvalidParameterException: 'The provided target group ... has target type ip, which is "
          "incompatible with the bridge network mode specified in the task definition', quoted in "
          "https://github.com/hashicorp/terraform/issues/24266")
def _ip_target_bridge(template: dict, _context: Context) -> None:
    props(template, "DksUiService")["LoadBalancers"][0]["TargetGroupArn"] = {
        "Fn::Select": [0, {"Ref": "TargetGroupArns"}]}


@mutation("services.yaml", "a load balancer on a port the container does not map", "did not have a container port",
          "ECS CreateService: the load balancer's containerPort must be one of the container's port mappings "
          "(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LoadBalancer.html)")
def _unmapped_port(template: dict, _context: Context) -> None:
    props(template, "DksApiService")["LoadBalancers"][0]["ContainerPort"] = 9090


@mutation("services.yaml", "an awsvpc service without its network configuration", "Network Configuration must be "
          "provided", "ECS CreateService: 'Network Configuration must be provided when networkMode 'awsvpc' is "
          "specified' (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html)")
def _no_network_configuration(template: dict, _context: Context) -> None:
    del props(template, "DksApiService")["NetworkConfiguration"]


@mutation("services.yaml", "a mount point on a volume the task does not declare", "Unknown volume",
          "ECS RegisterTaskDefinition: a mount point's sourceVolume must name a volume of the task "
          "(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_MountPoint.html)")
def _unknown_volume(template: dict, _context: Context) -> None:
    container(template, "DksDbTaskDefinition")["MountPoints"][0]["SourceVolume"] = "no-such-volume"


@mutation("cluster.yaml", "a capacity provider named 'ecs-…'", "cannot be prefixed",
          "ECS CreateCapacityProvider: 'The name can't be prefixed with \"aws\", \"ecs\", or \"fargate\"' "
          "(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCapacityProvider.html)")
def _provider_prefix(template: dict, _context: Context) -> None:
    props(template, "CapacityProvider")["Name"] = {"Fn::Sub": "ecs-${EnvironmentName}-hosts"}


@mutation("cluster.yaml", "a schedule 'every 5 minutes'", "#/ScheduleExpression: failed validation constraint for "
          "keyword [pattern]", schema("AWS::Events::Rule", "/properties/ScheduleExpression pattern (rate() or cron())"))
def _bad_schedule(template: dict, _context: Context) -> None:
    props(template, "HostsSchedule")["ScheduleExpression"] = "every 5 minutes"


@mutation("cluster.yaml", "a group whose MinSize exceeds its MaxSize", "must be greater than or equal to min bound",
          "Auto Scaling CreateAutoScalingGroup ValidationError 'Max bound, 3, must be greater than or equal to min "
          "bound, 5' (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html)")
def _min_over_max(template: dict, _context: Context) -> None:
    props(template, "HostGroup")["MinSize"] = "5"


@mutation("cluster.yaml", "a role policy action without its service", "Actions/Conditions must be prefaced by a "
          "vendor", "IAM PutRolePolicy MalformedPolicyDocument 'Actions/Conditions must be prefaced by a vendor, e.g., "
          "iam, sdb, ec2, etc.' "
          "(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html)")
def _action_without_vendor(template: dict, _context: Context) -> None:
    statement = props(template, "HostsFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"][0]
    statement["Action"] = ["DescribeInstances"]


@mutation("iam.yaml", "a trust policy with Effect 'Permit'", "MalformedPolicyDocument",
          "IAM CreateRole MalformedPolicyDocument: Effect is Allow or Deny "
          "(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_effect.html)")
def _effect_permit(template: dict, _context: Context) -> None:
    props(template, "DksApiTaskRole")["AssumeRolePolicyDocument"]["Statement"][0]["Effect"] = "Permit"


@mutation("network.yaml", "a rule referencing a group of another VPC", "belong to different networks", SG_OTHER_VPC)
def _rule_foreign_group(template: dict, context: Context) -> None:
    props(template, "DksApiToDksDbIngress")["SourceSecurityGroupId"] = context.foreign_group


@mutation("network.yaml", "a subnet outside its VPC's range", "is invalid",
          "EC2 CreateSubnet InvalidSubnet.Range: the subnet's CIDR block must be within the VPC's "
          "(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)")
def _subnet_outside(template: dict, _context: Context) -> None:
    props(template, "PublicSubnetA")["CidrBlock"] = "192.168.0.0/24"


@mutation("storage.yaml", "two mount targets in one Availability Zone", "mount target already exists in this AZ",
          "EFS CreateMountTarget MountTargetConflict: one mount target per Availability Zone "
          "(https://docs.aws.amazon.com/efs/latest/ug/API_CreateMountTarget.html)")
def _mount_target_twice(template: dict, _context: Context) -> None:
    props(template, "MountTargetB")["SubnetId"] = {"Fn::Select": [0, {"Ref": "SubnetIds"}]}


@mutation("storage.yaml", "a mount target with a group of another VPC", "same VPC as the subnet",
          "EFS CreateMountTarget: 'The security groups must be for the same VPC as the subnet specified' "
          "(https://docs.aws.amazon.com/efs/latest/ug/API_CreateMountTarget.html)")
def _mount_target_foreign_group(template: dict, context: Context) -> None:
    props(template, "MountTargetA")["SecurityGroups"] = [context.foreign_group]


@mutation("registry.yaml", "a lifecycle policy that is not JSON", "LifecyclePolicyText",
          "ECR PutLifecyclePolicy InvalidParameterException: the policy text is a JSON document with rules "
          "(https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html)")
def _lifecycle_not_json(template: dict, _context: Context) -> None:
    props(template, "DksApiRepository")["LifecyclePolicy"]["LifecyclePolicyText"] = "keep the last 10 images"


@mutation("discovery.yaml", "a discovery service in a namespace that does not exist", "Namespace ns-0123456789abcdef "
          "not found",
          "Cloud Map CreateService NamespaceNotFound (https://docs.aws.amazon.com/cloud-map/latest/api/"
          "API_CreateService.html)")
def _no_namespace(template: dict, _context: Context) -> None:
    props(template, "DksApiDiscovery")["NamespaceId"] = "ns-0123456789abcdef"


@mutation("services.yaml", "a service named like one the cluster runs", "Creation of service was not idempotent",
          "ECS CreateService: a service name is unique in its cluster (https://docs.aws.amazon.com/AmazonECS/latest/"
          "APIReference/API_CreateService.html; the message as quoted in "
          "https://github.com/hashicorp/terraform-provider-aws/issues/14489)")
def _same_service_name(template: dict, _context: Context) -> None:
    props(template, "DksApiService")["ServiceName"] = "dks-api"


# Not a mutation: a Cloud Map service in a private namespace of another VPC. No API refuses it; the records are
# in a hosted zone the tasks' VPC does not resolve ("Deploying with a mismatched VPC succeeds but service
# discovery is non-functional", https://github.com/aws/aws-cdk/pull/36812).

# --- refused by AWS, still accepted by the emulator (README: what the emulator still accepts) ------------------

@mutation("network.yaml", "a port range from 5432 down to 5000", "Invalid TCP/UDP port range",
          "EC2 AuthorizeSecurityGroupIngress InvalidParameterValue 'Invalid TCP/UDP port range' "
          "(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)")
def _port_range_backwards(template: dict, _context: Context) -> None:
    props(template, "DksApiToDksDbIngress")["ToPort"] = 5000


@mutation("secrets.yaml", "a key policy that locks the account out", "will not allow you to update the key policy",
          "KMS CreateKey MalformedPolicyDocumentException 'The new key policy will not allow you to update the key "
          "policy in the future' (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html)")
def _key_lockout(template: dict, _context: Context) -> None:
    statement = props(template, "Key")["KeyPolicy"]["Statement"][0]
    statement["Action"] = [a for a in statement["Action"] if a != "kms:PutKeyPolicy"]


@mutation("iam.yaml", "a trust policy for a service that does not exist", "Invalid principal in policy",
          "IAM CreateRole MalformedPolicyDocument 'Invalid principal in policy' "
          "(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html)")
def _unknown_service_principal(template: dict, _context: Context) -> None:
    props(template, "DksApiTaskRole")["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] = {
        "Service": "ecs-task.amazonaws.com"}
