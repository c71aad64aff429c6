"""ECS's service scheduler as the emulator runs it: hosts register, services place tasks, or say why not.

Stock moto registered no host by itself, started no task for a service (its counts were whatever
MOTO_ECS_SERVICE_RUNNING said) and let a task's status run on to STOPPED as it was described. Here:

- an instance an Auto Scaling group launches from a launch template whose user data sets
  `ECS_CLUSTER=` registers as a container instance of that cluster (when it exists), with the CPU
  (1024 per vCPU), memory and network interfaces of its type from the project's own table
  (templates_src/app/instance_types.py; memory as templates_src/app/capacity.py estimates what the agent
  registers, less `ECS_RESERVED_MEMORY`). A terminated instance deregisters and its tasks stop;
- a service's tasks are placed as ECS places them: task-level CPU and memory (else the containers'),
  static host ports, and one network interface per awsvpc task on a host that keeps its primary one
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-eni.html), in a
  subnet of the service in the host's Availability Zone, ordered by the service's placement
  strategies (spread, binpack). A deployment (a new task definition) starts new tasks within
  `maximumPercent` and stops old ones while `minimumHealthyPercent` still holds
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html). A placed task
  counts as healthy there: no health check runs here, so that is the rule, not an observation;
- a task that fits nowhere stays PROVISIONING (with a capacity provider; without one ECS makes no
  task) and the service's events say why, in ECS's words: "...The closest matching container-instance
  <id> encountered error "RESOURCE:ENI"..." (quoted in https://github.com/aws/aws-app-mesh-examples/issues/342),
  "...has insufficient CPU units available", "...has insufficient memory available", "Reason: No
  Container Instances were found in your capacity provider"
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages-list.html);
- capacity provider managed scaling: while tasks of a provider with managed scaling ENABLED wait in
  PROVISIONING, ECS raises its group's desired capacity to the hosts they need (CapacityProviderReservation
  = needed / running x 100 held at targetCapacity, within the step sizes, never above MaxSize;
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-auto-scaling.html,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/managed-scaling-behavior.html), at once
  (no alarm period runs here). Scaling follows a service's own changes (create, update, a stopped
  task), not a host's loss: a group scaled to zero by hand (make cleanup does) stays at zero;
- a placed task gets a network interface with a private IP of its subnet (awsvpc), is registered as
  an instance of the service's Cloud Map service with ECS's attributes
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-discovery.html) and as a target
  of its target groups (its IP, or its host and a dynamic port from 32768 for bridge), and loses both
  when it stops.

What this does not do: run a container. A RUNNING task here is one ECS would have placed; its health
is UNKNOWN and its targets stay `initial` (their health checks never run), so whether anything answers
stays not observable. ENI trunking, placement constraints and daemon services are not modelled.
"""
from __future__ import annotations

import base64
import contextvars
import datetime
import math
import re
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from moto.autoscaling import models as autoscaling
from moto.ec2.models import ec2_backends, instances
from moto.ecs import models as ecs
from moto.ecs.exceptions import EcsClientException, RevisionNotFoundException, TaskDefinitionNotFoundException
from moto.elbv2 import models as elbv2
from moto.servicediscovery.models import servicediscovery_backends

from templates_src.app import capacity, instance_types

from . import hosts
from .fixes import replace, replace_classmethod

DYNAMIC_PORTS = range(32768, 61000)  # ECS's ephemeral host port range on Amazon Linux
TROUBLESHOOTING = "For more information, see the Troubleshooting section."
_IN_PASS: contextvars.ContextVar[bool] = contextvars.ContextVar("scheduling", default=False)


@dataclass
class Host:
    """What the scheduler knows of a registered host beyond what the ECS API shows."""

    instance_type: str
    eni_slots: int
    group: str | None
    awsvpc_tasks: set[str] = field(default_factory=set)  # task ids holding one of its interfaces


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _ecs(account_id: str, region_name: str) -> ecs.EC2ContainerServiceBackend:
    return ecs.ecs_backends[account_id][region_name]


# --- hosts -----------------------------------------------------------------------------------------

def _user_data(data: Any) -> str:
    if isinstance(data, list):
        data = data[0] if data else None
    if not data:
        return ""
    data = getattr(data, "_encoded_string", data)  # moto's Base64EncodedString
    try:
        return base64.b64decode(data).decode("utf-8", "replace")
    except (ValueError, TypeError):
        return str(data)


