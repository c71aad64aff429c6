"""Stacks: create or update through a change set, watch it, and explain a failure.

`apply` is what `aws cloudformation deploy` does (a change set; "no changes" is success), plus a
live view of the root and every nested stack while it runs, and the root cause when it fails: the
first failed event of the deepest stack, and for an ECS service that did not stabilize, its
service events and its stopped tasks' reasons.
"""
from __future__ import annotations

import datetime
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError, WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from lifecycle import progress, wait
from lifecycle.aws import TAG, InputError, LifecycleError, Target, missing

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
# Reasons that only echo a failure elsewhere; the cause is in another event.
ECHOES = ("Resource creation cancelled", "Resource update cancelled", "The following resource(s) failed",
          "Embedded stack", "Resource is not in the state")
SETTLED = ["CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_COMPLETE",
           "DELETE_FAILED", "UPDATE_COMPLETE", "UPDATE_FAILED", "UPDATE_ROLLBACK_COMPLETE",
           "UPDATE_ROLLBACK_FAILED", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_FAILED",
           "REVIEW_IN_PROGRESS"]
# Stacks in these states can take a change set as they are.
UPDATABLE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
             "IMPORT_ROLLBACK_COMPLETE"}
DELAY = 5  # seconds between polls of AWS (the emulator answers at once)


def describe(target: Target, name: str) -> dict | None:
    """The stack's description, or None when there is no such stack (deleted ones included)."""
    try:
        found = target.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as error:
        if missing(error):
            return None
        raise
    return None if found["StackStatus"] == "DELETE_COMPLETE" else found


def refuse_strangers(target: Target) -> None:
    """Refuse (exit 2) when the root or registry stack exists without the tag make deploy writes on
    both (the change set's stack tags): a stack that merely has the name is somebody else's, and
    neither deploy nor cleanup touches it."""
    for name in (target.stack, target.registry):
        stack = describe(target, name)
        if stack is not None and {"Key": TAG, "Value": target.stack} not in stack.get("Tags", []):
            raise InputError(f"stack {name} does not carry {TAG}={target.stack}, the tag make deploy writes on the "
                             f"stacks it makes: it is not this deployment's and is left alone; choose another STACK")


def resources(target: Target, stack_id: str) -> list[dict]:
    """Every resource of a live stack and its nested stacks (a stack that is gone has none)."""
    found = []
    paginator = target.client("cloudformation").get_paginator("list_stack_resources")
    try:
        for page in paginator.paginate(StackName=stack_id):
            for item in page["StackResourceSummaries"]:
                found.append(item)
                if item["ResourceType"] == "AWS::CloudFormation::Stack" and \
                        item.get("PhysicalResourceId", "").startswith("arn:") and \
                        not item["ResourceStatus"].startswith("DELETE_COMPLETE"):
                    found += resources(target, item["PhysicalResourceId"])
    except ClientError as error:
        if not missing(error):
            raise
    return found


def outputs(stack: dict | None) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}


def service_names(outputs: dict[str, str]) -> list[str]:
    """The ECS services the root's ServiceNames output lists, in start order."""
    return [name for name in outputs.get("ServiceNames", "").split(",") if name]


def describe_services(ecs, cluster: str, names: list[str]) -> list[dict]:
    """DescribeServices takes 10 services a call
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html)."""
    return [svc for start in range(0, len(names), 10)
            for svc in ecs.describe_services(cluster=cluster, services=names[start:start + 10])["services"]]


def parameters(stack: dict | None) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in (stack or {}).get("Parameters", [])}


def _settled_waiter(target: Target):
    """A waiter for "whatever it was doing, it is done" (boto3 has one per operation only)."""
    model = WaiterModel({"version": 2, "waiters": {"StackSettled": {
        "operation": "DescribeStacks", "delay": DELAY, "maxAttempts": 720,
        "acceptors": [{"state": "success", "matcher": "path", "argument": "Stacks[0].StackStatus",
                       "expected": status} for status in SETTLED]
        + [{"state": "success", "matcher": "error", "expected": "ValidationError"}],
    }}})
    return create_waiter_with_client("StackSettled", model, target.client("cloudformation"))


def leave_running(target: Target) -> str:
    """What a person can do about a stack operation they are waiting for."""
    return f"Ctrl-C stops waiting and CloudFormation goes on; make cleanup STACK={target.stack} removes it all"


