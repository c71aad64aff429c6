"""make status: the deployment in one table: stacks, services (desired/running), targets, URLs."""
from __future__ import annotations

from lifecycle import live
from lifecycle.aws import Target


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
    by_group = {lb["targetGroupArn"]: svc["serviceName"]
                for svc in state.services for lb in svc.get("loadBalancers", [])}
    for arn, health in state.targets.items():
        healthy = sum(1 for t in health if t["TargetHealth"]["State"] == "healthy")
        found.append(["targets", by_group.get(arn, arn.rsplit("/", 2)[-2]), f"{healthy}/{len(health)} healthy",
                      arn.split(":", 5)[-1]])
    if state.cluster:
        found.append(["hosts", state.cluster, f"{len(state.instances)} registered", "ECS container instances"])
    for name, url in state.urls.items():
        found.append(["url", name, "", url])
    return found


def show(target: Target) -> int:
    state = live.gather(target)
    if not state.stacks:
        print(f"{target.stack}: not deployed in {target.region} (no stack {target.stack} or {target.registry})")
        return 0
    live.print_table(["kind", "name", "state", "detail"], rows(state), title=f"{target.stack} in {target.region}")
    return 0