def ecs_config(user_data: Any) -> dict[str, str]:
    """The KEY=value lines of the user data (what the agent reads from /etc/ecs/ecs.config)."""
    return dict(re.findall(r"^(ECS_[A-Z_]+)=(\S*)\s*$", _user_data(user_data), re.MULTILINE))


def offer(instance_type: str, config: dict[str, str]) -> capacity.Host | None:
    itype = instance_types.TYPES.get(instance_type)
    if itype is None:
        return None
    return capacity.host(itype, int(config.get("ECS_RESERVED_MEMORY", "0") or 0))


def register(instance: instances.Instance,
             group: autoscaling.FakeAutoScalingGroup | None) -> ecs.ContainerInstance | None:
    """Register an instance as the agent would, from its user data; None when it names no cluster or the type is
    not in the project's table (its resources would be a guess)."""
    config = ecs_config(instance.user_data)
    backend = _ecs(instance.owner_id, instance.region_name)
    cluster = backend.clusters.get(config.get("ECS_CLUSTER", ""))
    resources = offer(instance.instance_type, config)
    if cluster is None or cluster.status != "ACTIVE" or resources is None:
        return None
    if any(ci.ec2_instance_id == instance.id for ci in backend.container_instances.get(cluster.name, {}).values()):
        return None
    registered = backend.register_container_instance(cluster.name, instance.id)
    for table in (registered.registered_resources, registered.remaining_resources):
        for item in table:
            if item["name"] == "CPU":
                item["integerValue"] = resources.cpu
            elif item["name"] == "MEMORY":
                item["integerValue"] = resources.memory
    registered.emulated = Host(instance.instance_type, resources.slots, group.name if group else None)
    registered.capacity_provider_name = _provider_of(backend, group)
    return registered


def _provider_of(backend: ecs.EC2ContainerServiceBackend, group: autoscaling.FakeAutoScalingGroup | None) -> str | None:
    if group is None:
        return None
    return next((p.name for p in backend.capacity_providers.values()
                 if p.auto_scaling_group_provider.get("autoScalingGroupArn") in (group.name, group.arn)), None)


@replace(autoscaling.FakeAutoScalingGroup, "replace_autoscaling_group_instances")
def _launched(original, self, count_needed, propagated_tags):
    before = {s.instance.id for s in self.instance_states}
    original(self, count_needed, propagated_tags)
    clusters = set()
    for state in self.instance_states:
        if state.instance.id not in before:
            registered = register(state.instance, self)
            if registered is not None:
                clusters.add(registered.cluster_name)
    for name in sorted(clusters):
        schedule(_ecs(self.account_id, self.region), name)


@replace(instances.Instance, "terminate")
def _terminated(original, self):
    result = original(self)
    backend = _ecs(self.owner_id, self.region_name)
    for name, members in list(backend.container_instances.items()):
        for key, ci in list(members.items()):
            if ci.ec2_instance_id == self.id and hasattr(ci, "emulated"):
                for task in _tasks(backend, name):
                    if task.container_instance_arn == ci.container_instance_arn and task.last_status != "STOPPED":
                        stop(backend, task, f"Host EC2 (instance {self.id}) terminated.")
                del members[key]
                cluster = backend.clusters.get(name)
                if cluster is not None:
                    cluster.registered_container_instances_count -= 1
                    schedule(backend, name, scale=False)
    return result


# --- tasks -----------------------------------------------------------------------------------------

class ScheduledTask(ecs.Task):
    """A service's task whose status is what the scheduler decided, not moto's describe-driven progression."""

    @property
    def status(self) -> str | None:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value

    def advance(self) -> None:
        pass


def _tasks(backend: ecs.EC2ContainerServiceBackend, cluster: str) -> list[ScheduledTask]:
    return [t for t in backend.tasks.get(cluster, {}).values() if isinstance(t, ScheduledTask)]


def _service_tasks(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service) -> list[ScheduledTask]:
    return [t for t in _tasks(backend, service.cluster_name)
            if t.group == f"service:{service.name}" and t.last_status != "STOPPED"]


def requirements(task_definition: ecs.TaskDefinition) -> dict[str, Any]:
    """What a task reserves on its host: the task-level CPU and memory when set, else its containers'."""
    containers = task_definition.container_definitions
    cpu = int(task_definition.cpu) if task_definition.cpu else sum(int(c.get("cpu", 0) or 0) for c in containers)
    memory = int(task_definition.memory) if task_definition.memory else sum(
        int(c.get("memory") or c.get("memoryReservation") or 0) for c in containers)
    ports = [] if task_definition.network_mode == "awsvpc" else [
        int(m["hostPort"]) for c in containers for m in c.get("portMappings", []) if m.get("hostPort")]
    return {"CPU": cpu, "MEMORY": memory, "PORTS": ports, "PORTS_UDP": []}


