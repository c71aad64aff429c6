"""The ECS side of a rollout: each service's deployments, from a change of task definition until they settle.

What ECS reports, per service: the rollout state of its PRIMARY deployment (IN_PROGRESS, COMPLETED,
FAILED) and its reason, running/pending/desired of that deployment and of the older ones still
draining, and why each task stopped as tasks stop
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html). It ends when
every service is steady (one deployment, COMPLETED) or failed: the deployment circuit breaker marks
a deployment FAILED when its tasks keep failing and rolls the service back to the one before
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html). A
service with no task wanted (desired 0: ServicesRunning=false) has nothing to roll out and is
settled at once. The wait is bounded (`wait` seconds).

Shown as the stack operations are (progress.py): on a terminal a region redrawn in place (beside the
stack view while the root update runs), elsewhere one plain line per change with the time since the
rollout began. On the emulator, whose ECS scheduler places tasks (and so moves deployments on) only
when something asks it to, what one look shows after the update is final: a deployment still in
progress there is reported as such and as not observable, never waited for.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from lifecycle import progress, stacks, wait
from lifecycle.aws import Target, missing

COMPLETED, FAILED, IN_PROGRESS = "COMPLETED", "FAILED", "IN_PROGRESS"
IDLE = "no tasks"  # desired 0: nothing to roll out
OK, FAILED_CODE, NOT_OBSERVABLE = 0, 1, 3


def revision(task_definition: str) -> str:
    """`family:revision` of a task definition ARN (what a person reads in the console)."""
    return task_definition.rsplit("/", 1)[-1]


@dataclass
class Service:
    """One service as the last look saw it."""

    name: str
    state: str = ""  # the PRIMARY deployment's rolloutState, IDLE, or FAILED when any deployment failed
    reason: str = ""
    primary: str = ""  # its task definition, family:revision
    counts: tuple[int, int, int] = (0, 0, 0)  # running, pending, desired of the PRIMARY deployment
    draining: list[tuple[str, int, int, int]] = field(default_factory=list)  # revision, running, pending, desired
    stopped: dict[str, str] = field(default_factory=dict)  # task id -> stoppedReason, in the order seen

    @property
    def settled(self) -> bool:
        return self.state in (IDLE, FAILED) or (self.state == COMPLETED and not self.draining)

    def line(self) -> str:
        running, pending, desired = self.counts
        text = f"{self.name:18} {self.state or 'unknown':11} {self.primary} {running}/{pending}/{desired}"
        text += "".join(f"; draining {td} {r}/{p}/{d}" for td, r, p, d in self.draining)
        return text + (f": {self.reason}" if self.reason and self.state != COMPLETED else "")


class Rollout:
    """The services of the deployment's cluster (or those named), followed from now."""

    def __init__(self, target: Target, only: list[str] | None = None, wait_seconds: int = 600, out=None):
        self.target = target
        self.only = only
        self.wait = wait_seconds
        self.out = out or sys.stdout
        self.began = time.monotonic()
        self.since = stacks.now()
        self.cluster: str | None = None
        self.names: list[str] = []  # the cluster's services, as last found
        self.services: dict[str, Service] = {}
        self.printed: dict[str, str] = {}  # service -> its last line printed (plain mode)
        self.quiet = False  # beside the stack view on a terminal: it draws these lines
        self.lock = threading.Lock()

    # --- looking --------------------------------------------------------------------------------------

    def _names(self) -> list[str]:
        """The cluster and its services: the root's outputs, else (a root being created or updated, whose
        outputs may not be readable meanwhile) the ECS services its stacks hold, by their ARNs."""
        root = stacks.describe(self.target, self.target.stack)
        outputs = stacks.outputs(root)
        names = stacks.service_names(outputs)
        if outputs.get("ClusterName") and names:
            self.cluster, self.names = outputs["ClusterName"], names
        elif root and not self.names:
            arns = [r.get("PhysicalResourceId", "") for r in stacks.resources(self.target, root["StackId"])
                    if r["ResourceType"] == "AWS::ECS::Service"]
            found = [arn.split("/")[-2:] for arn in arns if arn.startswith("arn:") and arn.count("/") >= 2]
            if found:
                self.cluster, self.names = found[0][0], [name for _, name in found]
        return [n for n in self.names if self.only is None or n in self.only]

    def poll(self) -> None:
        with self.lock:
            names = self._names()
            if not self.cluster or not names:
                return
            ecs = self.target.client("ecs")
            try:
                described = stacks.describe_services(ecs, self.cluster, names)
            except ClientError as error:
                if missing(error):
                    return
                raise
            for svc in described:
                seen = self.services.setdefault(svc["serviceName"], Service(svc["serviceName"]))
                self._read(seen, svc)
                self._stopped(seen)
                if not self.quiet and not self.out.isatty():
                    self._print(seen)

    def _read(self, seen: Service, svc: dict) -> None:
        deployments = svc.get("deployments", [])
        primary = next((d for d in deployments if d.get("status") == "PRIMARY"), deployments[0] if deployments else {})
        failed = next((d for d in deployments if d.get("rolloutState") == FAILED), None)
        seen.primary = revision(primary.get("taskDefinition") or svc.get("taskDefinition", ""))
        seen.counts = (primary.get("runningCount", 0), primary.get("pendingCount", 0), primary.get("desiredCount", 0))
        seen.draining = [(revision(d.get("taskDefinition", "")), d.get("runningCount", 0), d.get("pendingCount", 0),
                          d.get("desiredCount", 0)) for d in deployments if d is not primary
                         and (d.get("runningCount", 0) or d.get("pendingCount", 0))]
        if failed is not None:
            seen.state, seen.reason = FAILED, failed.get("rolloutStateReason", "")
        elif not svc.get("desiredCount") and not seen.draining:
            seen.state, seen.reason = IDLE, "desired 0 (ServicesRunning=false)"
        elif primary.get("rolloutState"):
            seen.state, seen.reason = primary["rolloutState"], primary.get("rolloutStateReason", "")
        else:  # a deployment from before ECS reported rollout states: steady is one deployment, all running
            steady = len(deployments) == 1 and seen.counts[0] == seen.counts[2]
            seen.state, seen.reason = (COMPLETED if steady else IN_PROGRESS), ""

    def _stopped(self, seen: Service) -> None:
        """Tasks of the service that stopped since the rollout began, with ECS's reason."""
        ecs = self.target.client("ecs")
        arns = [arn for page in ecs.get_paginator("list_tasks").paginate(
            cluster=self.cluster, serviceName=seen.name, desiredStatus="STOPPED") for arn in page["taskArns"]]
        fresh = [arn for arn in arns if arn.rsplit("/", 1)[-1] not in seen.stopped]
        for start in range(0, len(fresh), 100):
            for task in ecs.describe_tasks(cluster=self.cluster, tasks=fresh[start:start + 100])["tasks"]:
                stopped_at = task.get("stoppedAt") or task.get("stoppingAt")
                if stopped_at is not None and stopped_at < self.since:
                    seen.stopped[task["taskArn"].rsplit("/", 1)[-1]] = ""  # before this rollout: not shown
                    continue
                seen.stopped[task["taskArn"].rsplit("/", 1)[-1]] = (
                    f"{revision(task.get('taskDefinitionArn', ''))}: {task.get('stoppedReason', '?')}")

    # --- showing --------------------------------------------------------------------------------------

    def _elapsed(self) -> str:
        return progress.seconds(time.monotonic() - self.began)

    def _print(self, seen: Service) -> None:
        line = seen.line()
        if self.printed.get(seen.name) != line:
            self.printed[seen.name] = line
            print(f"{self._elapsed():>7}  rollout {line}", file=self.out, flush=True)
        for task, reason in seen.stopped.items():
            key = f"{seen.name}/{task}"
            if reason and key not in self.printed:
                self.printed[key] = reason
                print(f"{self._elapsed():>7}  rollout {seen.name:18} task {task} stopped ({reason})", file=self.out,
                      flush=True)

    def lines(self, height: int) -> list[str]:
        """The region's lines: a header, one line per service, then the latest stopped tasks' reasons."""
        with self.lock:
            if height <= 0 or not self.services:
                return []
            steady = sum(s.settled for s in self.services.values())
            lines = [f"ECS rollout: {steady}/{len(self.services)} services settled, {self._elapsed()}"]
            lines += [f"  {s.line()}" for s in self.services.values()]
            stopped = [f"  {s.name:18} task {task} stopped ({reason})" for s in self.services.values()
                       for task, reason in s.stopped.items() if reason]
            room = max(height - len(lines), 0)
            return lines + stopped[-room:] if room else lines[:height]

    @property
    def settled(self) -> bool:
        return bool(self.services) and all(s.settled for s in self.services.values())

    def failures(self) -> list[str]:
        """The failed deployments the last look saw (a deploy that failed says them beside the root cause)."""
        return [f"rollout: {s.name}: FAILED: {s.reason}" for s in self.services.values() if s.state == FAILED]

    def summary(self, timed_out: bool = False) -> tuple[int, list[str]]:
        """The exit code and what stays on the screen."""
        failed = [s for s in self.services.values() if s.state == FAILED]
        moving = [s for s in self.services.values() if not s.settled]
        lines = [f"  {s.line()}" for s in self.services.values()]
        if failed:
            head = (f"rollout: FAILED: {', '.join(s.name for s in failed)}: the deployment circuit breaker stopped it "
                    "and rolls the service back to its previous deployment")
            return FAILED_CODE, [head, *lines] + [f"  {s.name}: {s.reason}" for s in failed]
        if moving and self.target.emulated:
            return NOT_OBSERVABLE, [
                f"rollout: not observable here: {', '.join(s.name for s in moving)} still in progress; the emulator's "
                "ECS scheduler moves a deployment on only when something changes, and runs no container", *lines]
        if moving:
            return FAILED_CODE, [f"rollout: {', '.join(s.name for s in moving)} not steady after "
                                 f"{wait.elapsed(self.wait)}" + (" (waited for no longer)" if timed_out else ""),
                                 *lines]
        how = " (emulated: the emulator's ECS scheduler placed the tasks; no container runs)" \
            if self.target.emulated else ""
        return OK, [f"rollout: every service steady, {self._elapsed()}{how}", *lines]

    # --- waiting --------------------------------------------------------------------------------------

    def follow(self) -> int:
        """Look until every service is settled, at most `wait` seconds (one look on the emulator); the exit code."""
        self.quiet = False
        region = progress.Region(self.out) if self.out.isatty() else None
        if region:
            region.start()
        timed_out = False
        start = quiet_since = time.monotonic()
        try:
            while True:
                self.poll()
                if region:
                    region.draw(self.lines)
                if self.settled or self.target.emulated or not self.services:
                    break
                if time.monotonic() - start >= self.wait:
                    timed_out = True
                    break
                if not region and time.monotonic() - quiet_since >= wait.EVERY:  # a log shows the wait goes on
                    quiet_since = time.monotonic()
                    busy = ", ".join(s.name for s in self.services.values() if not s.settled)
                    print(f"{self._elapsed():>7}  rollout: waiting for {busy} (at most {wait.elapsed(self.wait)}; "
                          "Ctrl-C stops waiting, ECS goes on)", file=self.out, flush=True)
                time.sleep(stacks.DELAY)
        finally:
            if region:
                region.stop()
        if not self.services:
            print("rollout: no service to follow (the stack has no ServiceNames output yet)", file=self.out)
            return OK
        code, lines = self.summary(timed_out)
        for line in lines:
            print(line, file=self.out)
        self.out.flush()
        return code
