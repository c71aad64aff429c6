"""make logs on the emulator: events the test writes into the services' log groups come back interleaved by
time, each with its service; SERVICE, FILTER and SINCE narrow them; FOLLOW=1 prints what arrives until Ctrl-C;
the service is coloured on a terminal and nowhere else."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import tmux
from botocore.exceptions import ClientError
from helpers import ROOT, as_typed, interruptible

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import logs  # noqa: E402
from lifecycle.aws import target  # noqa: E402

STACK = "dks"
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) +(.*)$")
TERMINAL = pytest.mark.skipif(not tmux.TMUX, reason="tmux is not installed")


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "scripts/ecs-app", *args], cwd=ROOT, capture_output=True, text=True,
                          env=as_typed(**env), timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def deployed(aws):
    done = cli("deploy", STACK=STACK, SKIP_IMAGES="1", YES="1")
    assert done.returncode == 0, done.stdout + done.stderr
    return aws


def group(service: str) -> str:
    return f"/ecs/{STACK}/{service}"


def write(aws, service: str, *events: tuple[int, str], stream: str = "app/test") -> None:
    """put_log_events into the service's group (ms timestamps), as the awslogs driver would."""
    logs = aws.client("logs")
    try:
        logs.create_log_stream(logGroupName=group(service), logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.put_log_events(logGroupName=group(service), logStreamName=stream,
                        logEvents=[{"timestamp": stamp, "message": message} for stamp, message in events])


def now_ms() -> int:
    return int(time.time() * 1000)


def lines(output: str) -> list[tuple[str, str]]:
    """(service, message) of every event line, in the order printed."""
    found = [LINE.match(row) for row in output.splitlines()]
    assert all(found), output
    return [(m.group(2), m.group(3)) for m in found]


def test_events_come_interleaved_by_time_with_their_service_and_narrow_by_service_filter_and_since(deployed):
    t, minute = now_ms(), 60_000
    write(deployed, "dks-api", (t - 50 * minute, "api started"), (t - 30 * minute, "api GET /actuator/health 200"),
          (t - 5 * minute, "api ERROR connection refused"))
    write(deployed, "dks-db", (t - 40 * minute, "db ready to accept connections"),
          (t - 20 * minute, "db ERROR deadlock"))
    write(deployed, "dks-db", (t - 180 * minute, "db from three hours ago"))

    done = cli("logs", STACK=STACK, SINCE="1h")
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout) == [("dks-api", "api started"), ("dks-db", "db ready to accept connections"),
                                  ("dks-api", "api GET /actuator/health 200"), ("dks-db", "db ERROR deadlock"),
                                  ("dks-api", "api ERROR connection refused")]
    # Padded to the widest service (dks-api and dks-db: 7), so messages line up; no colour on a pipe.
    assert "\x1b[" not in done.stdout
    assert {row.index(" api ") if " api " in row else row.index(" db ") for row in done.stdout.splitlines()} \
        == {len("2026-01-01T00:00:00.000Z dks-api")}

    assert lines(cli("logs", STACK=STACK).stdout) == [("dks-api", "api ERROR connection refused")]  # the last 10m
    narrowed = cli("logs", "--service", "dks-db", STACK=STACK, SINCE="1h")
    assert lines(narrowed.stdout) == [("dks-db", "db ready to accept connections"), ("dks-db", "db ERROR deadlock")]

    filtered = cli("logs", STACK=STACK, SINCE="1h", FILTER="ERROR")
    assert lines(filtered.stdout) == [("dks-db", "db ERROR deadlock"), ("dks-api", "api ERROR connection refused")]
    phrase = cli("logs", STACK=STACK, SINCE="1h", FILTER='"connection refused"')
    assert lines(phrase.stdout) == [("dks-api", "api ERROR connection refused")]
    nothing = cli("logs", STACK=STACK, SINCE="1h", FILTER="deadbeef")  # said, not a blank screen
    assert nothing.returncode == 0 and nothing.stdout == ""
    assert nothing.stderr == "logs: no event since 1h matching 'deadbeef' in dks-db, dks-api, dks-ui\n"

    recent = cli("logs", STACK=STACK, SINCE="25m")
    assert lines(recent.stdout) == [("dks-db", "db ERROR deadlock"), ("dks-api", "api ERROR connection refused")]
    older = cli("logs", STACK=STACK, SERVICE="dks-db", SINCE="4h")
    assert [message for _, message in lines(older.stdout)][0] == "db from three hours ago"
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((t - 35 * minute) / 1000))
    since_iso = cli("logs", STACK=STACK, SINCE=start + "Z")
    assert [message for _, message in lines(since_iso.stdout)][0] == "api GET /actuator/health 200"

    # A reader that leaves early (head) ends it quietly, with more printed than a pipe holds (64 KiB).
    write(deployed, "dks-ui", *[(t - minute + i, f"ui request {i:05} " + "x" * 60) for i in range(3000)])
    pipeline = f"{sys.executable} scripts/ecs-app logs --since 1h | head -1"
    head = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], cwd=ROOT, capture_output=True, text=True, env=as_typed(STACK=STACK), timeout=600)
    assert head.returncode == 0 and head.stderr == "", head.stderr
    assert lines(head.stdout) == [("dks-api", "api started")]


