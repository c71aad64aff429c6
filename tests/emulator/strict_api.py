"""The checks the service APIs make across resources, which no resource schema expresses (strict.py runs them).

Each check gets the logical ID, the resolved properties and the stack's resource map (its account and
region lead to moto's backends, which hold what the stack made so far and everything else in the account),
and raises `Refused` with the service's words. Sources are cited per check.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .strict import Refused, api_check, being_updated


def _backend(registry: dict, resources_map: Any) -> Any:
    return registry[resources_map._account_id][resources_map._region_name]


def _ec2(resources_map: Any) -> Any:
    from moto.ec2.models import ec2_backends

    return _backend(ec2_backends, resources_map)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _group_vpc(resources_map: Any, group_id: str) -> str | None:
    group = _ec2(resources_map).get_security_group_from_id(group_id)
    return getattr(group, "vpc_id", None)


def _subnet(resources_map: Any, subnet_id: str) -> Any:
    try:
        return _ec2(resources_map).get_subnet(subnet_id)
    except Exception:  # InvalidSubnetID.NotFound: moto's own create refuses it in its words
        return None


# https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html: a rule may reference a group of the
# same VPC (or a peered one); EC2 answers otherwise "You have specified two resources that belong to different
# networks." (InvalidGroup.NotFound), the words also quoted where EC2 refuses a group and subnet of two VPCs.
DIFFERENT_NETWORKS = "You have specified two resources that belong to different networks."


@api_check("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
def _rule_between_vpcs(logical_id: str, props: dict, resources_map: Any) -> None:
    peer = props.get("SourceSecurityGroupId") or props.get("DestinationSecurityGroupId")
    group = props.get("GroupId")
    if not (isinstance(peer, str) and isinstance(group, str) and peer.startswith("sg-") and group.startswith("sg-")):
        return
    peer_vpc, own_vpc = _group_vpc(resources_map, peer), _group_vpc(resources_map, group)
    if peer_vpc and own_vpc and peer_vpc != own_vpc:
        raise Refused(DIFFERENT_NETWORKS, "InvalidGroup.NotFound")


# --- Elastic Load Balancing ---------------------------------------------------------------------------

@api_check("AWS::ElasticLoadBalancingV2::LoadBalancer")
def _load_balancer_subnets(logical_id: str, props: dict, resources_map: Any) -> None:
    """An Application Load Balancer needs two subnets in two Availability Zones, one subnet per zone, and
    security groups of the subnets' VPC: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/
    API_CreateLoadBalancer.html; the messages as ELB gives them, quoted in
    https://github.com/aws-samples/aws-cdk-examples/issues/226 and
    https://github.com/robertdebock/terraform-aws-vault/issues/5."""
    if props.get("Type", "application") != "application":
        return
    subnet_ids = props.get("Subnets") or [m.get("SubnetId") for m in props.get("SubnetMappings") or []]
    subnets = [s for s in (_subnet(resources_map, i) for i in subnet_ids if isinstance(i, str)) if s is not None]
    zones = [s.availability_zone for s in subnets]
    if len(set(zones)) != len(zones):
        raise Refused("A load balancer cannot be attached to multiple subnets in the same Availability Zone",
                      "InvalidConfigurationRequest")
    if len(zones) < 2:
        raise Refused("At least two subnets in two different Availability Zones must be specified", "ValidationError")
    vpcs = {s.vpc_id for s in subnets}
    for group in props.get("SecurityGroups") or []:
        if isinstance(group, str) and _group_vpc(resources_map, group) not in (None, *vpcs):
            raise Refused(f"{DIFFERENT_NETWORKS} (security group {group})", "InvalidSecurityGroup")


@api_check("AWS::ElasticLoadBalancingV2::TargetGroup")
def _health_check(logical_id: str, props: dict, resources_map: Any) -> None:
    """https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html: the
    path begins with '/'; the timeout is smaller than the interval."""
    protocol = str(props.get("HealthCheckProtocol") or props.get("Protocol") or "HTTP").upper()
    path = props.get("HealthCheckPath")
    if protocol in ("HTTP", "HTTPS") and isinstance(path, str) and not path.startswith("/"):
        raise Refused(f"Health check path '{path}' is not valid: HealthCheckPath must begin with a '/' character",
                      "ValidationError")
    timeout = _number(props.get("HealthCheckTimeoutSeconds"))
    interval = _number(props.get("HealthCheckIntervalSeconds"))
    if timeout is not None and interval is not None and timeout >= interval:
        raise Refused("Health check timeout must be smaller than the interval", "ValidationError")


# --- ECS ----------------------------------------------------------------------------------------------

# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCapacityProvider.html
@api_check("AWS::ECS::CapacityProvider")
def _provider_name(logical_id: str, props: dict, resources_map: Any) -> None:
    name = props.get("Name")
    if isinstance(name, str) and name.lower().startswith(("aws", "ecs", "fargate")):
        raise Refused(f"Invalid capacity provider name {name}: the name cannot be prefixed with \"aws\", \"ecs\" or "
                      "\"fargate\"", "ClientException")


@api_check("AWS::ECS::TaskDefinition")
def _containers(logical_id: str, props: dict, resources_map: Any) -> None:
    """RegisterTaskDefinition's checks across containers
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html): a container's memory
    within the task's ("The 'memory' setting for container 'x' is greater than for the task.", quoted in
    https://github.com/pulumi/pulumi-awsx/issues/1220), memory above memoryReservation, at least one essential
    container, mount points on the task's volumes."""
    containers = props.get("ContainerDefinitions") or []
    task_memory = _number(props.get("Memory"))
    volumes = {v.get("Name") for v in props.get("Volumes") or []}
    for container in containers:
        name = container.get("Name")
        memory, reservation = _number(container.get("Memory")), _number(container.get("MemoryReservation"))
        if task_memory is not None and memory is not None and memory > task_memory:
            raise Refused(f"The 'memory' setting for container '{name}' is greater than for the task.",
                          "ClientException")
        if memory is not None and reservation is not None and reservation > memory:
            raise Refused(f"Invalid 'memoryReservation' setting for container '{name}': it must be less than 'memory'",
                          "ClientException")
        if task_memory is None and memory is None and reservation is None:
            raise Refused(f"Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' "
                          "must be specified.", "ClientException")
        for mount in container.get("MountPoints") or []:
            if mount.get("SourceVolume") not in volumes:
                raise Refused(f"Invalid 'mountPoints' setting for container '{name}': Unknown volume "
                              f"'{mount.get('SourceVolume')}'.", "ClientException")
    if containers and not any(str(c.get("Essential", True)).lower() == "true" for c in containers):
        raise Refused("Invalid setting: a task definition must have at least one essential container",
                      "ClientException")


def _secret_readable(value_from: str, resources_map: Any) -> bool:
    """Whether a task's secret can be read: a Secrets Manager secret by ARN, an SSM parameter by ARN or name
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Secret.html)."""
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.ssm.models import ssm_backends

    if value_from.startswith("arn:") and ":secretsmanager:" in value_from:
        # A JSON key or version after the ARN reads the same secret.
        secret_id = re.sub(r"(:secret:[^:]+)(:.*)$", r"\1", value_from)
        try:
            _backend(secretsmanager_backends, resources_map).describe_secret(secret_id)
        except Exception:
            return False
        return True
    by_arn = value_from.startswith("arn:") and ":ssm:" in value_from
    name = value_from.split(":parameter", 1)[1] if by_arn else value_from
    try:
        return _backend(ssm_backends, resources_map).get_parameter(name) is not None
    except Exception:
        return False


@api_check("AWS::ECS::Service")
def _service(logical_id: str, props: dict, resources_map: Any) -> None:
    from moto.ecs.models import ecs_backends
    from moto.elbv2.models import elbv2_backends

    try:
        task = _backend(ecs_backends, resources_map).describe_task_definition(props.get("TaskDefinition"))
    except Exception:
        return  # moto's own create refuses a task definition that is not there
    mode = task.network_mode or "bridge"
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html: a service name is unique in
    # its cluster while ACTIVE or DRAINING; ECS answers "Creation of service was not idempotent."
    # (quoted in https://github.com/hashicorp/terraform-provider-aws/issues/14489)
    cluster = str(props.get("Cluster") or "default").rsplit("/", 1)[-1]
    name = props.get("ServiceName")
    creating = not being_updated(logical_id, resources_map)
    existing = _backend(ecs_backends, resources_map).services.get(f"{cluster}:{name}") if name and creating else None
    if existing is not None and existing.status in ("ACTIVE", "DRAINING"):
        raise Refused(f"Creation of service was not idempotent: service {name} already exists in cluster {cluster}",
                      "InvalidParameterException")
    # ip targets for awsvpc, instance targets for bridge and host; ECS refuses the other pairings at CreateService
    # (the message as quoted in https://github.com/hashicorp/terraform/issues/24266).
    elb = _backend(elbv2_backends, resources_map)
    for entry in props.get("LoadBalancers") or []:
        arn = entry.get("TargetGroupArn")
        group = elb.target_groups.get(arn) if isinstance(arn, str) else None
        if group is None:
            continue
        if (group.target_type == "ip") != (mode == "awsvpc"):
            raise Refused(f"The provided target group {arn} has target type {group.target_type}, which is "
                          f"incompatible with the {mode} network mode specified in the task definition.",
                          "InvalidParameterException")
    # A task whose secrets cannot be read never starts; with the deployment circuit breaker (on in these
    # templates) ECS fails the deployment and CloudFormation the service.
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html
    if (_number(props.get("DesiredCount", 1)) or 0) > 0:
        for container in task.container_definitions:
            for secret in container.get("secrets") or []:
                value_from = str(secret.get("valueFrom", ""))
                if not _secret_readable(value_from, resources_map):
                    raise Refused("Error occurred during operation 'ECS Deployment Circuit Breaker was triggered'. "
                                  "Tasks stopped: ResourceInitializationError: unable to pull secrets or registry "
                                  f"auth: unable to retrieve secret from {value_from} for container "
                                  f"{container.get('name')}", "GeneralServiceException")


