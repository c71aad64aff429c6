"""Two make deploy of one stack at once: the second refuses with one sentence while the first runs
on; change set names never collide, even made within one second."""
from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys

import boto3

from helpers import ROOT
from test_lifecycle import ACCOUNT_BUCKET, STACK, run, stack

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import aws as lifecycle_aws  # noqa: E402
from lifecycle import stacks as lifecycle_stacks  # noqa: E402


def start(command: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, f"scripts/{command}.py"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **env})


def test_a_second_deploy_of_a_stack_refuses_while_the_first_runs(aws, emulator):
    hold = emulator.faults.hold("CreateChangeSet", StackName=f"{STACK}-registry")
    first = start("deploy", STACK=STACK, SKIP_IMAGES="1")
    try:
        assert hold.wait(120), "the first deploy reached the registry's change set"
        second = run("deploy", STACK=STACK, SKIP_IMAGES="1")
        assert second.returncode == 2, second.stdout + second.stderr
        (line,) = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert line.startswith(f"error: another make deploy of {STACK} is running: "
                               f"s3://{ACCOUNT_BUCKET}/{STACK}/deploy.lock is held by process {first.pid} on ")
        assert "uploaded" not in second.stdout, "the second uploads nothing"
    finally:
        hold.release()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err
    assert stack(aws, STACK)["StackStatus"] == "CREATE_COMPLETE"
    s3 = aws.client("s3")
    listed = s3.list_object_versions(Bucket=ACCOUNT_BUCKET, Prefix=f"{STACK}/deploy.lock")
    assert not listed.get("Versions") and not listed.get("DeleteMarkers"), "the lock is gone, every version"
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0, "the next deploy takes the lock"
    assert run("cleanup", STACK=STACK, YES="1").returncode == 0


def test_a_lock_left_by_a_killed_deploy_is_taken_over(aws):
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    held = {"stack": STACK, "host": socket.gethostname(), "pid": int(dead.stdout),
            "started": "2026-01-01T00:00:00+00:00"}
    aws.client("s3").put_object(Bucket=ACCOUNT_BUCKET, Key=f"{STACK}/deploy.lock", Body=json.dumps(held).encode())
    again = run("deploy", STACK=STACK, SKIP_IMAGES="1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"deploy lock of process {held['pid']} (no longer running) taken over" in again.stdout
    assert run("cleanup", STACK=STACK, YES="1").returncode == 0


class Frozen(datetime.datetime):
    """A clock that never moves: every change set made in the same second."""

    @classmethod
    def now(cls, tz=None):
        return datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=tz)


def test_change_sets_made_in_one_second_get_different_names(aws, monkeypatch):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="names")
    s3.put_object(Bucket="names", Key="t.json", Body=json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}))
    monkeypatch.setattr(lifecycle_stacks.datetime, "datetime", Frozen)
    target = lifecycle_aws.Target("names", boto3.Session())
    url = "https://names.s3.us-east-1.amazonaws.com/t.json"
    first = lifecycle_stacks.propose(target, "names", url, {}, purpose="diff")
    second = lifecycle_stacks.propose(target, "names", url, {}, purpose="diff")
    assert first.change_set != second.change_set
    listed = aws.client("cloudformation").list_change_sets(StackName="names")["Summaries"]
    names = [summary["ChangeSetName"] for summary in listed]
    assert len(names) == 2 and len(set(names)) == 2 and all(n.startswith("diff-20260101120000-") for n in names)
