"""make deploy / cleanup when AWS throttles, fails transiently, or the user interrupts them.

Faults are injected by the emulator (tests/emulator/faults.py) into every request the lifecycle
makes; an interruption is a signal to the `make` process group while the emulator holds a request
at a known point. Every scenario ends with an inventory of the account equal to the one before it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import inventory
import pytest
from helpers import BUILD, ROOT, as_typed, interruptible
from test_lifecycle import REGISTRY, STACK, run, stack

# A good share of the calls: throttling (with the protocol's own code) and transient 500/503.
RATE = 0.3


def test_deploy_and_cleanup_complete_while_a_third_of_the_calls_are_throttled_or_fail(aws, emulator, capsys):
    before = inventory.take(aws)

    def under_faults(seed: int, command: str, **env: str) -> dict:
        """`make <command>` with RATE of the requests faulted; it must succeed; returns the counts."""
        emulator.faults.arm(RATE, seed=seed)
        started = time.monotonic()
        done = run(command, make=True, STACK=STACK, **env)
        took, counts = time.monotonic() - started, emulator.faults.counts()
        emulator.faults.disarm()
        assert done.returncode == 0, done.stdout + done.stderr
        assert counts["injected"] > 0
        with capsys.disabled():
            print(f"\n  {command}: {counts['injected']} faults over {counts['requests']} requests, "
                  f"completed in {took:.0f} s")
        return counts

    counts = under_faults(7, "deploy", SKIP_IMAGES="1")
    assert stack(aws, STACK)["StackStatus"] == stack(aws, REGISTRY)["StackStatus"] == "CREATE_COMPLETE"
    assert {"Throttling", "InternalFailure", "ServiceUnavailable"} <= set(counts["by_code"])
    assert any(call.startswith("s3 PUT ") for call in counts["by_call"]), "bucket setup and uploads met faults too"
    under_faults(8, "cleanup", YES="1")
    assert inventory.difference(before, inventory.take(aws)) == {}


# --- interrupted ---------------------------------------------------------------------------------

def start(command: str, **env: str) -> subprocess.Popen:
    """`make <command>` in its own process group, as a terminal runs it (Ctrl-C reaches the group)."""
    return subprocess.Popen(["make", "--no-print-directory", command], cwd=ROOT, text=True, start_new_session=True,
                            preexec_fn=interruptible,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=as_typed(PYTHONUNBUFFERED="1", **env))


def interrupt(process: subprocess.Popen, hold, how: signal.Signals) -> tuple[str, str]:
    """Wait until the process is stopped in the held request, send it `how`, and let it end."""
    assert hold.wait(60), "the deploy never reached the held request"
    os.killpg(process.pid, how)
    out, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    if how == signal.SIGINT:
        assert "interrupted: what was started continues in CloudFormation; make deploy resumes it, " \
               "make cleanup removes it" in err
    return out, err


def until(process: subprocess.Popen, line: str) -> list[str]:
    """Read the process's output until `line` appears (or it ends); returns what was read."""
    seen = []
    for text in process.stdout:
        seen.append(text)
        if line in text:
            break
    return seen


# (hold point, signal, what runs next). The review point: the root's change set is made, not yet
# executed (REVIEW_IN_PROGRESS). The creating point: the root is executing, its services stack not
# yet made (CREATE_IN_PROGRESS), and stays so until the next command is waiting for it.
SCENARIOS = [
    ("review", signal.SIGINT, "deploy"),
    ("review", signal.SIGKILL, "cleanup"),
    ("creating", signal.SIGKILL, "deploy"),
    ("creating", signal.SIGINT, "cleanup"),
]


@pytest.mark.parametrize("point, how, then", SCENARIOS,
                         ids=[f"{p}-{s.name}-then-{t}" for p, s, t in SCENARIOS])
def test_an_interrupted_deploy_is_resumed_by_deploy_or_removed_by_cleanup(aws, emulator, point, how, then):
    before = inventory.take(aws)
    faults = emulator.faults
    hold = (faults.hold("DescribeChangeSet", StackName=STACK) if point == "review"
            else faults.hold(resource="ServicesStack"))
    first = start("deploy", STACK=STACK, SKIP_IMAGES="1")
    out, err = interrupt(first, hold, how)
    assert stack(aws, REGISTRY)["StackStatus"] == "CREATE_COMPLETE"
    left = stack(aws, STACK)["StackStatus"]
    assert left == ("REVIEW_IN_PROGRESS" if point == "review" else "CREATE_IN_PROGRESS")
    if point == "review":
        hold.release()

    second = start(then, STACK=STACK, SKIP_IMAGES="1", YES="1")
    seen = []
    if point == "creating":
        seen = until(second, f"{STACK}: CREATE_IN_PROGRESS, waiting for it to end")
        assert seen and "waiting for it to end" in seen[-1], "".join(seen)
        hold.release()  # CloudFormation finishes what the first deploy started
    out, err = second.communicate(timeout=120)
    out = "".join(seen) + out
    assert second.returncode == 0, out + err
    assert "Traceback" not in err, err

    if then == "deploy":
        assert f"{REGISTRY}: no changes" in out and f"(0 of {len(list(BUILD.glob('*.yaml')))} uploaded" in out
        root = stack(aws, STACK)
        assert root["StackStatus"] == "CREATE_COMPLETE"
        assert {o["OutputKey"] for o in root["Outputs"]} >= {"AppUrl", "ApiUrl"}
        if point == "creating":
            assert f"{STACK}: no changes" in out, "the first deploy's change set did the work"
        gone = run("cleanup", STACK=STACK, YES="1")
        assert gone.returncode == 0, gone.stdout + gone.stderr
    else:
        assert f"{STACK}: deleted" in out and f"{REGISTRY}: deleted" in out
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_an_interrupted_cleanup_says_so_and_cleanup_again_finishes(aws, emulator):
    before = inventory.take(aws)
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    hold = emulator.faults.hold("DeleteStack")  # the root's: cleanup deletes it first
    first = start("cleanup", STACK=STACK, YES="1")
    assert hold.wait(60), "cleanup never reached DeleteStack"
    os.killpg(first.pid, signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert "interrupted: a delete already started continues in CloudFormation; make cleanup again finishes it" \
        in err
    assert "make deploy resumes it" not in err, "a deploy's advice, not a cleanup's"
    hold.release()  # CloudFormation deletes what it was asked to

    again = run("cleanup", STACK=STACK, YES="1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert inventory.difference(before, inventory.take(aws)) == {}