def test_a_service_or_pattern_that_does_not_exist_is_refused_in_one_sentence(deployed):
    unknown = cli("logs", STACK=STACK, SERVICE="dks-web")
    assert unknown.returncode == 2, unknown.stderr
    assert unknown.stderr == "error: SERVICE='dks-web' is not a service of dks; its services are dks-db, dks-api, " \
                             "dks-ui\n"
    refused = cli("logs", STACK=STACK, FILTER='"connection refused')
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: FILTER='\"connection refused' is not a filter pattern CloudWatch Logs "
                                     "accepts: Invalid filter pattern") and refused.stderr.count("\n") == 1
    assert refused.stdout == ""


@pytest.mark.parametrize("value", ["yesterday", "10", "5 minutes", "-10m", "2026-13-01"])
def test_since_takes_a_duration_or_an_iso_time_and_nothing_else(aws, value):
    done = cli("logs", STACK=STACK, SINCE=value)
    assert done.returncode == 2
    assert done.stderr == f"error: SINCE={value!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO time " \
                          "(2026-01-31T09:30:00Z)\n"


def test_a_stack_that_is_not_deployed_is_said_as_status_says_it(aws):
    done = cli("logs", STACK="nothing-here")
    assert done.returncode == 2
    assert done.stderr == "error: nothing-here: not deployed in us-east-1 (no stack nothing-here)\n"


