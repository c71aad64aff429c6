"""The live view of a stack operation, as a person sees it in a terminal (tmux) and as a log reads it.

On the emulator a deploy is over in seconds, so CloudFormation is held before it creates one
resource (the emulator's `hold`): the view is read while the operation is really in progress.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest
import tmux
from helpers import ROOT

TERMINAL = pytest.mark.skipif(not tmux.TMUX, reason="tmux is not installed")
# YES=1 in the terminal: the approval step (test_approval.py) would otherwise ask before the root is created.

STACK = "dks"
# The root's nested stacks, as built: the root's own counter counts them.
NESTED = (ROOT / "build" / "main.yaml").read_text().count("Type: AWS::CloudFormation::Stack")
HEADER = re.compile(r"^dks: \w+_IN_PROGRESS, (\d+)/(\d+) resources, (\d+\.\d)s")
SUMMARY = re.compile(rf"^dks: CREATE_COMPLETE: (\d+)/(\d+) resources in {NESTED + 1} stacks, ")
HELD = "DksApiService"


def elapsed(screen: list[str]) -> float:
    """The seconds the header of a screen shows."""
    return next(float(HEADER.match(row).group(3)) for row in screen if HEADER.match(row))


@pytest.fixture
def held(emulator):
    hold = emulator.faults.hold(resource=HELD)
    yield hold
    hold.release()


@TERMINAL
@pytest.mark.parametrize("height", [30, 12])
def test_the_live_view_counts_per_stack_fits_the_screen_and_ends_in_a_summary(aws, tmp_path, held, height):
    pane = tmux.Pane(tmp_path, tmux.script("deploy"), width=100, height=height, STACK=STACK, SKIP_IMAGES="1",
                     YES="1")
    try:
        assert held.wait(120), "\n".join(pane.history())
        seen = [pane.until(HEADER.pattern)]
        # A few redraws later the elapsed time has moved on; on a loaded machine a redraw can come late, so wait
        # for it (up to 30 s) rather than for a fixed time.
        deadline = time.monotonic() + 30
        while True:
            time.sleep(0.5)
            later = pane.until(HEADER.pattern)
            if elapsed(later) >= elapsed(seen[0]) + 1 or time.monotonic() > deadline:
                break
        seen.append(later)
        for screen in seen:
            assert len(screen) <= height
            header = next(HEADER.match(row) for row in screen if HEADER.match(row))
            finished, total = int(header.group(1)), int(header.group(2))
            assert 0 < finished < total, screen
            # The stack at work shows its own counter (the root: its nested stacks) and what is in progress;
            # stacks already done are only in the header's counter.
            root = [re.match(rf"^  dks +(\d+)/{NESTED} +CREATE_IN_PROGRESS$", row) for row in screen]
            assert any(m and 0 < int(m.group(1)) < NESTED for m in root), "\n".join(screen)
            assert any(re.match(r"^  dks +\w+Stack +CREATE_IN_PROGRESS +\d+\.\ds", row) for row in screen)
            assert not any(re.match(r"^  NetworkStack +", row) for row in screen), "done: not listed"
        assert elapsed(seen[1]) >= elapsed(seen[0]) + 1, "the elapsed time moves on while the view waits"
        held.release()
        assert pane.exit_code() == 0, "\n".join(pane.history())
        final = pane.screen()
        summary = [row for row in final if SUMMARY.match(row)]
        assert summary or height < 30, "the summary is on the last screen:\n" + "\n".join(final)
        history = pane.history()
        (line,) = [row for row in history if SUMMARY.match(row)]
        done, total = SUMMARY.match(line).groups()
        assert done == total and int(total) > 50
        # The live region never scrolled: no copy of it is left above the summary.
        assert not [row for row in history if HEADER.match(row)], "\n".join(history)
    finally:
        pane.close()


@TERMINAL
def test_ctrl_c_leaves_the_state_so_far_then_the_interrupted_line(aws, tmp_path, held):
    pane = tmux.Pane(tmp_path, tmux.script("deploy"), width=100, height=30, STACK=STACK, SKIP_IMAGES="1", YES="1")
    try:
        assert held.wait(120), "\n".join(pane.history())
        pane.until(HEADER.pattern)
        pane.keys("C-c")
        assert pane.exit_code() == 130
        history = pane.history()
        interrupted = next(i for i, row in enumerate(history) if row.startswith("interrupted:"))
        state = next(i for i, row in enumerate(history) if row.startswith("dks: interrupted; so far: "))
        assert state < interrupted
        counted = re.match(r"dks: interrupted; so far: (\d+)/(\d+) resources", history[state])
        assert 0 < int(counted.group(1)) < int(counted.group(2)), history[state]
        between = history[state + 1:interrupted]
        assert any(re.match(rf"^  dks +\d+/{NESTED} +CREATE_IN_PROGRESS", row) for row in between), between
        assert any(re.match(r"^  NetworkStack +23/23 +CREATE_COMPLETE", row) for row in between), between
        assert any(row.startswith("  still CREATE_IN_PROGRESS: ") for row in between), between
        assert not [row for row in history if HEADER.match(row)], "no live region left behind"
    finally:
        pane.close()


def test_without_a_terminal_each_event_says_how_long_the_operation_has_run(aws, held):
    timer = threading.Timer(2.0, held.release)  # the held resource takes two seconds
    deploy = subprocess.Popen([sys.executable, "scripts/deploy.py"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env={**os.environ, "STACK": STACK, "SKIP_IMAGES": "1"})
    try:
        assert held.wait(120)
        timer.start()
        out, err = deploy.communicate(timeout=300)
    finally:
        timer.cancel()
        held.release()
    assert deploy.returncode == 0, out + err
    events = [re.match(r"^ *(\d+\.\d)s +(\d+)/(\d+) +(\S+) +(\S+) +(\S+)", line) for line in out.splitlines()]
    services = [(float(m.group(1)), m.group(5), m.group(6)) for m in events if m and m.group(4) == "ServicesStack"]
    assert services, out
    completed = [when for when, resource, status in services if resource == HELD and status == "CREATE_COMPLETE"]
    assert completed and completed[0] >= 2.0, services
    assert max(float(m.group(1)) for m in events if m) > 0
    counters = [(int(m.group(2)), int(m.group(3))) for m in events if m and m.group(4) == "ServicesStack"]
    assert counters[-1][0] == counters[-1][1] == 9, counters


def test_a_delete_that_succeeds_on_retry_says_so(aws):
    deployed = subprocess.run([sys.executable, "scripts/deploy.py"], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "STACK": STACK, "SKIP_IMAGES": "1"}, timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    # An instance registered by hand keeps Cloud Map from deleting the service: the first delete fails.
    sd = aws.client("servicediscovery")
    (service,) = [s for s in sd.list_services()["Services"] if s["Name"] == "dks-db"]
    sd.register_instance(ServiceId=service["Id"], InstanceId="by-hand", Attributes={"AWS_INSTANCE_IPV4": "10.20.0.9"})
    gone = subprocess.run([sys.executable, "scripts/cleanup.py"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "STACK": STACK, "YES": "1"}, timeout=300)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    lines = gone.stdout.splitlines()
    failed = lines.index("dks: DELETE_FAILED (attempt 1 of 3); held by:")
    retry = lines.index("dks: retry 1 of 2")
    assert failed < retry
    assert any(re.match(r"^dks: DELETE_COMPLETE: (\d+)/\1 resources in \d+ stacks, .* \(retry 1 of 2\)$", line)
               for line in lines[retry:]), lines[retry:]
    assert "dks: deleted on retry 1: the DELETE_FAILED above is fixed" in lines
