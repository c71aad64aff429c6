"""ECS through CloudFormation: clusters, task definitions and services as the templates set them, and their deletes.

moto 5.2.5 drops most of the properties of AWS::ECS::Cluster, ::TaskDefinition and ::Service (capacity providers,
strategies, network configuration, deployment settings), refuses none of what ECS refuses (empty container list,
awsvpc host ports, a strategy beside a launch type, a target group with no load balancer), cannot delete them
with their stack, and lists INACTIVE clusters and deleted services.
"""
from __future__ import annotations

from typing import Any

from moto.ecs import models as ecs
from moto.elbv2 import models as elbv2

from ..resources import InvalidParameter, ResourceInUse, camel, ecs_tags
from . import add, replace, replace_classmethod


def _ecs(account_id: str, region_name: str) -> ecs.EC2ContainerServiceBackend:
    return ecs.ecs_backends[account_id][region_name]


# Settings, configuration, capacity providers and default strategy as the template sets them
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecs-cluster.html
@replace_classmethod(ecs.Cluster, "create_from_cloudformation_json")
def _cluster_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    backend = _ecs(account_id, region_name)
    existing = backend.clusters.get(resource_name)
    if existing is not None and existing.status == "ACTIVE":
        raise InvalidParameter(f"Cluster {resource_name} already exists")
    return backend.create_cluster(
        cluster_name=resource_name,
        tags=ecs_tags(props.get("Tags")),
        cluster_settings=camel(props.get("ClusterSettings")),
        configuration=camel(props.get("Configuration")),
        capacity_providers=props.get("CapacityProviders"),
        default_capacity_provider_strategy=camel(props.get("DefaultCapacityProviderStrategy")),
        service_connect_defaults=camel(props.get("ServiceConnectDefaults")),
    )


# ClusterContainsServicesException while a service is active
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html
@add(ecs.Cluster, "delete")
def _cluster_delete(self, account_id, region_name):
    backend = _ecs(account_id, region_name)
    active = [s.name for s in backend.services.values() if s.cluster_name == self.name and s.status == "ACTIVE"]
    if active:
        raise ResourceInUse(f"The Cluster cannot be deleted while Services are active: {', '.join(active)} "
                            "(ClusterContainsServicesException)")
    if self.name in backend.clusters:
        backend.delete_cluster(self.name)


# An empty container list is refused; in awsvpc hostPort equals containerPort
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PortMapping.html
@replace_classmethod(ecs.TaskDefinition, "create_from_cloudformation_json")
def _task_definition_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    containers = camel(props.get("ContainerDefinitions", []))
    if not containers:
        raise InvalidParameter("Container list cannot be empty")
    network_mode = props.get("NetworkMode", "bridge")
    for container in containers:
        for mapping in container.get("portMappings", []):
            port = mapping["containerPort"]
            if network_mode == "awsvpc" and mapping.get("hostPort", port) != port:
                raise InvalidParameter("In awsvpc mode hostPort must equal containerPort")
    return _ecs(account_id, region_name).register_task_definition(
        family=props.get("Family", resource_name),
        container_definitions=containers,
        volumes=camel(props.get("Volumes")),
        network_mode=network_mode,
        tags=ecs_tags(props.get("Tags")),
        placement_constraints=camel(props.get("PlacementConstraints")),
        requires_compatibilities=props.get("RequiresCompatibilities"),
        cpu=props.get("Cpu"),
        memory=props.get("Memory"),
        task_role_arn=props.get("TaskRoleArn"),
        execution_role_arn=props.get("ExecutionRoleArn"),
        runtime_platform=camel(props.get("RuntimePlatform")),
        ipc_mode=props.get("IpcMode"),
        pid_mode=props.get("PidMode"),
        ephemeral_storage=camel(props.get("EphemeralStorage")),
    )


# A stack's delete deregisters its revision
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecs-taskdefinition.html
@add(ecs.TaskDefinition, "delete")
def _task_definition_delete(self, account_id, region_name):
    if self.status == "ACTIVE":
        _ecs(account_id, region_name).deregister_task_definition(self.arn)