def settle(target: Target, name: str) -> dict | None:
    """Wait for an operation already running on the stack (another deploy, a delete) to end."""
    stack = describe(target, name)
    if stack and stack["StackStatus"].endswith("_IN_PROGRESS") and stack["StackStatus"] != "REVIEW_IN_PROGRESS":
        with wait.shown(f"{name}: {stack['StackStatus']}, waiting for it to end", leave_running(target)):
            _settled_waiter(target).wait(StackName=name)
        stack = describe(target, name)
    return stack


def delete(target: Target, name: str, note: str = "") -> dict | None:
    """DeleteStack and wait, with the live view (`note`: what this delete is, e.g. a retry); returns
    the stack when it ended DELETE_FAILED."""
    stack = describe(target, name)
    if stack is None:
        return None
    cfn = target.client("cloudformation")
    holding = progress.holding(target, stack["StackId"])
    ok = _watch(target, stack["StackId"], name, lambda: cfn.delete_stack(StackName=stack["StackId"]),
                "stack_delete_complete", note, holding)
    return None if ok else describe(target, stack["StackId"])


@dataclass
class Proposal:
    """A change set made and described, not executed; None from `propose` means no changes."""

    name: str
    kind: str  # CREATE | UPDATE
    change_set: str  # its ARN
    stack_id: str


def propose(target: Target, name: str, template_url: str, params: dict[str, str], nested: bool = False,
            purpose: str = "deploy") -> Proposal | None:
    """Make the change set that would take `name` to this template and these parameters."""
    cfn = target.client("cloudformation")
    stack = settle(target, name)
    if stack and stack["StackStatus"] == "ROLLBACK_COMPLETE":
        # A first create that failed leaves an empty stack that can only be deleted.
        print(f"{name}: ROLLBACK_COMPLETE from a failed first create; it holds nothing, deleting it first")
        if delete(target, name):
            raise LifecycleError(f"{name}: could not delete the failed stack; run make cleanup STACK={target.stack}")
        stack = None
    if stack and stack["StackStatus"] not in UPDATABLE | {"REVIEW_IN_PROGRESS"}:
        raise LifecycleError(
            f"{name} is {stack['StackStatus']}: {stack.get('StackStatusReason', '')}\n"
            + ("  it cannot be updated; continue the rollback (aws cloudformation continue-update-rollback "
               f"--stack-name {name}) or remove it with make cleanup STACK={target.stack}"
               if stack["StackStatus"] == "UPDATE_ROLLBACK_FAILED" else
               f"  remove it with make cleanup STACK={target.stack}, then deploy again"))
    kind = "UPDATE" if stack and stack["StackStatus"] != "REVIEW_IN_PROGRESS" else "CREATE"
    # The time says when; the random part keeps two change sets made in one second apart.
    label = f"{purpose}-{datetime.datetime.now(datetime.timezone.utc):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:12]}"
    created = cfn.create_change_set(
        StackName=name, ChangeSetName=label, ChangeSetType=kind, TemplateURL=template_url,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
        Capabilities=CAPABILITIES, Tags=target.tags, **({"IncludeNestedStacks": True} if nested else {}))
    try:
        with wait.shown(f"{name}: making change set {label}", "Ctrl-C stops; the change set stays, unexecuted",
                        after=3):
            cfn.get_waiter("change_set_create_complete").wait(
                ChangeSetName=created["Id"], StackName=name, WaiterConfig={"Delay": DELAY, "MaxAttempts": 120})
    except WaiterError:
        described = cfn.describe_change_set(ChangeSetName=created["Id"], StackName=name)
        reason = described.get("StatusReason", "")
        if any(phrase in reason for phrase in NO_CHANGES):
            cfn.delete_change_set(ChangeSetName=created["Id"], StackName=name)
            print(f"{name}: no changes")
            return None
        raise LifecycleError(f"{name}: change set {label} failed: {reason}") from None
    return Proposal(name, kind, created["Id"], created["StackId"])


def withdraw(target: Target, proposal: Proposal) -> None:
    """Delete an unexecuted change set, and the empty stack a CREATE change set made."""
    cfn = target.client("cloudformation")
    cfn.delete_change_set(ChangeSetName=proposal.change_set, StackName=proposal.name)
    if proposal.kind == "CREATE":
        cfn.delete_stack(StackName=proposal.stack_id)
        with wait.shown(f"{proposal.name}: deleting the empty stack of the preview", leave_running(target), after=3):
            cfn.get_waiter("stack_delete_complete").wait(StackName=proposal.stack_id,
                                                         WaiterConfig={"Delay": DELAY, "MaxAttempts": 120})