# --- Lambda, EventBridge, IAM --------------------------------------------------------------------------

@api_check("AWS::Lambda::Function")
def _function_limits(logical_id: str, props: dict, resources_map: Any) -> None:
    """https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html: Timeout at most 900 s."""
    timeout = _number(props.get("Timeout"))
    if timeout is not None and timeout > 900:
        raise Refused(f"1 validation error detected: Value '{props['Timeout']}' at 'timeout' failed to satisfy "
                      "constraint: Member must have value less than or equal to 900", "ValidationException")


def _policy_problem(document: Any, trust: bool) -> str | None:
    from moto.iam.policy_validation import IAMPolicyDocumentValidator, IAMTrustPolicyDocumentValidator

    text = document if isinstance(document, str) else json.dumps(document)
    validator = (IAMTrustPolicyDocumentValidator if trust else IAMPolicyDocumentValidator)(text)
    try:
        validator.validate()
    except Exception as error:  # MalformedPolicyDocument in IAM's words
        return getattr(error, "message", None) or str(error)
    return None


@api_check("AWS::IAM::Role")
def _role_policies(logical_id: str, props: dict, resources_map: Any) -> None:
    """IAM's policy grammar (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html), as
    CreateRole and PutRolePolicy check it: moto's validator, which IAM's own messages were copied into."""
    documents = [("AssumeRolePolicyDocument", props.get("AssumeRolePolicyDocument"), True)]
    documents += [(f"Policies/{p.get('PolicyName')}", p.get("PolicyDocument"), False)
                  for p in props.get("Policies") or []]
    for where, document, trust in documents:
        if document is None:
            continue
        problem = _policy_problem(document, trust)
        if problem:
            raise Refused(f"MalformedPolicyDocument ({where}): {problem}", "MalformedPolicyDocument")


# --- EFS, ECR, Cloud Map -----------------------------------------------------------------------------------

@api_check("AWS::EFS::MountTarget")
def _mount_target_groups(logical_id: str, props: dict, resources_map: Any) -> None:
    """https://docs.aws.amazon.com/efs/latest/ug/API_CreateMountTarget.html: 'The security groups must be for the
    same VPC as the subnet specified.'"""
    subnet = _subnet(resources_map, props.get("SubnetId")) if isinstance(props.get("SubnetId"), str) else None
    if subnet is None:
        return
    for group in props.get("SecurityGroups") or []:
        if isinstance(group, str) and _group_vpc(resources_map, group) not in (None, subnet.vpc_id):
            raise Refused(f"Security group {group} is not in the same VPC as the subnet {subnet.id}: the security "
                          "groups must be for the same VPC as the subnet specified", "SecurityGroupNotFound")


@api_check("AWS::ECR::Repository")
def _lifecycle_policy(logical_id: str, props: dict, resources_map: Any) -> None:
    """https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html: a JSON document
    with rules, each with a unique rulePriority."""
    text = (props.get("LifecyclePolicy") or {}).get("LifecyclePolicyText")
    if not isinstance(text, str):
        return
    try:
        rules = json.loads(text)["rules"]
        priorities = [int(rule["rulePriority"]) for rule in rules]
    except (ValueError, KeyError, TypeError):
        raise Refused("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy "
                      "validation failure'", "InvalidParameterException") from None
    if len(set(priorities)) != len(priorities):
        raise Refused("Invalid parameter at 'LifecyclePolicyText': rulePriority must be unique",
                      "InvalidParameterException")


@api_check("AWS::ServiceDiscovery::Service")
def _namespace_exists(logical_id: str, props: dict, resources_map: Any) -> None:
    """https://docs.aws.amazon.com/cloud-map/latest/api/API_CreateService.html: NamespaceNotFound."""
    from moto.servicediscovery.models import servicediscovery_backends

    namespace = props.get("NamespaceId")
    if not isinstance(namespace, str):
        return
    try:
        _backend(servicediscovery_backends, resources_map).get_namespace(namespace)
    except Exception:
        raise Refused(f"NamespaceNotFound: Namespace {namespace} not found", "NamespaceNotFound") from None