def _remaining(ci: ecs.ContainerInstance, name: str) -> Any:
    item = next(r for r in ci.remaining_resources if r["name"] == name)
    return item.get("stringSetValue") if name == "PORTS" else item["integerValue"]


def _shortfalls(ci: ecs.ContainerInstance, need: dict, awsvpc: bool) -> list[str]:
    """What the host lacks for the task, in the order ECS names it."""
    missing = []
    if need["CPU"] > _remaining(ci, "CPU"):
        missing.append("CPU")
    if need["MEMORY"] > _remaining(ci, "MEMORY"):
        missing.append("MEMORY")
    if any(str(p) in _remaining(ci, "PORTS") for p in need["PORTS"]):
        missing.append("PORTS")
    if awsvpc and len(ci.emulated.awsvpc_tasks) >= ci.emulated.eni_slots:
        missing.append("ENI")
    return missing


def _unplaced_reason(service: ecs.Service, closest: ecs.ContainerInstance | None, lack: str, provider: bool) -> str:
    head = (f"service {service.name} was unable to place a task because no container instance met all of its "
            "requirements.")
    if closest is None:
        where = "capacity provider" if provider else "cluster"
        return f"{head} Reason: No Container Instances were found in your {where}. {TROUBLESHOOTING}"
    ident = closest.container_instance_arn.rsplit("/", 1)[-1]
    detail = {
        "CPU": "has insufficient CPU units available.",
        "MEMORY": "has insufficient memory available.",
        "PORTS": "is already using a port required by your task.",
        "ENI": 'encountered error "RESOURCE:ENI".',
    }[lack]
    return f"{head} The closest matching container-instance {ident} {detail} {TROUBLESHOOTING}"


def _order(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service, fits: list[ecs.ContainerInstance]):
    """The service's placement strategies, in order, as a sort key (ECS: spread first, then binpack)."""
    placed = [t for t in _service_tasks(backend, service) if t.container_instance_arn]
    zone_of = {ci.container_instance_arn: ci.attributes.get("ecs.availability-zone")
               for members in backend.container_instances.values() for ci in members.values()}
    strategies = getattr(service, "placement_strategy", None) or [
        {"type": "spread", "field": "attribute:ecs.availability-zone"}]

    def key(ci: ecs.ContainerInstance) -> tuple:
        parts = []
        for strategy in strategies:
            kind, on = strategy.get("type"), (strategy.get("field") or "").lower()
            if kind == "spread" and on == "attribute:ecs.availability-zone":
                zone = ci.attributes.get("ecs.availability-zone")
                parts.append(sum(1 for t in placed if zone_of.get(t.container_instance_arn) == zone))
            elif kind == "spread":
                parts.append(sum(1 for t in placed if t.container_instance_arn == ci.container_instance_arn))
            elif kind == "binpack":
                parts.append(_remaining(ci, "MEMORY" if on == "memory" else "CPU"))
        return (*parts, ci.registered_at)

    return sorted(fits, key=key)


def _subnet_for(service: ecs.Service, ci: ecs.ContainerInstance) -> Any:
    ec2 = ec2_backends[service._account_id][service.region_name]
    subnets = [ec2.get_subnet(s) for s in service.network_configuration["awsvpcConfiguration"]["subnets"]]
    zone = ci.attributes.get("ecs.availability-zone")
    return next((s for s in subnets if s.availability_zone == zone), subnets[0])


def _uses_provider(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service) -> str | None:
    strategy = getattr(service, "capacity_provider_strategy", None)
    if not strategy and not service.launch_type:
        strategy = backend.clusters[service.cluster_name].default_capacity_provider_strategy
    return strategy[0]["capacityProvider"] if strategy else None


def _new_task(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service, definition: ecs.TaskDefinition,
              deployment: dict) -> ScheduledTask:
    cluster = backend.clusters[service.cluster_name]
    # Built as a bridge task so moto makes no interface of its own (with a random address outside the
    # subnet); the scheduler attaches the task's own interface when it places the task.
    shape = SimpleNamespace(arn=definition.arn, network_mode="bridge",
                            container_definitions=definition.container_definitions)
    task = ScheduledTask(cluster, shape, None, requirements(definition), backend=backend,
                         group=f"service:{service.name}", started_by=deployment["id"],
                         launch_type=service.launch_type or "", capacity_provider_name=_uses_provider(backend, service))
    task.status = "PROVISIONING"
    task.health_status = "UNKNOWN"
    task.created_at = _now()
    task.awsvpc = definition.network_mode == "awsvpc"
    task.emulated_targets, task.emulated_instances = [], []
    for container in task.containers:
        container.health_status = "UNKNOWN"  # no health check runs here
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    return task