def test_follow_prints_new_events_once_each_and_ctrl_c_ends_it_cleanly(deployed):
    t = now_ms()
    write(deployed, "dks-api", (t - 5_000, "api before following"))
    follower = subprocess.Popen([sys.executable, "scripts/ecs-app", "logs"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=as_typed(STACK=STACK, FOLLOW="1"),
                                preexec_fn=interruptible)
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(iter(follower.stdout.readline, "")), daemon=True)
    reader.start()

    def until(message: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(row.endswith(f" {message}\n") for row in printed):
            assert time.monotonic() < deadline and follower.poll() is None, (printed, follower.poll())
            time.sleep(0.1)

    try:
        until("api before following")
        write(deployed, "dks-db", (now_ms(), "db written while following"))
        until("db written while following")
        # Ingested late: its timestamp is already behind the last window's start, but within the overlap.
        write(deployed, "dks-ui", (now_ms() - 30_000, "ui ingested 30 s late"))
        until("ui ingested 30 s late")
        time.sleep(6)  # three more polls (every 2 s) over the same window: nothing is printed twice
        follower.send_signal(signal.SIGINT)
        _, stderr = follower.communicate(timeout=30)
    finally:
        follower.kill()
    reader.join(5)
    assert follower.returncode == 0, stderr
    assert "Traceback" not in stderr and "interrupted" not in stderr
    assert stderr.count("logs: following by polling every 2 s (Live Tail is not available here: ") == 1, stderr
    assert [message for _, message in lines("".join(printed))] == [
        "api before following", "db written while following", "ui ingested 30 s late"]


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def coloured(screen: tmux.Pane) -> list[str]:
    """The pane's rows with their escape codes (capture-pane -e)."""
    return screen._tmux("capture-pane", "-p", "-e", "-t", "t").split("\n")


def terminal(tmp_path, name: str, *args: str, **env: str) -> tmux.Pane:
    """`ecs-app logs ARGS` in a terminal of its own (each pane has its own tmux server under tmp_path/name)."""
    (tmp_path / name).mkdir()
    return tmux.Pane(tmp_path / name, [sys.executable, "scripts/ecs-app", "logs", *args], STACK=STACK, **env)


def colour_of(rows: list[str], service: str) -> str:
    """The SGR parameters the service's name is written in, on its first row."""
    row = next(row for row in rows if service in SGR.sub("", row))
    match = re.search(rf"\x1b\[([0-9;]+)m{re.escape(service)}", row)
    assert match, repr(row)
    return match.group(1)


@TERMINAL
def test_on_a_terminal_each_service_has_its_own_colour_and_ctrl_c_leaves_the_terminal_sane(deployed, tmp_path):
    t = now_ms()
    write(deployed, "dks-api", (t - 2_000, "api line"))
    write(deployed, "dks-db", (t - 1_000, "db line"))
    panes = []
    try:
        every = terminal(tmp_path, "every")
        panes.append(every)
        assert every.exit_code() == 0, "\n".join(every.history())
        rows = coloured(every)
        api, db = colour_of(rows, "dks-api"), colour_of(rows, "dks-db")
        assert api != db
        # The message itself is not coloured: the colour ends with the name (and its padding).
        assert all(SGR.sub("", row).endswith((" api line", " db line")) for row in rows if "line" in row)
        assert all(re.search(r"\x1b\[(0|39)?m {1,2}(api|db) line", row) for row in rows if " line" in row), rows

        # A service keeps its colour when it is shown alone; NO_COLOR turns colour off on a terminal too.
        alone = terminal(tmp_path, "alone", "--service", "dks-db")
        panes.append(alone)
        assert alone.exit_code() == 0
        assert colour_of(coloured(alone), "dks-db") == db
        plain = terminal(tmp_path, "plain", NO_COLOR="1")
        panes.append(plain)
        assert plain.exit_code() == 0
        assert not any(SGR.search(row) for row in coloured(plain) if "line" in row)

        following = terminal(tmp_path, "follow", "--follow")
        panes.append(following)
        following.until(r"^logs: following by polling every 2 s")
        following.keys("C-c")
        assert following.exit_code() == 0, "\n".join(following.history())
        screen = following.screen()
        assert not any("Traceback" in row or "interrupted" in row for row in screen), screen
        exit_row = next(row for row in coloured(following) if "exit=0" in row)
        assert SGR.sub("", exit_row) == "exit=0" and not SGR.search(exit_row), repr(exit_row)
    finally:
        for each in panes:
            each.close()


def test_make_logs_calls_the_command_line_which_offers_its_flags(aws):
    recipe = re.search(r"^logs:.*## (.*)\n\t(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe.group(2) == "@$(CLI) logs"
    assert all(name in recipe.group(1) for name in ("SERVICE=", "SINCE=", "FOLLOW=1", "FILTER="))
    shown = cli("logs", "--help")
    assert shown.returncode == 0 and shown.stdout.startswith("usage: ecs-app logs ")
    options = set(re.findall(r"(--[a-z-]+)", shown.stdout.split("options:", 1)[1].split("exit codes:")[0]))
    assert options == {"--help", "--stack", "--region", "--config", "--service", "--since", "--follow", "--filter"}
    assert "CloudWatch" in shown.stdout  # the description keeps the name's capitals
    through = subprocess.run(["make", "--no-print-directory", "logs"], cwd=ROOT, capture_output=True, text=True,
                             env=as_typed(STACK="nothing-here", SINCE="1h"), timeout=600)
    assert through.stderr.splitlines()[0] == "error: nothing-here: not deployed in us-east-1 (no stack nothing-here)"


class Stream:
    """What botocore's EventStream gives: the session's events, then (until closed) nothing more."""

    def __init__(self, items: list[dict]):
        self.items, self.closed = items, threading.Event()

    def __iter__(self):
        yield from self.items
        self.closed.wait(30)

    def close(self) -> None:
        self.closed.set()


class LiveTail:
    """A logs client with Live Tail (the emulator has none): records each StartLiveTail, answers with a stream."""

    def __init__(self, updates: list[dict]):
        self.updates, self.calls, self.streams = updates, [], []

    def start_live_tail(self, **request):
        if self.calls and len(self.calls) >= 2:  # no session is started again after Ctrl-C
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "again"}}, "StartLiveTail")
        self.calls.append(request)
        self.streams.append(Stream([{"sessionStart": {}}] + [{"sessionUpdate": u} for u in self.updates]
                                   if len(self.calls) == 1 else []))
        return {"responseStream": self.streams[-1]}


