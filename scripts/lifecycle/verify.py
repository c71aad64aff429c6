"""make verify: is the deployed app up and serving?

Checked in order, each PASS, FAIL or NOT OBSERVABLE HERE: every stack complete; container instances
registered; every service steady (running == desired, one completed deployment; waited for with
ECS's services_stable waiter); every target healthy; every Cloud Map service has as many instances
as its ECS service runs tasks; then an HTTP GET of each public URL (its health path) answering 200,
with bounded retries and backoff. On the emulator, hosts, placement, targets and Cloud Map instances
come from its emulated ECS scheduler and are checked as such (their detail says so); what needs a
container to answer (target health, the URLs) cannot be observed there and is reported so, never as
passed.

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

from lifecycle import live, status
from lifecycle.aws import Target
from lifecycle.wait import shown
from templates_src.app import checks, config, loading
from templates_src.app.words import plural

PASS, FAIL, UNOBSERVABLE = "PASS", "FAIL", "NOT OBSERVABLE HERE"
EMULATED = "emulated: the emulator's ECS scheduler"
NO_CONTAINER = "the emulator runs no container and resolves no DNS: nothing answers a health check or a request"


@dataclass
class Check:
    name: str
    result: str
    detail: str


def run(target: Target, config_path: Path, wait: int = 600, attempts: int = 6) -> list[Check]:
    app = loading.load(config_path)
    state = live.gather(target)
    checks = [_stacks(state, target)]
    if not state.root or not state.cluster:
        return checks
    checks.append(_services_exist(state, app))
    if target.emulated:
        checks.append(_hosts(state, f" ({EMULATED} registered them from the Auto Scaling group's launches)"))
        checks.append(_steady(target, state, 0, f" ({EMULATED} placed them)"))
        checks.append(_registered(state))
        checks.append(Check("targets healthy", UNOBSERVABLE, NO_CONTAINER))
        checks.append(_discovered(state, f" ({EMULATED} registered them)"))
        checks += [Check(f"GET {url}", UNOBSERVABLE, NO_CONTAINER) for url in _probes(app, state)]
        return checks
    checks.append(_hosts(state))
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
    # A scaled service's count is auto scaling's to choose, within its range.
    wanted = {s.name: (s.scaling.min, s.scaling.max) if s.scaling else (s.desired_count, s.desired_count)
              for s in app.services}
    have = {s["serviceName"]: s for s in state.services if s["status"] == "ACTIVE"}
    problems = [f"{name}: missing" for name in wanted if name not in have]
    problems += [f"{name}: desired {have[name]['desiredCount']}, config says {_count(low, high)}"
                 for name, (low, high) in wanted.items()
                 if name in have and not low <= have[name]["desiredCount"] <= high]
    return Check("services defined as configured", FAIL if problems else PASS,
                 "; ".join(problems) or ", ".join(f"{n} x{_count(*c)}" for n, c in wanted.items()))


def _count(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}..{high}"


def _hosts(state: live.Live, how: str = "") -> Check:
    return Check("container instances registered", PASS if state.instances else FAIL,
                 f"{len(state.instances)} in cluster {state.cluster}{how}")


def _steady(target: Target, state: live.Live, wait: int, how: str = "") -> Check:
    names = [s["serviceName"] for s in state.services]
    try:
        with shown(f"verify: waiting for {len(names)} service(s) to be steady (at most {wait} s)",
                   "Ctrl-C stops waiting; nothing is changed", after=3):
            for start in range(0, len(names), 10) if wait else []:
                target.client("ecs").get_waiter("services_stable").wait(
                    cluster=state.cluster, services=names[start:start + 10],
                    WaiterConfig={"Delay": 15, "MaxAttempts": max(1, wait // 15)})
    except WaiterError:
        pass  # the counts below say which one
    fresh = live.gather(target)
    bad = [f"{s['serviceName']}: running {s['runningCount']} of {s['desiredCount']}"
           + (f" ({why})" if (why := status.waiting_reason(s)) else "") for s in fresh.services
           if s["runningCount"] != s["desiredCount"] or len(s.get("deployments", [])) != 1]
    return Check("services steady (running == desired)", FAIL if bad else PASS,
                 "; ".join(bad) or ", ".join(f"{s['serviceName']} {s['runningCount']}" for s in fresh.services) + how)


def _registered(state: live.Live) -> Check:
    """One target per running task in each of its service's target groups (their health aside)."""
    bad, total = [], 0
    for svc in state.services:
        for lb in svc.get("loadBalancers", []):
            count = len(state.targets.get(lb["targetGroupArn"], []))
            total += count
            if count != svc["runningCount"]:
                bad.append(f"{svc['serviceName']}: {count} targets, {svc['runningCount']} running")
    return Check("targets registered", FAIL if bad else PASS,
                 "; ".join(bad) or f"{total}, one per running task ({EMULATED} registered them)")


def _targets(state: live.Live) -> Check:
    bad, total = [], 0
    for arn, health in state.targets.items():
        total += len(health)
        unhealthy = [f"{t['Target']['Id']} {t['TargetHealth']['State']} ({t['TargetHealth'].get('Reason', '')})"
                     for t in health if t["TargetHealth"]["State"] != "healthy"]
        if unhealthy or not health:
            bad.append(f"{arn.split('/')[-2]}: " + (", ".join(unhealthy) or "no targets"))
    return Check("targets healthy", FAIL if bad else PASS, "; ".join(bad) or f"{total} healthy")


def _discovered(state: live.Live, how: str = "") -> Check:
    bad = []
    for svc in state.services:
        for ref in svc.get("serviceRegistries", []):
            count = len(state.discovered.get(ref["registryArn"].rsplit("/", 1)[-1], []))
            if count != svc["runningCount"]:
                bad.append(f"{svc['serviceName']}: {count} registered, {svc['runningCount']} running")
    return Check("Cloud Map instances registered", FAIL if bad else PASS,
                 "; ".join(bad) or f"one per running task{how}")


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