def _place(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service, task: ScheduledTask) -> str | None:
    """Put the task on a host; None when placed, else the service event saying why not."""
    hosts_ = [ci for ci in backend.container_instances.get(service.cluster_name, {}).values()
              if ci.status == "ACTIVE" and hasattr(ci, "emulated")]
    need = dict(task.resource_requirements, PORTS=list(task.resource_requirements["PORTS"]))
    lacking = {ci.container_instance_arn: _shortfalls(ci, need, task.awsvpc) for ci in hosts_}
    fits = [ci for ci in hosts_ if not lacking[ci.container_instance_arn]]
    provider = task.capacity_provider_name is not None
    if not fits:
        closest = min(hosts_, key=lambda ci: (len(lacking[ci.container_instance_arn]), ci.registered_at), default=None)
        lack = lacking[closest.container_instance_arn][0] if closest else ""
        return _unplaced_reason(service, closest, lack, provider)
    ci = _order(backend, service, fits)[0]
    definition = backend.describe_task_definition(task.task_definition_arn)
    if not task.awsvpc and _dynamic(definition):
        taken = set(_remaining(ci, "PORTS"))
        need["PORTS"].append(next(p for p in DYNAMIC_PORTS if str(p) not in taken))
    task.resource_requirements = need
    backend.update_container_instance_resources(ci, need)
    task.container_instance_arn = ci.container_instance_arn
    task.availability_zone = ci.attributes.get("ecs.availability-zone")
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    host = ec2.get_instance(ci.ec2_instance_id)
    if task.awsvpc:
        subnet = _subnet_for(service, ci)
        address = subnet.get_available_subnet_ip(task)
        awsvpc = service.network_configuration["awsvpcConfiguration"]
        eni = ec2.create_network_interface(subnet=subnet, private_ip_address=address,
                                           group_ids=awsvpc.get("securityGroups") or [],
                                           description=f"arn:aws:ecs:{backend.region_name}:{backend.account_id}:"
                                                       f"attachment/{uuid.uuid4()}")
        eni.status = "in-use"
        ci.emulated.awsvpc_tasks.add(task.id)
        task.emulated_eni, task.private_ip = eni.id, address
        task.attachments = [{"id": str(uuid.uuid4()), "type": "ElasticNetworkInterface", "status": "ATTACHED",
                             "details": [{"name": "subnetId", "value": subnet.id},
                                         {"name": "networkInterfaceId", "value": eni.id},
                                         {"name": "macAddress", "value": eni.mac_address},
                                         {"name": "privateIPv4Address", "value": address}]}]
    else:
        task.private_ip = host.private_ip
    task.status = "RUNNING"
    task.started_at = _now()
    for container in task.containers:
        container.last_status = "RUNNING"
    _announce(backend, service, task, definition, host)
    return None


def _dynamic(definition: ecs.TaskDefinition) -> bool:
    return any(not m.get("hostPort") for c in definition.container_definitions for m in c.get("portMappings", []))


def _announce(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service, task: ScheduledTask,
              definition: ecs.TaskDefinition, host: Any) -> None:
    """Targets and Cloud Map instances, as ECS registers them for a placed task."""
    elb = elbv2.elbv2_backends[backend.account_id][backend.region_name]
    dynamic = [p for p in task.resource_requirements["PORTS"] if p in DYNAMIC_PORTS]
    for entry in service.load_balancers:
        group = elb.target_groups.get(entry.get("targetGroupArn"))
        if group is None:
            continue
        if task.awsvpc:
            target = {"Id": task.private_ip, "Port": int(entry["containerPort"])}
        else:
            target = {"Id": host.id, "Port": _host_port(definition, entry, dynamic)}
        elb.register_targets(group.arn, [target])
        group.__dict__.setdefault("emulated_task_targets", set()).add(target["Id"])
        task.emulated_targets.append((group.arn, target))
    discovery = servicediscovery_backends[backend.account_id][backend.region_name]
    for ref in service.service_registries:
        service_id = ref["registryArn"].rsplit("/", 1)[-1]
        attributes = {"AWS_INSTANCE_IPV4": task.private_ip, "AVAILABILITY_ZONE": task.availability_zone,
                      "REGION": backend.region_name, "ECS_CLUSTER_NAME": service.cluster_name,
                      "ECS_SERVICE_NAME": service.name, "ECS_TASK_DEFINITION_FAMILY": definition.family}
        if ref.get("containerPort") or ref.get("port"):
            attributes["AWS_INSTANCE_PORT"] = str(ref.get("port") or ref.get("containerPort"))
        discovery.register_instance(service_id, task.id, str(uuid.uuid4()), attributes)
        task.emulated_instances.append(service_id)


