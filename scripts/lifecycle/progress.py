"""A live view of a stack operation: every resource of the root and its nested stacks.

On a terminal, a table redrawn in place (rich): stack, resource, type, status, reason, elapsed.
Elsewhere (CI, a pipe), one plain line per new event, so a log reads as the operation went.
"""
from __future__ import annotations

import datetime
import sys
import threading
from dataclasses import dataclass

from botocore.exceptions import ClientError

from lifecycle.aws import Target


@dataclass
class Row:
    stack: str
    resource: str
    type: str
    status: str
    reason: str
    began: datetime.datetime
    last: datetime.datetime

    @property
    def elapsed(self) -> float:
        end = self.last if not self.status.endswith("_IN_PROGRESS") else datetime.datetime.now(datetime.timezone.utc)
        return (end - self.began).total_seconds()


class View:
    def __init__(self, target: Target, stack_id: str, name: str, since: datetime.datetime, out=None):
        self.target = target
        self.since = since
        self.out = out or sys.stdout
        self.labels = {stack_id: name}  # stack id -> what the user calls it (root name / nested logical id)
        self.seen: set[str] = set()
        self.rows: dict[tuple[str, str], Row] = {}
        self.lock = threading.Lock()
        self.live = None
        self.interval = 0.2 if target.emulated else 5

    def start(self) -> None:
        if self.out.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._table(), console=Console(file=self.out), refresh_per_second=4, transient=False,
                             vertical_overflow="visible")
            self.live.start()

    def stop(self) -> None:
        if self.live:
            self.live.update(self._table())
            self.live.stop()
            self.live = None

    def poll(self) -> None:
        with self.lock:
            polled: set[str] = set()
            while set(self.labels) - polled:  # a nested stack found in this poll is read in it too
                for stack_id in [s for s in list(self.labels) if s not in polled]:
                    polled.add(stack_id)
                    for event in self._new_events(stack_id):
                        self._record(stack_id, event)
            if self.live:
                self.live.update(self._table())

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
        if (event["ResourceType"] == "AWS::CloudFormation::Stack" and physical.startswith("arn:")
                and physical not in self.labels):
            self.labels[physical] = event["LogicalResourceId"]
        label = self.labels[stack_id]
        key = (label, event["LogicalResourceId"])
        row = self.rows.get(key)
        when = event["Timestamp"]
        reason = event.get("ResourceStatusReason") or ""
        if row is None:
            row = self.rows[key] = Row(label, event["LogicalResourceId"], event["ResourceType"],
                                       event["ResourceStatus"], reason, when, when)
        else:
            row.status, row.reason, row.last = event["ResourceStatus"], reason, when
        if not self.live:
            offset = (when - self.since).total_seconds()
            print(f"{offset:7.1f}s  {label:24} {event['LogicalResourceId']:32} {event['ResourceStatus']:20} "
                  f"{reason}".rstrip(), file=self.out, flush=True)

    def _table(self):
        from rich.table import Table

        table = Table(title=f"{self.labels[next(iter(self.labels))]}: {len(self.rows)} resources", expand=False)
        for column in ("stack", "resource", "type", "status", "reason", "elapsed"):
            table.add_column(column, overflow="fold")
        for row in self.rows.values():
            colour = "red" if "FAILED" in row.status else "green" if row.status.endswith("_COMPLETE") else "yellow"
            table.add_row(row.stack, row.resource, row.type.removeprefix("AWS::"), f"[{colour}]{row.status}[/]",
                          row.reason[:80], f"{row.elapsed:.0f}s")
        return table
