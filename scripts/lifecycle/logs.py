"""make logs: the services' CloudWatch Logs, interleaved by time, one line per event prefixed with its service.

The log groups are found by ownership, never by name: the `AWS::Logs::LogGroup` resources of the
deployment's stacks whose logical ID is `<Service>LogGroup` (templates_src/stacks/services.py), for the
services the root stack's ServiceNames output lists. Events come from FilterLogEvents, one group at
a time, paginated, then merged by timestamp; FILTER is CloudWatch's filter pattern, passed through.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html

Following (FOLLOW=1) uses CloudWatch Logs Live Tail where the endpoint offers it: one session per 10
log groups (the most a session takes), an update a second, at most 500 events an update (sampled
above that), closed by AWS after three hours (then started again here); a session is charged by
the minute. https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartLiveTail.html
Where it is refused or unreachable (no logs:StartLiveTail permission, a partition without it, the
local emulator), FilterLogEvents is polled instead, each window overlapping the last by OVERLAP so
an event ingested late is still found, and each event printed once (by its eventId).

Ctrl-C ends following with exit 0: it is the only way to stop it, not a failure. A listing without
FOLLOW that is interrupted is cut short, and exits 130 like every other command.
"""
from __future__ import annotations

import datetime
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lifecycle import stacks
from lifecycle.aws import InputError, Target, error_code, missing
from templates_src.app.config import logical_id

DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
POLL = 2.0  # seconds between FilterLogEvents calls when Live Tail is not available
OVERLAP = 120_000  # ms each polled window reaches back: events are often ingested seconds after their timestamp
LIVE_TAIL_GROUPS = 10  # log groups one Live Tail session takes (StartLiveTail, logGroupIdentifiers)
# Colours a service keeps from one run to the next: its place in the root stack's ServiceNames.
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta", "bright_green",
           "bright_yellow", "bright_blue", "bright_red")


@dataclass(frozen=True)
class Group:
    service: str
    name: str
    colour: str


@dataclass(frozen=True)
class Event:
    timestamp: int  # ms since the epoch
    service: str
    message: str
    key: str  # what makes it the same event on a second sight