def _host(backend: ecs.EC2ContainerServiceBackend, task: ScheduledTask) -> Any:
    """The EC2 instance a placed task runs on."""
    ci = backend.container_instances[task.cluster_name][task.container_instance_arn.rsplit("/", 1)[-1]]
    return ec2_backends[backend.account_id][backend.region_name].get_instance(ci.ec2_instance_id)


def _host_port(definition: ecs.TaskDefinition, entry: dict, dynamic: list[int]) -> int:
    for container in definition.container_definitions:
        for mapping in container.get("portMappings", []):
            if container["name"] == entry["containerName"] and mapping["containerPort"] == int(entry["containerPort"]):
                return int(mapping.get("hostPort") or dynamic[0])
    return int(entry["containerPort"])


def _withdraw(backend: ecs.EC2ContainerServiceBackend, task: ScheduledTask) -> None:
    """The task's targets and Cloud Map instances, deregistered."""
    elb = elbv2.elbv2_backends[backend.account_id][backend.region_name]
    for arn, target in task.emulated_targets:
        group = elb.target_groups.get(arn)
        if group is not None and target["Id"] in group.targets:
            elb.deregister_targets(arn, [target])
            group.__dict__.get("emulated_task_targets", set()).discard(target["Id"])
    discovery = servicediscovery_backends[backend.account_id][backend.region_name]
    for service_id in task.emulated_instances:
        if service_id in discovery.services:
            discovery.deregister_instance(service_id, task.id)
    task.emulated_targets, task.emulated_instances = [], []


def stop(backend: ecs.EC2ContainerServiceBackend, task: ScheduledTask, reason: str) -> None:
    """Stop a task: its host's resources, interface, targets and Cloud Map instance are released."""
    _withdraw(backend, task)
    if task.container_instance_arn:
        ci = backend.container_instances.get(task.cluster_name, {}).get(task.container_instance_arn.rsplit("/", 1)[-1])
        if ci is not None:
            backend.update_container_instance_resources(ci, task.resource_requirements, removing=True)
            ci.emulated.awsvpc_tasks.discard(task.id)
    eni = getattr(task, "emulated_eni", None)
    if eni:
        ec2 = ec2_backends[backend.account_id][backend.region_name]
        found = ec2.enis.get(eni)
        if found is not None:
            found.subnet.del_subnet_ip(task.private_ip)
            ec2.delete_network_interface(eni)
        task.emulated_eni = None
    task.status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stopped_reason = reason
    task.stopped_at = _now()
    for container in task.containers:
        container.last_status = "STOPPED"


# --- services --------------------------------------------------------------------------------------

def _event(service: ecs.Service, message: str) -> None:
    # ECS leaves out a message repeated until its cause changes
    # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages.html).
    if service.events and service.events[0]["message"] == message:
        return
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": _now(), "message": message})
    del service.events[100:]


def _primary(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service) -> tuple[ecs.TaskDefinition, dict]:
    definition = backend.describe_task_definition(service.task_definition)
    if not service.deployments:
        service.deployments = [{"id": f"ecs-svc/{uuid.uuid4().int % 10**19}", "status": "PRIMARY",
                                "createdAt": _now(), "updatedAt": _now()}]
    deployment = service.deployments[0]
    if deployment.get("taskDefinition") != definition.arn:
        if deployment.get("taskDefinition"):  # a new task definition is a new deployment
            old = dict(deployment, status="ACTIVE")
            deployment = dict(deployment, id=f"ecs-svc/{uuid.uuid4().int % 10**19}", createdAt=_now())
            service.deployments[:] = [deployment, old]
        deployment["taskDefinition"] = definition.arn
        service.task_definition = definition.arn
    return definition, deployment


