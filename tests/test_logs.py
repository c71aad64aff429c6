"""make logs on the emulator: events the test writes into the services' log groups come back interleaved by
time, each with its service; SERVICE, FILTER and SINCE narrow them; FOLLOW=1 prints what arrives until Ctrl-C;
the service is coloured on a terminal and nowhere else."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
import tmux
from helpers import ROOT, as_typed

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
    t = now_ms()
    write(deployed, "dks-api", (t - 50_000, "api started"), (t - 30_000, "api GET /actuator/health 200"),
          (t - 10_000, "api ERROR connection refused"))
    write(deployed, "dks-db", (t - 40_000, "db ready to accept connections"), (t - 20_000, "db ERROR deadlock"))
    write(deployed, "dks-db", (t - 3 * 3600_000, "db from three hours ago"))

    done = cli("logs", STACK=STACK)
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout) == [("dks-api", "api started"), ("dks-db", "db ready to accept connections"),
                                  ("dks-api", "api GET /actuator/health 200"), ("dks-db", "db ERROR deadlock"),
                                  ("dks-api", "api ERROR connection refused")]
    # Padded to the widest service (dks-api and dks-db: 7), so messages line up; no colour on a pipe.
    assert "\x1b[" not in done.stdout
    assert {row.index(" api ") if " api " in row else row.index(" db ") for row in done.stdout.splitlines()} \
        == {len("2026-01-01T00:00:00.000Z dks-api")}

    narrowed = cli("logs", "--service", "dks-db", STACK=STACK)
    assert lines(narrowed.stdout) == [("dks-db", "db ready to accept connections"), ("dks-db", "db ERROR deadlock")]

    filtered = cli("logs", STACK=STACK, FILTER="ERROR")
    assert lines(filtered.stdout) == [("dks-db", "db ERROR deadlock"), ("dks-api", "api ERROR connection refused")]
    phrase = cli("logs", STACK=STACK, FILTER='"connection refused"')
    assert lines(phrase.stdout) == [("dks-api", "api ERROR connection refused")]

    recent = cli("logs", STACK=STACK, SINCE="25s")
    assert lines(recent.stdout) == [("dks-db", "db ERROR deadlock"), ("dks-api", "api ERROR connection refused")]
    older = cli("logs", STACK=STACK, SERVICE="dks-db", SINCE="4h")
    assert [message for _, message in lines(older.stdout)][0] == "db from three hours ago"
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((t - 35_000) / 1000))
    since_iso = cli("logs", STACK=STACK, SINCE=start + "Z")
    assert [message for _, message in lines(since_iso.stdout)][0] == "api GET /actuator/health 200"


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
