"""A live view of a stack operation: the root and its nested stacks, counted as `cdk deploy` counts.

Each stack gets a counter, resources done / total: for a create, the total is the stack's template
(its resources without a Condition, plus the conditional ones CloudFormation starts); for a delete,
the resources the stack holds when it starts; for an update, the resources the update touches.

On a terminal, a region redrawn in place only when what it shows changed, never taller than the
screen and never shrinking while it runs (so nothing jumps): the stacks' counters, then only the
resources in progress or failed. When the operation ends, the region gives way to a summary that
fits the screen: one line per stack, and every failure with its whole reason. Ctrl-C ends it the same
way, with the state so far.
Elsewhere (CI, a pipe), one plain line per new event, with the time since the operation began as
the line is written and the stack's counter, so a log reads as the operation went.
"""
from __future__ import annotations

import datetime
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from lifecycle import templates
from lifecycle.aws import Target
from templates_src.app.words import plural

STACK_TYPE = "AWS::CloudFormation::Stack"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def done(status: str) -> bool:
    return status.endswith("_COMPLETE") or status == "DELETE_SKIPPED"


def failed(status: str) -> bool:
    return "FAILED" in status


def seconds(value: float) -> str:
    """12.3s under a minute, 4m05s above (CloudFormation operations run for minutes)."""
    if value < 60:
        return f"{value:.1f}s"
    minutes, rest = divmod(int(value), 60)
    return f"{minutes}m{rest:02d}s"


@dataclass
class Row:
    stack: str
    resource: str
    type: str
    status: str
    reason: str
    began: datetime.datetime
    last: datetime.datetime

    def elapsed(self, at: datetime.datetime) -> float:
        end = at if self.status.endswith("_IN_PROGRESS") else self.last
        return max((end - self.began).total_seconds(), 0.0)


@dataclass
class Stack:
    """One stack of the operation: what it is doing, and what its counter counts."""

    label: str
    status: str = ""
    planned: set[str] = field(default_factory=set)  # logical IDs the operation will go through
    rows: dict[str, Row] = field(default_factory=dict)  # logical ID -> its latest event

    @property
    def total(self) -> int:
        return len(self.planned | set(self.rows))

    @property
    def done(self) -> int:
        finished = sum(done(row.status) for row in self.rows.values())
        if self.status == "DELETE_COMPLETE":  # what a deleted stack kept (DeletionPolicy Retain) is out of it too
            finished += len(self.planned - set(self.rows))
        return finished


def holding(target: Target, stack_id: str) -> set[str]:
    """The logical IDs a stack holds now: what its delete will go through."""
    try:
        return {item["LogicalResourceId"] for page in target.client("cloudformation").get_paginator(
            "list_stack_resources").paginate(StackName=stack_id) for item in page["StackResourceSummaries"]
                if item["ResourceStatus"] != "DELETE_COMPLETE"}
    except ClientError:
        return set()