def converge(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service) -> list[ScheduledTask]:
    """Bring the service towards its desired count within its deployment settings; returns the tasks it
    could not place."""
    definition, deployment = _primary(backend, service)
    desired = service.desired_count or 0
    settings = getattr(service, "deployment_configuration", None) or {}
    most = desired * int(settings.get("maximumPercent", 200)) // 100
    least = math.ceil(desired * int(settings.get("minimumHealthyPercent", 100)) / 100)
    provider = _uses_provider(backend, service)
    started, reason = [], None
    while True:
        tasks = _service_tasks(backend, service)
        new = [t for t in tasks if t.task_definition_arn == definition.arn]
        old = [t for t in tasks if t.task_definition_arn != definition.arn]
        for task in [t for t in new if t.last_status == "PROVISIONING"]:
            why = _place(backend, service, task)
            reason = why or reason
            if why is None:
                started.append(task)
        running = [t for t in tasks if t.last_status == "RUNNING"]
        extra = [t for t in new if t.last_status == "PROVISIONING"] + [t for t in new if t.last_status == "RUNNING"]
        if len(new) > desired:  # scaled in: waiting tasks go first
            stop(backend, extra[0], f"Scaling activity initiated by (deployment {deployment['id']})")
            continue
        if len(new) < desired and len(tasks) < max(most, desired if not old else 0):
            task = _new_task(backend, service, definition, deployment)
            why = _place(backend, service, task)
            if why is None:
                started.append(task)
            else:
                reason = why
                if provider is None:  # without a capacity provider ECS makes no task, it only says why
                    del backend.tasks[service.cluster_name][task.task_arn]
                    break
            continue
        healthy = [t for t in running if t.task_definition_arn == definition.arn]
        if old and len(healthy) + len(old) - 1 >= least:
            stop(backend, old[0], f"Scaling activity initiated by (deployment {deployment['id']})")
            continue
        if old and not [t for t in new if t.last_status == "PROVISIONING"] and len(tasks) >= most \
                and len(healthy) + len(old) - 1 < least:
            reason = (f"service {service.name} was unable to stop or start tasks during a deployment because of the "
                      "service deployment configuration. Update the minimumHealthyPercent or maximumPercent value "
                      "and try again.")
        break
    if started:
        _event(service, f"service {service.name} has started {len(started)} tasks: "
                        + " ".join(f"(task {t.id})" for t in started) + ".")
    waiting = [t for t in _service_tasks(backend, service) if t.last_status == "PROVISIONING"]
    if reason and (waiting or len(_service_tasks(backend, service)) < desired or
                   any(t.task_definition_arn != definition.arn for t in _service_tasks(backend, service))):
        _event(service, reason)
    _count(backend, service, definition, deployment)
    return waiting


def _count(backend: ecs.EC2ContainerServiceBackend, service: ecs.Service, definition: ecs.TaskDefinition,
           deployment: dict) -> None:
    tasks = _service_tasks(backend, service)
    running = [t for t in tasks if t.last_status == "RUNNING"]
    service.running_count = len(running)
    service.pending_count = len(tasks) - len(running)
    old = [t for t in tasks if t.task_definition_arn != definition.arn]
    new = [t for t in tasks if t.task_definition_arn == definition.arn]
    deployment.update(desiredCount=service.desired_count, runningCount=sum(t in running for t in new),
                      pendingCount=sum(t not in running for t in new), updatedAt=_now())
    settled = not old and deployment["runningCount"] == service.desired_count
    deployment["rolloutState"] = "COMPLETED" if settled else "IN_PROGRESS"
    deployment["rolloutStateReason"] = f"ECS deployment {deployment['id']} {'completed' if settled else 'in progress'}."
    if old:
        for other in service.deployments[1:]:
            other.update(runningCount=sum(t.last_status == "RUNNING" for t in old), pendingCount=0)
    else:
        del service.deployments[1:]
    if settled and service.desired_count:
        _event(service, f"service {service.name} has reached a steady state.")


def schedule(backend: ecs.EC2ContainerServiceBackend, cluster_name: str, scale: bool = True) -> None:
    """One pass of the scheduler over a cluster's services; with `scale`, managed scaling may add hosts."""
    if _IN_PASS.get() or cluster_name not in backend.clusters:
        return  # the running pass places on whatever registered meanwhile
    token = _IN_PASS.set(True)
    try:
        for _ in range(20):  # each round adds hosts; MaxSize ends it long before
            waiting = []
            for service in [s for s in backend.services.values()
                            if s.cluster_name == cluster_name and s.status == "ACTIVE" and s.task_definition]:
                try:
                    waiting += [(service, t) for t in converge(backend, service)]
                except (TaskDefinitionNotFoundException, RevisionNotFoundException):
                    continue  # its task definition is gone: ECS could start nothing either
            if not (scale and waiting and _scale_out(backend, cluster_name, waiting)):
                break
    finally:
        _IN_PASS.reset(token)
    cluster = backend.clusters[cluster_name]
    tasks = [t for t in _tasks(backend, cluster_name) if t.last_status != "STOPPED"]
    cluster.running_tasks_count = sum(t.last_status == "RUNNING" for t in tasks)
    cluster.pending_tasks_count = len(tasks) - cluster.running_tasks_count


