"""make verify: is the deployed app up and serving?

Checked in order, each PASS, FAIL or NOT OBSERVABLE HERE: every stack complete; container instances
registered; every service steady (running == desired, one completed deployment; waited for with
ECS's services_stable waiter); every target healthy; every Cloud Map service has as many instances
as its ECS service runs tasks; then an HTTP GET of each public URL (its health path) answering 200,
with bounded retries and backoff. Facts that need hosts, tasks or DNS cannot be observed on the
emulator and are reported so, never as passed.

Exit codes: 0 every check passed; 1 a check failed; 3 nothing failed but some checks could not be
observed (the emulator).
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import WaiterError

from lifecycle import live
from lifecycle.aws import Target
from templates_src import config
from templates_src.words import plural

PASS, FAIL, UNOBSERVABLE = "PASS", "FAIL", "NOT OBSERVABLE HERE"
NO_HOSTS = "the emulator starts no EC2 host, runs no ECS agent or task, and resolves no DNS"


@dataclass
class Check:
    name: str
    result: str
    detail: str


def run(target: Target, config_path: Path, wait: int = 600, attempts: int = 6) -> list[Check]:
    app = config.load(config_path)
    state = live.gather(target)
    checks = [_stacks(state, target)]
    if not state.root or not state.cluster:
        return checks
    checks.append(_services_exist(state, app))
    if target.emulated:
        checks += [Check(name, UNOBSERVABLE, NO_HOSTS) for name in (
            "container instances registered", "services steady (running == desired)", "targets healthy",
            "Cloud Map instances registered")]
        checks += [Check(f"GET {url}", UNOBSERVABLE, NO_HOSTS) for url in _probes(app, state)]
        return checks
    checks.append(Check("container instances registered", PASS if state.instances else FAIL,
                        f"{len(state.instances)} in cluster {state.cluster}"))
    checks.append(_steady(target, state, wait))
    state = live.gather(target)  # after the wait: counts, targets and instances as they are now
    checks.append(_targets(state))
    checks.append(_discovered(state))
    checks += [_get(url, attempts) for url in _probes(app, state)]
    return checks


def _stacks(state: live.Live, target: Target) -> Check:
    bad = [f"{label} {s['StackStatus']}" for label, s in state.stacks if not s["StackStatus"].endswith("_COMPLETE")
           or "ROLLBACK" in s["StackStatus"]]
    if not state.root:
        return Check("stacks complete", FAIL, f"no root stack {target.stack}: run make deploy STACK={target.stack}")
    return Check("stacks complete", FAIL if bad else PASS, "; ".join(bad) or f"{len(state.stacks)} stacks")


def _services_exist(state: live.Live, app: config.App) -> Check:
    wanted = {s.name: s.desired_count for s in app.services}
    have = {s["serviceName"]: s for s in state.services if s["status"] == "ACTIVE"}
    problems = [f"{name}: missing" for name in wanted if name not in have]
    problems += [f"{name}: desired {have[name]['desiredCount']}, config says {count}"
                 for name, count in wanted.items() if name in have and have[name]["desiredCount"] != count]
    return Check("services defined as configured", FAIL if problems else PASS,
                 "; ".join(problems) or ", ".join(f"{n} x{c}" for n, c in wanted.items()))


def _steady(target: Target, state: live.Live, wait: int) -> Check:
    names = [s["serviceName"] for s in state.services]
    try:
        for start in range(0, len(names), 10):
            target.client("ecs").get_waiter("services_stable").wait(
                cluster=state.cluster, services=names[start:start + 10],
                WaiterConfig={"Delay": 15, "MaxAttempts": max(1, wait // 15)})
    except WaiterError:
        pass  # the counts below say which one
    fresh = live.gather(target)
    bad = [f"{s['serviceName']}: running {s['runningCount']} of {s['desiredCount']}" for s in fresh.services
           if s["runningCount"] != s["desiredCount"] or len(s.get("deployments", [])) != 1]
    return Check("services steady (running == desired)", FAIL if bad else PASS,
                 "; ".join(bad) or ", ".join(f"{s['serviceName']} {s['runningCount']}" for s in fresh.services))


def _targets(state: live.Live) -> Check:
    bad, total = [], 0
    for arn, health in state.targets.items():
        total += len(health)
        unhealthy = [f"{t['Target']['Id']} {t['TargetHealth']['State']} ({t['TargetHealth'].get('Reason', '')})"
                     for t in health if t["TargetHealth"]["State"] != "healthy"]
        if unhealthy or not health:
            bad.append(f"{arn.split('/')[-2]}: " + (", ".join(unhealthy) or "no targets"))
    return Check("targets healthy", FAIL if bad else PASS, "; ".join(bad) or f"{total} healthy")


def _discovered(state: live.Live) -> Check:
    bad = []
    for svc in state.services:
        for ref in svc.get("serviceRegistries", []):
            count = len(state.discovered.get(ref["registryArn"].rsplit("/", 1)[-1], []))
            if count != svc["runningCount"]:
                bad.append(f"{svc['serviceName']}: {count} registered, {svc['runningCount']} running")
    return Check("Cloud Map instances registered", FAIL if bad else PASS, "; ".join(bad) or "one per running task")


def _probes(app: config.App, state: live.Live) -> list[str]:
    """Each public service's URL with its health path (the API's /actuator/health, the UI's /)."""
    probes = []
    for svc in app.public_services:
        base = state.urls.get(config.url_output(svc))
        if base:
            probes.append(base.rstrip("/") + (svc.health_check.path or "/"))
    return probes


def _get(url: str, attempts: int) -> Check:
    delay, last = 2.0, ""
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                if answer.status == 200:
                    return Check(f"GET {url}", PASS, f"200 after {plural(attempt, 'attempt')}")
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            last = str(getattr(error, "reason", error))
        if attempt < attempts:
            time.sleep(delay)
            delay = min(delay * 2, 30)
    return Check(f"GET {url}", FAIL, f"{last} after {attempts} attempts")


def report(checks: list[Check]) -> int:
    live.print_table(["result", "check", "detail"], [[c.result, c.name, c.detail] for c in checks])
    results = {c.result for c in checks}
    if FAIL in results:
        print(f"verify: {plural(sum(c.result == FAIL for c in checks), 'check')} failed")
        return 1
    if UNOBSERVABLE in results:
        unseen = sum(c.result == UNOBSERVABLE for c in checks)
        print(f"verify: nothing failed, but {plural(unseen, 'check')} could not be observed here; this run does not "
              "show the app serving")
        return 3
    print(f"verify: all {len(checks)} checks passed")
    return 0