def since(value: str, now: datetime.datetime | None = None) -> int:
    """SINCE as ms since the epoch: a duration back from now (30s, 10m, 2h, 1d) or an ISO time (UTC unless
    it says otherwise)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    text = value.strip()
    match = DURATION.match(text)
    if match:
        return int((now - datetime.timedelta(**{UNITS[match.group(2)]: int(match.group(1))})).timestamp() * 1000)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"SINCE={value!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO time "
                         f"(2026-01-31T09:30:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1000)


def groups(target: Target, service: str | None = None) -> list[Group]:
    """The services' log groups, as the deployment's stacks made them, in start order."""
    root = stacks.describe(target, target.stack)
    if root is None:
        raise InputError(f"{target.stack}: not deployed in {target.region} (no stack {target.stack})")
    services = stacks.service_names(stacks.outputs(root))
    made = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in stacks.resources(target, root["StackId"])
            if r["ResourceType"] == "AWS::Logs::LogGroup" and r.get("PhysicalResourceId")}
    found = [Group(name, made[f"{logical_id(name)}LogGroup"], PALETTE[index % len(PALETTE)])
             for index, name in enumerate(services) if f"{logical_id(name)}LogGroup" in made]
    if service is None:
        return found
    chosen = [group for group in found if group.service == service]
    if not chosen:
        raise InputError(f"SERVICE={service!r} is not a service of {target.stack}; its services are "
                         f"{', '.join(group.service for group in found) or 'none'}")
    return chosen


def fetch(target: Target, chosen: list[Group], start: int, pattern: str | None,
          gone: set[str] | None = None) -> list[Event]:
    """Every event of the groups from `start` on, matching `pattern`, oldest first. A group that no longer
    exists is said once (`gone`: those said already) and skipped."""
    gone = set() if gone is None else gone
    paginator = target.client("logs").get_paginator("filter_log_events")
    found = []
    for group in chosen:
        if group.name in gone:
            continue
        try:
            for page in paginator.paginate(logGroupName=group.name, startTime=start,
                                           **({"filterPattern": pattern} if pattern else {})):
                found += [Event(e["timestamp"], group.service, e["message"], f"{group.name}/{e['eventId']}")
                          for e in page["events"]]
        except ClientError as error:
            if pattern and error_code(error) == "InvalidParameterException":
                raise InputError(f"FILTER={pattern!r} is not a filter pattern CloudWatch Logs accepts: "
                                 f"{error.response['Error'].get('Message', '')}".rstrip(": ")) from None
            if not missing(error):
                raise
            # A log group deleted by hand: the others still have something to say.
            print(f"logs: log group {group.name} of {group.service} is gone", file=sys.stderr)
            gone.add(group.name)
    return sorted(found, key=lambda e: e.timestamp)  # stable: each group's own order kept within a millisecond


class ReaderGone(Exception):
    """The pipe stdout writes to was closed by its reader."""


class Printer:
    """One line per event: time (UTC), service padded to the widest, message; the service coloured on a
    terminal (rich leaves colour out on a pipe, and when NO_COLOR is set)."""

    def __init__(self, chosen: list[Group], out=None):
        from rich.console import Console

        self.width = max((len(group.service) for group in chosen), default=0)
        self.colours = {group.service: group.colour for group in chosen}

        class Quiet(Console):
            def on_broken_pipe(self) -> None:
                # rich points stdout at /dev/null (so the exit flush does not fail again), then exits 1; the
                # reader leaving is no failure here. https://rich.readthedocs.io/en/latest/console.html
                try:
                    super().on_broken_pipe()
                except SystemExit:
                    raise ReaderGone from None

        self.console = Quiet(file=out or sys.stdout, highlight=False, markup=False, emoji=False, soft_wrap=True)

    def print(self, event: Event) -> None:
        from rich.text import Text

        moment = datetime.datetime.fromtimestamp(event.timestamp / 1000, datetime.timezone.utc)
        line = Text(f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z ")
        line.append(event.service.ljust(self.width), style=self.colours.get(event.service))
        line.append(" " + event.message.rstrip("\n"))
        self.console.print(line)


def run(target: Target, service: str | None, since_text: str, follow: bool, pattern: str | None) -> int:
    start = since(since_text)
    chosen = groups(target, service)
    if not chosen:
        print(f"logs: {target.stack} has no service log group", file=sys.stderr)
        return 0
    printer = Printer(chosen)
    try:
        if not follow:
            shown = 0
            for event in fetch(target, chosen, start, pattern):
                printer.print(event)
                shown += 1
            if not shown:  # a blank screen would leave the reader wondering whether it worked
                print(f"logs: no event since {since_text}{f' matching {pattern!r}' if pattern else ''} in "
                      f"{', '.join(group.service for group in chosen)}", file=sys.stderr)
            return 0
        try:
            why = _live_tail(target, chosen, start, pattern, printer)  # returns only when Live Tail is not available
            _poll(target, chosen, start, pattern, printer, reason=f"Live Tail is not available here: {why}")
        except KeyboardInterrupt:
            print(file=sys.stderr)  # past the ^C the terminal echoed
        return 0
    except ReaderGone:  # `make logs | head`: the reader has what it wanted
        return 0


def _poll(target: Target, chosen: list[Group], start: int, pattern: str | None, printer: Printer,
          reason: str = "") -> None:
    """FilterLogEvents every POLL seconds, each window from OVERLAP before the last call began, each
    event printed once."""
    seen: dict[str, int] = {}
    gone: set[str] = set()
    announced = False
    while True:
        began = int(time.time() * 1000)
        for event in fetch(target, chosen, start, pattern, gone):
            if event.key not in seen:
                seen[event.key] = event.timestamp
                printer.print(event)
        if not announced:  # after the first answer: a pattern AWS refuses is said before any mode is
            print(f"logs: following by polling every {POLL:g} s{f' ({reason})' if reason else ''}; Ctrl-C stops",
                  file=sys.stderr)
            announced = True
        start = max(start, began - OVERLAP)
        seen = {key: stamp for key, stamp in seen.items() if stamp >= start}  # older ones cannot come back
        time.sleep(POLL)


def _live_tail(target: Target, chosen: list[Group], start: int, pattern: str | None, printer: Printer) -> str:
    """Follow with Live Tail until Ctrl-C; returns, saying why, only when the endpoint does not offer it."""
    logs = target.client("logs")
    arns = {}
    for group in chosen:
        described = logs.describe_log_groups(logGroupNamePrefix=group.name).get("logGroups", [])
        arn = next((g["arn"] for g in described if g["logGroupName"] == group.name), None)
        if arn:
            arns[arn.removesuffix(":*")] = group  # StartLiveTail refuses an ARN ending in *
    if not arns:
        return "none of the log groups exists"
    client = live_tail_client(target)
    events: queue.Queue = queue.Queue()
    streams = []
    try:
        batches = [list(arns)[i:i + LIVE_TAIL_GROUPS] for i in range(0, len(arns), LIVE_TAIL_GROUPS)]
        for batch in batches:
            streams.append(_session(client, batch, pattern))
    except (ClientError, BotoCoreError) as error:
        for stream in streams:
            stream.close()
        return _why(error)
    # The sessions are open before the backlog is read: an event between the two is in one or both, never lost.
    shown = set()
    backlog = fetch(target, chosen, start, pattern)
    for event in backlog:
        printer.print(event)
        shown.add((event.service, event.timestamp, event.message))
    print(f"logs: following with CloudWatch Logs Live Tail ({len(streams)} "
          f"session{'s' if len(streams) > 1 else ''}); Ctrl-C stops", file=sys.stderr)
    stop = threading.Event()
    for batch, stream in zip(batches, streams):
        threading.Thread(target=_read, args=(client, batch, pattern, stream, events, stop), daemon=True).start()
    sampled = False
    try:
        while True:
            try:
                item = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item, Exception):
                raise item
            if item.get("sessionMetadata", {}).get("sampled") and not sampled:
                print("logs: more than 500 events a second: Live Tail shows a sample", file=sys.stderr)
                sampled = True
            for found in item.get("sessionResults", []):
                group = arns.get(found["logGroupIdentifier"].removesuffix(":*"))
                if group is None:
                    continue
                event = Event(found["timestamp"], group.service, found["message"], "")
                if (event.service, event.timestamp, event.message) not in shown:
                    printer.print(event)
    finally:
        stop.set()  # before the streams close: a reader whose stream ends must not start a session again
        for stream in streams:
            stream.close()


def live_tail_client(target: Target):
    """A logs client for StartLiveTail: one attempt, no retry, so an endpoint without Live Tail costs a
    second, not botocore's backoff."""
    return target.session.client("logs", config=Config(retries={"max_attempts": 1}, connect_timeout=5))


def _session(client, batch: list[str], pattern: str | None):
    answer = client.start_live_tail(logGroupIdentifiers=batch,
                                    **({"logEventFilterPattern": pattern} if pattern else {}))
    return answer["responseStream"]


def _read(client, batch: list[str], pattern: str | None, stream, events: queue.Queue,
          stop: threading.Event) -> None:
    """Hand a session's updates to the main thread; a session AWS ends (after three hours) is started again."""
    while not stop.is_set():
        try:
            for item in stream:
                if "sessionUpdate" in item:
                    events.put(item["sessionUpdate"])
        except ClientError as error:
            if error_code(error) != "SessionTimeoutException" and not stop.is_set():
                events.put(error)
                return
        except Exception as error:  # noqa: BLE001 (raised again in the main thread, which says it)
            if not stop.is_set():
                events.put(error)
            return
        if stop.is_set():
            return
        try:
            stream = _session(client, batch, pattern)
        except Exception as error:  # noqa: BLE001
            events.put(error)
            return


def _why(error: Exception) -> str:
    if isinstance(error, ClientError):
        return f"{error_code(error)}: {error.response.get('Error', {}).get('Message', '')}".rstrip(": ")
    return str(error)
