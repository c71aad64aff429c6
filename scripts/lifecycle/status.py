"""make status: the deployment in one table: stacks, services (desired/running), hosts, tasks, targets, Cloud Map
instances, URLs; a service whose tasks wait to be placed says why, in ECS's own event."""
from __future__ import annotations

from collections import Counter

from lifecycle import live
from lifecycle.aws import Target
from templates_src.app import instance_types

EMULATED = ("emulator: hosts, task placement, targets and Cloud Map instances are the emulated ECS scheduler's; "
            "no container runs, so no target leaves `initial` and nothing answers")


def rows(state: live.Live) -> list[list[str]]:
    found = []
    for label, stack in state.stacks:
        updated = stack.get("LastUpdatedTime") or stack.get("CreationTime")
        found.append(["stack", label, stack["StackStatus"], f"{stack['StackName']}, {updated:%Y-%m-%d %H:%M} UTC"])
    for svc in state.services:
        rollout = ", ".join(d.get("rolloutState", d.get("status", "")) for d in svc.get("deployments", []))
        found.append(["service", svc["serviceName"], svc["status"],
                      f"desired {svc['desiredCount']}, running {svc['runningCount']}, pending {svc['pendingCount']}"
                      + (f"; deployments: {rollout}" if rollout else "")])
        why = waiting_reason(svc)
        if why:
            found.append(["waiting", svc["serviceName"], f"{svc['pendingCount']} not placed", why])
    by_group = {lb["targetGroupArn"]: svc["serviceName"]
                for svc in state.services for lb in svc.get("loadBalancers", [])}
    for arn, health in state.targets.items():
        states = Counter(t["TargetHealth"]["State"] for t in health)
        others = ", ".join(f"{n} {name}" for name, n in sorted(states.items()) if name != "healthy")
        found.append(["targets", by_group.get(arn, arn.rsplit("/", 2)[-2]),
                      f"{states['healthy']}/{len(health)} healthy" + (f" ({others})" if others else ""),
                      arn.split(":", 5)[-1]])
    if state.cluster:
        found.append(["hosts", state.cluster, f"{len(state.instances)} registered", "ECS container instances"])
    found += [["host", h["ec2InstanceId"], h["status"], _host(h, state.tasks)] for h in state.hosts]
    hosts = {h["containerInstanceArn"]: h["ec2InstanceId"] for h in state.hosts}
    for task in sorted(state.tasks, key=lambda t: (t.get("group", ""), t["taskArn"])):
        where = hosts.get(task.get("containerInstanceArn", ""), "no host")
        address = task_address(task)
        found.append(["task", task.get("group", "").removeprefix("service:"), task["lastStatus"],
                      f"{task['taskArn'].rsplit('/', 1)[-1]} on {where}" + (f", {address}" if address else "")])
    for svc in state.services:
        for ref in svc.get("serviceRegistries", []):
            found_here = state.discovered.get(ref["registryArn"].rsplit("/", 1)[-1], [])
            addresses = ", ".join(i.get("Attributes", {}).get("AWS_INSTANCE_IPV4", i["Id"]) for i in found_here)
            found.append(["cloud map", svc["serviceName"], f"{len(found_here)} instances", addresses or "-"])
    for name, url in state.urls.items():
        found.append(["url", name, "", url])
    return found


def waiting_reason(svc: dict) -> str:
    """ECS's latest event about a task it could not place, while tasks of the service wait."""
    if not svc.get("pendingCount") and svc.get("runningCount", 0) >= svc.get("desiredCount", 0):
        return ""
    return next((e["message"] for e in svc.get("events", []) if "unable to" in e["message"]), "")


def task_address(task: dict) -> str:
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail["name"] == "privateIPv4Address":
                return detail["value"]
    return ""


def _host(host: dict, tasks: list[dict]) -> str:
    free, total = ({r["name"]: r.get("integerValue", 0) for r in host.get(key, [])}
                   for key in ("remainingResources", "registeredResources"))
    kind = next((a.get("value") for a in host.get("attributes", []) if a["name"] == "ecs.instance-type"), "")
    here = [t for t in tasks if t.get("containerInstanceArn") == host["containerInstanceArn"]]
    known = instance_types.TYPES.get(kind)
    enis = (f", {sum(1 for t in here if task_address(t))}/{known.task_slots} awsvpc interfaces"
            if known else "")
    return (f"{kind}: {len(here)} tasks, CPU {free.get('CPU', 0)}/{total.get('CPU', 0)} free, "
            f"memory {free.get('MEMORY', 0)}/{total.get('MEMORY', 0)} MiB free{enis}")


def show(target: Target) -> int:
    state = live.gather(target)
    if not state.stacks:
        print(f"{target.stack}: not deployed in {target.region} (no stack {target.stack} or {target.registry})")
        return 0
    live.print_table(["kind", "name", "state", "detail"], rows(state), title=f"{target.stack} in {target.region}")
    if target.emulated:
        print(EMULATED)
    return 0