class Declined(Exception):
    """The change set was not approved (lifecycle/approval.py); it is deleted, nothing executed."""

    def __init__(self, name: str, kind: str):
        super().__init__(name)
        self.name, self.kind = name, kind


def apply(target: Target, name: str, template_url: str, params: dict[str, str], review=None, beside=None) -> dict:
    """Create or update `name` through a change set and return its description; raises
    LifecycleError with the root cause. `review(target, name, proposal, changes)` (approval.py)
    may decline the change set: it is then deleted and Declined raised. `beside`: an ECS rollout
    (rollouts.py) shown with the stack while it changes."""
    proposal = propose(target, name, template_url, params, nested=bool(review and review.interactive))
    if proposal is None:
        return describe(target, name)
    changes = change_set_changes(target, name, proposal.change_set)
    for line in summarize(changes):
        print(f"{name}: {line}")
    if review is not None and not review(target, name, proposal, changes):
        withdraw(target, proposal)
        raise Declined(name, proposal.kind)
    started = now()
    waiter = "stack_create_complete" if proposal.kind == "CREATE" else "stack_update_complete"
    if not _watch(target, proposal.stack_id, name, lambda: target.client("cloudformation").execute_change_set(
            ChangeSetName=proposal.change_set, StackName=name), waiter,
            planned={change["LogicalResourceId"] for change in changes}, beside=beside):
        final = describe(target, proposal.stack_id) or {}
        raise LifecycleError(f"{name}: {final.get('StackStatus', 'deleted')}\n"
                             + "\n".join(explain(target, proposal.stack_id, started)))
    return describe(target, name)


def change_set_changes(target: Target, name: str | None, change_set: str) -> list[dict]:
    """The resource changes of a change set (by ARN; `name` may be None for a nested one)."""
    cfn = target.client("cloudformation")
    changes, token = [], None
    while True:  # DescribeChangeSet has no paginator
        page = cfn.describe_change_set(ChangeSetName=change_set, **({"StackName": name} if name else {}),
                                       **({"NextToken": token} if token else {}))
        changes += [c["ResourceChange"] for c in page.get("Changes", []) if "ResourceChange" in c]
        token = page.get("NextToken")
        if not token:
            return changes


def summarize(changes: list[dict]) -> list[str]:
    lines = []
    for change in changes:
        replacement = change.get("Replacement")
        note = {"True": " (REPLACEMENT)", "Conditional": " (may be replaced)"}.get(replacement, "")
        changed = sorted({d["Target"].get("Name") or d["Target"].get("Attribute", "")
                          for d in change.get("Details", []) if d.get("Target")} - {""})
        lines.append(f"{change.get('Action', '?'):6} {change['LogicalResourceId']} "
                     f"{change.get('ResourceType', '')}{note}" + (f" [{', '.join(changed)}]" if changed else ""))
    return lines


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _watch(target: Target, stack_id: str, name: str, begin: Callable[[], object], waiter: str,
           note: str = "", planned: set[str] | None = None, beside=None) -> bool:
    """Start the operation (`begin`) and block on the boto3 waiter while the live view follows the
    events; True when it succeeded. The view starts first: a call that answers only when the work is
    done (the emulator's) is followed too. Ctrl-C ends the view with the state so far, then goes on
    up (CloudFormation keeps going)."""
    view = progress.View(target, stack_id, name, now(), note=note, planned=planned, beside=beside)
    interrupted = False
    stop = threading.Event()

    def follow():
        while not stop.wait(view.interval):
            view.poll()

    follower = threading.Thread(target=follow, daemon=True)
    view.start()
    follower.start()
    try:
        begin()
        target.client("cloudformation").get_waiter(waiter).wait(
            StackName=stack_id, WaiterConfig={"Delay": DELAY, "MaxAttempts": 720})
        return True
    except WaiterError:
        return False
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        stop.set()
        follower.join()
        if not interrupted:
            view.poll()
        view.stop(interrupted)


# --- explaining a failure ----------------------------------------------------------------------------