class Interrupting(logs.Printer):
    """Ctrl-C once `count` events are printed."""

    def __init__(self, chosen, count: int):
        super().__init__(chosen, out=None)
        self.printed, self.count = [], count

    def print(self, event):
        self.printed.append((event.service, event.message))
        if len(self.printed) == self.count:
            raise KeyboardInterrupt


def test_live_tail_takes_ten_groups_a_session_and_prints_what_the_backlog_did_not(aws, monkeypatch, capsys):
    client = aws.client("logs")
    chosen = [logs.Group(f"svc-{i:02}", f"/ecs/{STACK}/svc-{i:02}", "cyan") for i in range(12)]
    for group in chosen:
        client.create_log_group(logGroupName=group.name)
    t = now_ms()
    client.create_log_stream(logGroupName=chosen[0].name, logStreamName="s")
    client.put_log_events(logGroupName=chosen[0].name, logStreamName="s",
                          logEvents=[{"timestamp": t - 1_000, "message": "ERROR in the backlog"}])
    arn = {g["logGroupName"]: g["arn"].removesuffix(":*") for g in client.describe_log_groups()["logGroups"]}
    tail = LiveTail([
        {"sessionMetadata": {"sampled": False}, "sessionResults": [
            # In the backlog and in the session (it was open first): printed once.
            {"logGroupIdentifier": arn[chosen[0].name], "timestamp": t - 1_000, "message": "ERROR in the backlog"},
            {"logGroupIdentifier": arn[chosen[11].name], "timestamp": t, "message": "ERROR live"}]},
        {"sessionMetadata": {"sampled": True}, "sessionResults": [
            {"logGroupIdentifier": arn[chosen[3].name] + ":*", "timestamp": t + 1, "message": "ERROR sampled"}]},
    ])
    monkeypatch.setattr(logs, "live_tail_client", lambda _: tail)
    printer = Interrupting(chosen, 3)
    with pytest.raises(KeyboardInterrupt):
        logs._live_tail(target(STACK), chosen, t - 60_000, "ERROR", printer)

    assert printer.printed == [("svc-00", "ERROR in the backlog"), ("svc-11", "ERROR live"),
                               ("svc-03", "ERROR sampled")]
    # StartLiveTail takes at most 10 log groups, by ARN without the trailing :*, and the pattern as it is.
    assert [call["logGroupIdentifiers"] for call in tail.calls] == [
        [arn[g.name] for g in chosen[:10]], [arn[g.name] for g in chosen[10:]]]
    assert all(call["logEventFilterPattern"] == "ERROR" for call in tail.calls)
    assert all(stream.closed.is_set() for stream in tail.streams)
    stderr = capsys.readouterr().err
    assert stderr.count("logs: following with CloudWatch Logs Live Tail (2 sessions); Ctrl-C stops") == 1
    assert stderr.count("Live Tail shows a sample") == 1