class Region:
    """The part of a terminal a live view redraws in place (rich's Live): only when a line changed,
    never taller than the screen, never shrinking while it runs (so nothing jumps), and gone when it
    stops (transient: the view's summary takes its place). The stack view here and the rollout view
    (rollouts.py) both draw through it."""

    def __init__(self, out):
        from rich.console import Console

        self.console = Console(file=out)
        self.live = None
        self.drawn: list[str] = []
        self.height = 0  # lines the region has reached

    def start(self) -> None:
        from rich.live import Live

        self.live = Live(console=self.console, auto_refresh=False, transient=True, vertical_overflow="crop",
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def draw(self, lines_for: Callable[[int], list[str]]) -> None:
        """Redraw with `lines_for(height)`, the lines that fit in `height` rows."""
        from rich.text import Text

        width, rows = self.console.size
        height = max(rows - 1, 1)  # one line for the cursor below the region
        lines = [line[:width - 1] for line in lines_for(height)]
        self.height = min(max(self.height, len(lines)), height)
        lines += [""] * (self.height - len(lines))
        if lines == self.drawn:
            return
        self.drawn = lines
        self.live.update(Text("\n".join(lines), no_wrap=True, overflow="crop"), refresh=True)

    def stop(self) -> None:
        if self.live:
            self.live.stop()
            self.live = None


class View:
    def __init__(self, target: Target, stack_id: str, name: str, since: datetime.datetime, out=None,
                 note: str = "", planned: set[str] | None = None, beside=None):
        self.target = target
        self.beside = beside  # a rollouts.Rollout followed with the stack: polled here, drawn below it
        self.since = since
        self.out = out or sys.stdout
        self.name = name
        self.note = note  # what this operation is to the user, e.g. "retry 2 of 3"
        self.labels = {stack_id: name}  # stack id -> what the user calls it (root name / nested logical id)
        # `planned`: the root's resources read before a delete began (once it has, they may be gone)
        self.stacks: dict[str, Stack] = {name: Stack(name, planned=set(planned or ()))}
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.live: Region | None = None  # on a terminal, while it runs
        self.interval = 0.2 if target.emulated else 5

    # --- the operation ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.note:
            print(f"{self.name}: {self.note}", file=self.out, flush=True)
        if self.out.isatty():
            self.live = Region(self.out)
            self.live.start()
            if self.beside is not None:
                self.beside.quiet = True  # its lines are drawn in this region

    def stop(self, interrupted: bool = False) -> None:
        if self.live:
            self.live.stop()
            self.live = None
        for line in self.summary(interrupted):
            print(line, file=self.out)
        self.out.flush()

    def poll(self) -> None:
        with self.lock:
            polled: set[str] = set()
            while set(self.labels) - polled:  # a nested stack found in this poll is read in it too
                for stack_id in [s for s in list(self.labels) if s not in polled]:
                    polled.add(stack_id)
                    for event in self._new_events(stack_id):
                        self._record(stack_id, event)
        if self.beside is not None:
            try:
                self.beside.poll()
            except (ClientError, BotoCoreError):
                pass  # ECS not answering this once: the next poll looks again
        with self.lock:
            if self.live:
                self.live.draw(self.region)

    def _new_events(self, stack_id: str) -> list[dict]:
        fresh = []
        try:
            for page in self.target.client("cloudformation").get_paginator("describe_stack_events").paginate(
                    StackName=stack_id):
                for event in page["StackEvents"]:
                    if event["Timestamp"] < self.since or event["EventId"] in self.seen:
                        return fresh[::-1]
                    fresh.append(event)
        except ClientError:
            return []  # a nested stack not yet readable: the next poll gets it
        return fresh[::-1]

    def _record(self, stack_id: str, event: dict) -> None:
        self.seen.add(event["EventId"])
        physical = event.get("PhysicalResourceId") or ""
        if event["ResourceType"] == STACK_TYPE and physical.startswith("arn:") and physical not in self.labels \
                and physical != stack_id:
            self.labels[physical] = event["LogicalResourceId"]
            self.stacks.setdefault(event["LogicalResourceId"], Stack(event["LogicalResourceId"]))
        label = self.labels[stack_id]
        stack = self.stacks[label]
        status, reason, when = event["ResourceStatus"], event.get("ResourceStatusReason") or "", event["Timestamp"]
        if physical == stack_id or (event["ResourceType"] == STACK_TYPE and event["LogicalResourceId"] == label):
            if not stack.status and not stack.planned:
                stack.planned = self._planned(stack_id, status)
            stack.status = status
        else:
            row = stack.rows.get(event["LogicalResourceId"])
            if row is None:
                stack.rows[event["LogicalResourceId"]] = Row(label, event["LogicalResourceId"], event["ResourceType"],
                                                             status, reason, when, when)
            else:
                row.status, row.reason, row.last = status, reason, when
        if not self.live:
            elapsed = (_now() - self.since).total_seconds()
            print(f"{seconds(elapsed):>7}  {stack.done:>3}/{stack.total:<3} {label:24} "
                  f"{event['LogicalResourceId']:32} {status:20} {reason}".rstrip(), file=self.out, flush=True)

    def _planned(self, stack_id: str, status: str) -> set[str]:
        """The resources a create or delete of this stack goes through (an update: those it touches)."""
        cfn = self.target.client("cloudformation")
        try:
            if status == "CREATE_IN_PROGRESS":
                body = cfn.get_template(StackName=stack_id)["TemplateBody"]
                if isinstance(body, str):  # boto3 parses a JSON body; these templates are YAML, long-form only
                    body = templates.parse(body)
                return {name for name, resource in (body.get("Resources") or {}).items()
                        if isinstance(resource, dict) and "Condition" not in resource}
            if status == "DELETE_IN_PROGRESS":
                return holding(self.target, stack_id)
        except (ClientError, yaml.YAMLError, AttributeError):
            pass  # the counter then counts what the events show
        return set()

    # --- what is shown ---------------------------------------------------------------------------

    def counters(self) -> tuple[int, int]:
        return (sum(s.done for s in self.stacks.values()), sum(s.total for s in self.stacks.values()))

    def region(self, height: int) -> list[str]:
        """The live region: a header, the stacks' counters, the resources in progress or failed."""
        at = _now()
        finished, total = self.counters()
        root = self.stacks[self.name]
        lines = [f"{self.name}: {root.status or 'starting'}, {finished}/{total} resources, "
                 f"{seconds((at - self.since).total_seconds())}" + (f" ({self.note})" if self.note else "")]
        # Stacks and resources still at work or failed; what is done is in the header's counter.
        lines += [f"  {s.label:24} {s.done:>3}/{s.total:<3} {s.status}" for s in self.stacks.values()
                  if not done(s.status)]
        # A nested stack is a row of its parent until its own events are read (then it has its line above).
        busy = [row for s in self.stacks.values() for row in s.rows.values()
                if (failed(row.status) or row.status.endswith("_IN_PROGRESS"))
                and not (row.type == STACK_TYPE and self.stacks.get(row.resource, Stack("")).status)]
        busy.sort(key=lambda row: (not failed(row.status), row.began))
        room = max(height - len(lines), 0)
        shown = busy if len(busy) <= room else busy[:max(room - 1, 0)]
        lines += [f"  {row.stack:18} {row.resource:30} {row.status:20} {seconds(row.elapsed(at)):>7}  {row.reason}"
                  for row in shown]
        if len(shown) < len(busy):
            lines.append(f"  ... and {len(busy) - len(shown)} more in progress")
        if self.beside is not None:
            lines += self.beside.lines(height - len(lines))
        return lines[:height]

    def summary(self, interrupted: bool = False) -> list[str]:
        """What stays on the screen: one line per stack, then every failure with its whole reason."""
        at = _now()
        finished, total = self.counters()
        root = self.stacks[self.name]
        state = "interrupted; so far" if interrupted else root.status or "no event seen"
        lines = [f"{self.name}: {state}: {finished}/{total} resources in {plural(len(self.stacks), 'stack')}, "
                 f"{seconds((at - self.since).total_seconds())}" + (f" ({self.note})" if self.note else "")]
        if len(self.stacks) > 1 or interrupted:
            lines += [f"  {s.label:24} {s.done:>3}/{s.total:<3} {s.status}" for s in self.stacks.values()]
        for s in self.stacks.values():
            for row in s.rows.values():
                if interrupted and row.status.endswith("_IN_PROGRESS"):
                    lines.append(f"  still {row.status}: {row.stack} / {row.resource} ({row.type})")
        failures = [row for s in self.stacks.values() for row in s.rows.values() if failed(row.status)]
        for row in failures:
            lines.append(f"  {row.status}: {row.stack} / {row.resource} ({row.type}): {row.reason}")
        return lines