def events(target: Target, stack: str, since: datetime.datetime) -> list[dict]:
    """The stack's events since `since`, oldest first (the API pages newest first)."""
    found = []
    paginator = target.client("cloudformation").get_paginator("describe_stack_events")
    for page in paginator.paginate(StackName=stack):
        for event in page["StackEvents"]:
            if event["Timestamp"] < since:
                return found[::-1]
            found.append(event)
    return found[::-1]


def failures(target: Target, stack: str, since: datetime.datetime, depth: int = 0) -> list[tuple[int, dict]]:
    """(depth, event) of every failed event in the stack and the nested stacks it created or updated."""
    found, arns = [], {}
    for event in events(target, stack, since):
        physical = event.get("PhysicalResourceId") or ""
        if event["ResourceType"] == "AWS::CloudFormation::Stack" and physical.startswith("arn:") and physical != stack:
            arns[event["LogicalResourceId"]] = physical
        if not event["ResourceStatus"].endswith("FAILED"):
            continue
        child = arns.get(event["LogicalResourceId"]) or _embedded(event).get(event["LogicalResourceId"])
        if event["ResourceType"] == "AWS::CloudFormation::Stack" and child:
            found += failures(target, child, since, depth + 1)
        found.append((depth, event))
    return found


def _embedded(event: dict) -> dict[str, str]:
    """The child named in "Embedded stack <arn> was not ..." (a failed event may carry no physical ID)."""
    match = re.search(r"Embedded stack (arn:\S+) was not", event.get("ResourceStatusReason") or "")
    return {event["LogicalResourceId"]: match.group(1)} if match else {}


def root_cause(target: Target, stack: str, since: datetime.datetime) -> dict | None:
    """The first failed event of the deepest stack that has one that is not an echo of another."""
    found = failures(target, stack, since)
    causes = [(depth, e) for depth, e in found if e["ResourceType"] != "AWS::CloudFormation::Stack"
              and not any(echo in (e.get("ResourceStatusReason") or "") for echo in ECHOES)]
    pool = causes or found
    if not pool:
        return None
    deepest = max(depth for depth, _ in pool)
    return min((e for depth, e in pool if depth == deepest), key=lambda e: e["Timestamp"])


def explain(target: Target, stack: str, since: datetime.datetime) -> list[str]:
    cause = root_cause(target, stack, since)
    if cause is None:
        return ["  no failed event recorded; see the stack's events in the CloudFormation console"]
    lines = [f"root cause: {cause['StackName']} / {cause['LogicalResourceId']} ({cause['ResourceType']}) "
             f"{cause['ResourceStatus']}: {cause.get('ResourceStatusReason', '')}"]
    if cause["ResourceType"] == "AWS::ECS::Service":
        lines += service_story(target, cause.get("PhysicalResourceId", ""))
    return lines


def service_story(target: Target, service_arn: str) -> list[str]:
    """Why an ECS service did not stabilize: its latest events and its stopped tasks' reasons."""
    parts = service_arn.split("/")
    if len(parts) < 3:
        return [f"  (no service ARN to look at: {service_arn!r})"]
    cluster, service = parts[-2], parts[-1]
    ecs = target.client("ecs")
    lines = []
    try:
        described = ecs.describe_services(cluster=cluster, services=[service])["services"]
    except ClientError as error:
        return [f"  (could not describe the service: {error})"]
    for svc in described:
        lines.append(f"  service {service}: desired {svc.get('desiredCount')}, running {svc.get('runningCount')}, "
                     f"pending {svc.get('pendingCount')}")
        lines += [f"  event {e['createdAt']:%H:%M:%S}: {e['message']}" for e in svc.get("events", [])[:10]]
    arns = [arn for page in ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, serviceName=service, desiredStatus="STOPPED") for arn in page["taskArns"]]
    for start in range(0, min(len(arns), 20), 100):
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns[start:start + 100])["tasks"]:
            lines.append(f"  stopped task {task['taskArn'].rsplit('/', 1)[-1]}: {task.get('stoppedReason', '?')}")
            lines += [f"    container {c['name']}: exit {c.get('exitCode')} {c.get('reason', '')}".rstrip()
                      for c in task.get("containers", []) if c.get("reason") or c.get("exitCode")]
    if not arns:
        lines.append("  no stopped task recorded (tasks that never got a host stay PROVISIONING: check the fit)")
    return lines

