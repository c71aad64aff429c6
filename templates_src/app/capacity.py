"""Will the tasks fit on the cluster? ENIs, CPU and memory of every task, at the deployment peak.

awsvpc gives every task its own network interface, so a host runs at most (its ENIs - 1) awsvpc
tasks: a t3.medium runs two, whatever its spare CPU. A bridge task shares the host's interface and
takes none, only CPU and memory. Tasks that do not fit wait in PROVISIONING with no clear reason,
so the build refuses such a config and says what would fit.

The peak counts every service's desired tasks (a scaled service's `scaling.max`: it may run that many
whenever load asks) plus, where the deployment settings force ECS to start a new task before stopping an
old one (min healthy 100%), one extra task per service. Tasks are placed first-fit-decreasing on
`max_size` hosts of the configured type.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from templates_src.app import instance_types, quotas
from templates_src.app.config import MAX_INSTANCES, App, Service
from templates_src.app.instance_types import InstanceType

# The agent registers less memory than the instance has (kernel and platform overhead; the ECS
# guide's m4.large example registers 7985 of 8192 MiB); 6% covers the small types too.
PLATFORM_OVERHEAD = 0.06


@dataclass(frozen=True)
class Task:
    service: str
    cpu: int
    memory: int
    surge: bool  # only runs during a rolling deployment
    eni: bool = True  # awsvpc: takes one of the host's network interfaces


@dataclass(frozen=True)
class Host:
    """Resources one instance offers to tasks."""

    slots: int
    cpu: int
    memory: int


def host(itype: InstanceType, reserved_memory_mib: int) -> Host:
    memory = int(itype.memory_mib * (1 - PLATFORM_OVERHEAD)) - reserved_memory_mib
    return Host(itype.task_slots, itype.vcpus * 1024, memory)


def count(svc: Service, at_max: bool = True) -> int:
    """The tasks `svc` runs: scaling.max for a scaled service at its most, else desired_count."""
    return svc.scaling.max if at_max and svc.scaling else svc.desired_count


def surge(svc: Service, at_max: bool = True) -> int:
    """Extra tasks a rolling deployment of `svc` needs on top of its count."""
    desired = count(svc, at_max)
    lowest = math.ceil(desired * svc.deployment.min_healthy_percent / 100)
    highest = desired * svc.deployment.max_percent // 100
    # ECS may stop old tasks first when min healthy allows it; otherwise it must start one more.
    return 1 if desired and lowest >= desired and highest > desired else 0


def peak_tasks(app: App, at_max: bool = True) -> list[Task]:
    """Every task at the deployment peak, scaled services at scaling.max (or, not at_max, at desired_count)."""
    tasks = []
    for svc in app.services:
        eni = svc.network_mode == "awsvpc"
        tasks += [Task(svc.name, svc.cpu, svc.memory, False, eni)] * count(svc, at_max)
        tasks += [Task(svc.name, svc.cpu, svc.memory, True, eni)] * surge(svc, at_max)
    return tasks


def place(tasks: list[Task], offer: Host, limit: int = MAX_INSTANCES) -> list[list[Task]] | None:
    """First-fit-decreasing placement; the hosts used, or None if `limit` hosts are not enough."""
    hosts: list[list[Task]] = []
    free: list[list[int]] = []
    for task in sorted(tasks, key=lambda t: (t.memory, t.cpu, t.service), reverse=True):
        if task.cpu > offer.cpu or task.memory > offer.memory or (task.eni and offer.slots < 1):
            return None
        for used, room in zip(hosts, free):
            if room[0] >= task.eni and room[1] >= task.cpu and room[2] >= task.memory:
                break
        else:
            if len(hosts) == limit:
                return None
            used, room = [], [offer.slots, offer.cpu, offer.memory]
            hosts.append(used)
            free.append(room)
        used.append(task)
        room[0] -= task.eni
        room[1] -= task.cpu
        room[2] -= task.memory
    return hosts


def placement(app: App, itype: InstanceType, surge: bool = True, at_max: bool = True) -> list[list[Task]] | None:
    """The tasks on each host of `itype`, at the deployment peak (or without the surge; or with scaled services
    at desired_count rather than scaling.max), as the fit check places them."""
    tasks = [t for t in peak_tasks(app, at_max) if surge or not t.surge]
    return place(tasks, host(itype, app.cluster.reserved_memory_mib))


def instances_needed(app: App, itype: InstanceType) -> int | None:
    placed = placement(app, itype)
    return None if placed is None else max(1, len(placed))


def allowed_instance_types(app: App) -> list[str]:
    """Types of the hosts' architecture on which the peak fits within the config's instance count.

    The template offers only these for its InstanceType parameter, with MaxSize at least the count
    the configured type needs, so every combination a deployer can pick fits.
    """
    configured = instance_types.TYPES[app.cluster.instance_type]
    needed = instances_needed(app, configured)
    return [t.name for t in instance_types.same_architecture(configured.architecture)
            if (n := instances_needed(app, t)) is not None and n <= needed]


def validate(app: App, add) -> None:
    configured = instance_types.TYPES[app.cluster.instance_type]
    tasks = peak_tasks(app)
    offer = host(configured, app.cluster.reserved_memory_mib)
    for svc in app.services:
        if svc.cpu > offer.cpu or svc.memory > offer.memory:
            add(f"services[{app.services.index(svc)}]",
                f"one '{svc.name}' task ({svc.cpu} CPU units, {svc.memory} MiB) is larger than a whole "
                f"{configured.name} offers to tasks ({offer.cpu} CPU units, {offer.memory} MiB)"
                + _bigger_types(app, app.cluster.max_size, configured))
            return
    placed = place(tasks, offer, app.cluster.max_size)
    if placed is not None:
        return
    total_cpu, total_mem = sum(t.cpu for t in tasks), sum(t.memory for t in tasks)
    extra, enis = sum(t.surge for t in tasks), sum(t.eni for t in tasks)
    needed = instances_needed(app, configured)
    advice = [f"set cluster.max_size to {needed}"] if needed else []
    advice_types = _bigger_types(app, app.cluster.max_size, configured)
    scaled = " with every scaled service at its scaling.max" if app.scaled_services else ""
    add("cluster", f"the tasks do not fit on {app.cluster.max_size} x {configured.name} (cluster.max_size): at the "
                   f"deployment peak{scaled} {len(tasks)} tasks ({extra} of them rolling-deployment surge) need {enis} "
                   f"task ENIs, {total_cpu} CPU units and {total_mem} MiB; one {configured.name} runs "
                   f"{offer.slots} awsvpc tasks ({configured.max_enis} ENIs - 1), {offer.cpu} CPU units and "
                   f"{offer.memory} MiB. Fits: " + (" or ".join(advice) if advice else "nothing of this type")
                   + advice_types)


def _bigger_types(app: App, count: int, configured: InstanceType) -> str:
    fits = [t.name for t in instance_types.same_architecture(configured.architecture)
            if (n := instances_needed(app, t)) is not None and n <= count][:3]
    if not fits:
        return f"; no {configured.architecture} type this project knows fits on {count} instances"
    return f"; or use instance_type {' / '.join(fits)} ({count} instance{'' if count == 1 else 's'})"


# The load balancer's port for HTTPS; with a certificate port 80 redirects to it.
HTTPS_PORT = 443


def redirects(app: App) -> bool:
    """With a certificate, port 80 becomes a redirect to 443 (when the app has a port 80 listener)."""
    return 80 in app.listener_ports and HTTPS_PORT not in app.listener_ports


def called_ports(app: App) -> tuple[int, ...]:
    """Listener ports at which bridge services call the app's public URLs (their `{svc.url}` values).
    A port-80 URL becomes https on 443 when there is a certificate."""
    ports = set()
    for svc in app.bridge_services:
        for target in app.called_urls(svc):
            ports.add(target.public.port)
            if target.public.port == 80 and redirects(app):
                ports.add(HTTPS_PORT)
    return tuple(sorted(ports))


def max_hosts(app: App) -> int:
    """The most hosts a deployment may run: the template's bound, or fewer when the hosts function keeps a
    rule per host and called port in one security group, which EC2 holds to its rules-per-group quota."""
    ports = called_ports(app)
    return min(MAX_INSTANCES, quotas.RULES_PER_GROUP // len(ports)) if ports else MAX_INSTANCES