# --- managed scaling -------------------------------------------------------------------------------

def _scale_out(backend: ecs.EC2ContainerServiceBackend, cluster_name: str, waiting: list) -> bool:
    """Raise each managed-scaling group's desired capacity to the hosts its waiting tasks need; True if any grew."""
    grew = False
    for provider in [p for p in backend.capacity_providers.values()
                     if p.name in (backend.clusters[cluster_name].capacity_providers or [])]:
        scaling = provider.auto_scaling_group_provider.get("managedScaling") or {}
        group = hosts._group_of(backend.account_id, backend.region_name,
                                provider.auto_scaling_group_provider.get("autoScalingGroupArn", ""))
        tasks = [t for _, t in waiting if t.capacity_provider_name == provider.name]
        if scaling.get("status") != "ENABLED" or group is None or not tasks:
            continue
        if getattr(group, "emulated_deleting", False):
            continue
        fresh = _group_offer(group)
        if fresh is None:
            continue
        extra = _hosts_for(tasks, fresh)
        if not extra:
            continue
        running = len(group.active_instances())
        target = int(scaling.get("targetCapacity", 100))
        wanted = math.ceil((running + extra) * 100 / target)
        step = min(max(wanted - group.desired_capacity, int(scaling.get("minimumScalingStepSize", 1))),
                   int(scaling.get("maximumScalingStepSize", 10000)))
        new = min(group.max_size, group.desired_capacity + step)
        if new <= group.desired_capacity:
            continue
        policy = f"ECSManagedAutoScalingPolicy-{provider._id}"
        cause = (f"At {hosts.stamp(_now())} a monitor alarm TargetTracking-{group.name}-AlarmHigh in state ALARM "
                 f"triggered policy {policy} changing the desired capacity from {group.desired_capacity} to {new}.")
        token = hosts.LAUNCH_CAUSE.set(cause)
        try:
            group.set_desired_capacity(new)
        finally:
            hosts.LAUNCH_CAUSE.reset(token)
        grew = True
    return grew


def _group_offer(group: autoscaling.FakeAutoScalingGroup) -> capacity.Host | None:
    template = group.ec2_launch_template
    if template is None:
        return None
    data = template.get_version(group.launch_template_version).data
    return offer(data.get("InstanceType", ""), ecs_config(data.get("UserData")))


def _hosts_for(tasks: list[ScheduledTask], fresh: capacity.Host) -> int:
    """New hosts the waiting tasks need, first-fit on empty hosts of the group's type."""
    opened: list[list[int]] = []  # [cpu, memory, interfaces] left per new host
    for task in sorted(tasks, key=lambda t: -t.resource_requirements["MEMORY"]):
        need = (task.resource_requirements["CPU"], task.resource_requirements["MEMORY"], 1 if task.awsvpc else 0)
        if need[0] > fresh.cpu or need[1] > fresh.memory or need[2] > fresh.slots:
            continue  # fits on no host of this type: another host would not help it
        spot = next((h for h in opened if all(h[i] >= need[i] for i in range(3))), None)
        if spot is None:
            spot = [fresh.cpu, fresh.memory, fresh.slots]
            opened.append(spot)
        for i in range(3):
            spot[i] -= need[i]
    return len(opened)


_moto_delete_for_cloudformation = hosts.delete_for_cloudformation


def _deleting(group: autoscaling.FakeAutoScalingGroup) -> None:
    group.emulated_deleting = True  # CloudFormation is emptying it: managed scaling must not add hosts back
    _moto_delete_for_cloudformation(group)


hosts.delete_for_cloudformation = _deleting


# --- the ECS API and CloudFormation ----------------------------------------------------------------

@replace(ecs.EC2ContainerServiceBackend, "create_service")
def _create_service(original, self, cluster_str, service_name, *args, **kwargs):
    service = original(self, cluster_str, service_name, *args, **kwargs)
    service.events = []
    if not _IN_TEMPLATE.get():
        schedule(self, service.cluster_name)
    return service


