"""What a person sees while the lifecycle waits: the wait named, the time so far, and what they can do.

Driven through tmux, as a terminal runs it: a stack held UPDATE_IN_PROGRESS by the emulator (the
update's new listener is held before CloudFormation creates it, and the deploy that started it is
killed), then `make diff` in a tmux pane waits for it. The pane is captured and read.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT

STACK = "dks"
WAITING = re.compile(rf"{STACK}: UPDATE_IN_PROGRESS, waiting for it to end \(((\d+)m)?(\d+)s; Ctrl-C stops waiting "
                     rf"and CloudFormation goes on; make cleanup STACK={STACK} removes it all\)")

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import wait  # noqa: E402


class Out(io.StringIO):
    def __init__(self, terminal: bool):
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_without_a_terminal_the_wait_is_a_line_at_once_and_again_every_so_often(monkeypatch):
    monkeypatch.setattr(wait, "EVERY", 0.5)
    out = Out(terminal=False)
    with wait.shown("dks: UPDATE_IN_PROGRESS, waiting for it to end", "Ctrl-C stops waiting", out=out):
        assert out.getvalue() == "dks: UPDATE_IN_PROGRESS, waiting for it to end (0s; Ctrl-C stops waiting)\n"
        time.sleep(1.2)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1] == "dks: UPDATE_IN_PROGRESS, waiting for it to end (1s; Ctrl-C stops waiting)"


def test_on_a_terminal_the_wait_is_one_line_rewritten_and_a_short_one_shows_nothing():
    out = Out(terminal=True)
    with wait.shown("making change set", "Ctrl-C stops", out=out, after=3):
        time.sleep(0.2)
    assert out.getvalue() == "", "a wait shorter than `after` says nothing"
    with wait.shown("waiting", "Ctrl-C stops", out=out):
        time.sleep(1.3)
    text = out.getvalue()
    assert "\n" not in text.rstrip("\n") and text.endswith("\n") and text.count("\r") >= 2
    assert text.split("\r")[-1].startswith("waiting (1s; Ctrl-C stops)")
    assert [wait.elapsed(s) for s in (0, 59, 65, 3600)] == ["0s", "59s", "1m05s", "60m00s"]


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "scripts/ecs-app", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done


class Pane:
    """One tmux session on its own server (socket under tmp_path), 250 columns wide."""

    def __init__(self, tmp_path):
        self.socket = str(tmp_path / "tmux.sock")
        self.tmux("new-session", "-d", "-s", "t", "-x", "250", "-y", "50", "-c", str(ROOT),
                  "env", "PS1=$ ", "bash", "--norc", "--noprofile")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=True,
                              env=os.environ).stdout

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-t", "t", line, "Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t", "-J")

    def until(self, pattern: re.Pattern | str, timeout: float = 120) -> re.Match:
        pattern = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.search(self.screen())
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{pattern.pattern!r} never appeared:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


def seconds(match: re.Match) -> int:
    return int(match.group(2) or 0) * 60 + int(match.group(3))


@needs_tmux
def test_a_stack_held_update_in_progress_shows_the_wait_with_its_time_and_what_to_do(aws, emulator, tmp_path):
    assert cli("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    certificate = aws.client("acm").request_certificate(DomainName="dks.example.com")["CertificateArn"]
    https = f"CertificateArn={certificate} DomainName=dks.example.com"

    # A deploy that adds the HTTPS listener, stopped by the emulator before the listener exists, then killed.
    hold = emulator.faults.hold(resource="Listener443")
    first = subprocess.Popen([sys.executable, "scripts/ecs-app", "deploy"], cwd=ROOT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "STACK": STACK, "SKIP_IMAGES": "1", "PARAMS": https})
    pane = None
    try:
        assert hold.wait(120), "the update never reached the listener"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
        cfn = aws.client("cloudformation")
        assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_IN_PROGRESS"

        pane = Pane(tmp_path)
        pane.type(f"make diff STACK={STACK} PARAMS='{https}'")
        before = pane.until(WAITING)
        time.sleep(2.5)
        after = pane.until(WAITING)
        assert seconds(after) >= seconds(before) + 2, "the time so far goes on"
        screen = pane.screen()
        assert len(WAITING.findall(screen)) == 1, f"one line, rewritten in place:\n{screen}"

        pane.tmux("send-keys", "-t", "t", "C-c")
        # The shell drops the rest of the line (`echo EXIT=`) after an interrupt: wait for its prompt.
        pane.until(re.compile(r"^interrupted: a preview change set may be left behind, unexecuted; it changes "
                              r"nothing\n(.*\n)*\$ *$", re.MULTILINE))
        screen = pane.screen()
        assert "Traceback" not in screen
        assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_IN_PROGRESS", \
            "Ctrl-C left CloudFormation at work"
    finally:
        hold.release()
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        if pane:
            pane.close()
    aws.client("cloudformation").get_waiter("stack_update_complete").wait(
        StackName=STACK, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert cli("cleanup", "--yes", STACK=STACK).returncode == 0
    aws.client("acm").delete_certificate(CertificateArn=certificate)