# CreateService's checks and the strategy, network and deployment settings the template gives
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html
@replace_classmethod(ecs.Service, "create_from_cloudformation_json")
def _service_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    backend = _ecs(account_id, region_name)
    cluster = props.get("Cluster", "default")
    task_definition = backend.describe_task_definition(props["TaskDefinition"])
    strategy = camel(props.get("CapacityProviderStrategy"))
    launch_type = props.get("LaunchType")
    if strategy and launch_type:
        raise InvalidParameter("Specifying both a launch type and capacity provider strategy is not supported")
    for item in strategy or []:
        if item["capacityProvider"] not in (backend._get_cluster(cluster).capacity_providers or []):
            raise InvalidParameter(f"The specified capacity provider {item['capacityProvider']} "
                                   f"is not associated with cluster {cluster}")
    network = camel(props.get("NetworkConfiguration"))
    if task_definition.network_mode == "awsvpc" and not network:
        raise InvalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    load_balancers = camel(props.get("LoadBalancers", []))
    _check_load_balancers(account_id, region_name, load_balancers, task_definition)
    service = backend.create_service(
        cluster,
        props.get("ServiceName", resource_name),
        props.get("DesiredCount", 1),
        task_definition_str=task_definition.arn,
        load_balancers=load_balancers,
        scheduling_strategy=props.get("SchedulingStrategy"),
        tags=ecs_tags(props.get("Tags")),
        deployment_controller=camel(props.get("DeploymentController")),
        launch_type=launch_type or "EC2",
        service_registries=camel(props.get("ServiceRegistries")),
        platform_version=props.get("PlatformVersion"),
        propagate_tags=props.get("PropagateTags", "NONE"),
        network_configuration=network,
        role_arn=props.get("Role"),
    )
    if strategy:
        service.launch_type = None
        service.capacity_provider_strategy = strategy
        for deployment in service.deployments:
            deployment["launchType"] = None
            deployment["capacityProviderStrategy"] = strategy
    service.deployment_configuration = camel(props.get("DeploymentConfiguration"))
    service.placement_strategy = camel(props.get("PlacementStrategies"))
    service.placement_constraints = camel(props.get("PlacementConstraints"))
    service.enable_ecs_managed_tags = props.get("EnableECSManagedTags", False)
    service.health_check_grace_period_seconds = props.get("HealthCheckGracePeriodSeconds")
    return service


def _check_load_balancers(account_id: str, region_name: str, load_balancers: list, task_definition: Any) -> None:
    elb = elbv2.elbv2_backends[account_id][region_name]
    for entry in load_balancers:
        (group,) = elb.describe_target_groups(target_group_arns=[entry["targetGroupArn"]],
                                              load_balancer_arn=None, names=None)
        if not group.load_balancer_arns:
            raise InvalidParameter(f"The target group with targetGroupArn {group.arn} "
                                   "does not have an associated load balancer.")
        container = next((c for c in task_definition.container_definitions if c["name"] == entry["containerName"]),
                         None)
        ports = [m["containerPort"] for m in (container or {}).get("portMappings", [])]
        if int(entry["containerPort"]) not in ports:
            raise InvalidParameter(f"The container {entry['containerName']} did not have a container port "
                                   f"{entry['containerPort']} defined.")


# A stack's delete deletes its services
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html
@add(ecs.Service, "delete")
def _service_delete(self, account_id, region_name):
    if self.status == "ACTIVE":
        _ecs(account_id, region_name).delete_service(self.cluster_name, self.name, force=True)


# "the service is no longer visible in the console or in the ListServices API operation"
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html
@replace(ecs.EC2ContainerServiceBackend, "delete_service")
def _delete_service(original, self, cluster_name, service_name, force):
    service = original(self, cluster_name, service_name, force)
    # DeleteService drains and removes; ListServices does not return it afterwards.
    self.services.pop(f"{service.cluster_name}:{service.name}", None)
    return service


# A deleted cluster turns INACTIVE (API_DeleteCluster); ListClusters lists the existing ones
# https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListClusters.html
@replace(ecs.EC2ContainerServiceBackend, "list_clusters")
def _list_clusters(original, self):
    return [c.arn for c in self.clusters.values() if c.status == "ACTIVE"]


# Without names, every capacity provider is described (the AWS CLI's example 1)
# https://docs.aws.amazon.com/cli/latest/reference/ecs/describe-capacity-providers.html
@replace(ecs.EC2ContainerServiceBackend, "describe_capacity_providers")
def _describe_capacity_providers(original, self, names):
    return original(self, names or [p.name for p in self.capacity_providers.values()])