_IN_TEMPLATE: contextvars.ContextVar[bool] = contextvars.ContextVar("in_template", default=False)


@replace_classmethod(ecs.Service, "create_from_cloudformation_json")
def _service_from_template(original, cls, *args, **kwargs):
    # The service's strategy and deployment settings are set after CreateService returns: schedule after.
    token = _IN_TEMPLATE.set(True)
    try:
        service = original(*args, **kwargs)
    finally:
        _IN_TEMPLATE.reset(token)
    schedule(_ecs(service._account_id, service.region_name), service.cluster_name)
    return service


@replace(ecs.EC2ContainerServiceBackend, "update_service")
def _update_service(original, self, service_properties):
    wanted = service_properties.get("task_definition")
    if wanted and self.describe_task_definition(wanted).status == "INACTIVE":
        # moto took any revision; ECS refuses a deregistered one ("you can't update an existing service to
        # reference an INACTIVE task definition",
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html), in these words
        # (https://github.com/aws/aws-cdk/issues/33195).
        raise EcsClientException("TaskDefinition is inactive")
    before = self._get_service(service_properties.get("cluster", "default"), service_properties["service"].split("/")[-1])
    wiring = (list(before.load_balancers), list(before.service_registries))
    service = original(self, service_properties)
    if (service.load_balancers, service.service_registries) != wiring:
        # New target groups or registries: ECS deploys again and the tasks it starts register there, the
        # old ones leaving theirs as they stop. Here the running tasks move at once, to the same end.
        for task in _service_tasks(self, service):
            if task.last_status == "RUNNING":
                _withdraw(self, task)
                _announce(self, service, task, self.describe_task_definition(task.task_definition_arn),
                          _host(self, task))
    schedule(self, service.cluster_name)
    return service


@replace(ecs.EC2ContainerServiceBackend, "delete_service")
def _delete_service(original, self, cluster_name, service_name, force):
    service = self._get_service(cluster_name, service_name)
    for task in _service_tasks(self, service):
        stop(self, task, "Service deleted")
    return original(self, cluster_name, service_name, force)


@replace(ecs.EC2ContainerServiceBackend, "stop_task")
def _stop_task(original, self, cluster_str, task_str, reason):
    cluster = self._get_cluster(cluster_str)
    task = next((t for t in _tasks(self, cluster.name) if t.task_arn == task_str or t.id == task_str.rsplit("/")[-1]),
                None)
    if task is None:
        return original(self, cluster_str, task_str, reason)
    stop(self, task, reason or "Task stopped by user")
    schedule(self, cluster.name)  # the service replaces it
    return task


@replace(ecs.EC2ContainerServiceBackend, "list_tasks")
def _list_tasks(original, self, cluster_str=None, container_instance=None, family=None, started_by=None,
                service_name=None, desiredStatus=None):
    # moto ignores serviceName and trips on a task without a host when filtering by container instance.
    found = original(self, cluster_str, None, family, started_by, None, desiredStatus)
    if container_instance:
        found = [t for t in found if container_instance in (t.container_instance_arn or "")]
    if service_name:  # a service's tasks are its group's
        found = [t for t in found if getattr(t, "group", None) == f"service:{service_name.rsplit('/', 1)[-1]}"]
    # ECS lists RUNNING tasks unless asked for STOPPED ones.
    return [t for t in found if desiredStatus or getattr(t, "desired_status", "RUNNING") != "STOPPED"
            or not isinstance(t, ScheduledTask)]


@replace(ecs.EC2ContainerServiceBackend, "deregister_container_instance")
def _deregister(original, self, cluster_str, container_instance_str, force):
    found = original(self, cluster_str, container_instance_str, force)
    for task in _tasks(self, found.cluster_name):
        if task.container_instance_arn == found.container_instance_arn and task.last_status != "STOPPED":
            stop(self, task, "Container instance deregistered")
    schedule(self, found.cluster_name, scale=False)  # the services replace them where they fit
    return found


@replace(elbv2.FakeTargetGroup, "health_for")
def _health(original, self, target, ec2_backend):
    if target["Id"] in self.__dict__.get("emulated_task_targets", ()) and target["Id"] in self.targets:
        # A task's target: its health checks never run here, so it stays where AWS starts it.
        # https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
        port = self.targets[target["Id"]]["Port"]
        return elbv2.FakeHealthStatus(target["Id"], port, self.health_check_port, "initial",
                                      "Elb.InitialHealthChecking", "Initial health checks in progress")
    return original(self, target, ec2_backend)
