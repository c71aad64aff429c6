"""taskcat.yml run by taskcat itself, against the emulator: the root and its nested stacks create, then
taskcat's clean-up (and tests/taskcat_run.py's removal of taskcat's bucket) leaves the account as it was.

taskcat lives in its own environment (.venv-taskcat): it pins jsonschema<4 and urllib3<2.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

import inventory
import stacks
from helpers import ROOT

TASKCAT_PYTHON = ROOT / ".venv-taskcat" / "bin" / "python"


def run_taskcat() -> tuple[dict, subprocess.CompletedProcess]:
    """tests/taskcat_run.py under taskcat's python; returns its JSON report and the process."""
    assert TASKCAT_PYTHON.exists(), "no taskcat environment: run `make .venv-taskcat/.installed` (make test does)"
    done = subprocess.run([str(TASKCAT_PYTHON), "tests/taskcat_run.py"], cwd=ROOT, env=os.environ,
                          capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    assert lines, f"taskcat_run.py printed no report (exit {done.returncode}):\n{done.stderr}"
    return json.loads(lines[-1]), done


def nested_stack_count() -> int:
    resources = stacks.load(stacks.ROOT_TEMPLATE)["Resources"].values()
    return sum(r["Type"] == "AWS::CloudFormation::Stack" for r in resources)


def test_taskcat_creates_root_and_nested_stacks_and_cleans_up(aws):
    before = inventory.take(aws)

    report, done = run_taskcat()

    assert report["error"] is None, f"{report['error']}\n{report['stacks']}\n{done.stderr}"
    (root,) = [s for s in report["stacks"] if s["parent_id"] is None]
    assert root["status"] == "CREATE_COMPLETE", root
    nested = [s for s in report["stacks"] if s["parent_id"] == root["id"]]
    assert len(nested) == len(report["stacks"]) - 1 == nested_stack_count(), report["stacks"]
    assert all(s["status"] == "CREATE_COMPLETE" for s in nested), nested
    assert report["deleted"], "taskcat's clean-up must delete every stack"
    assert done.returncode == 0, done.stderr
    assert stacks.drop_retained(aws, before) == stacks.KEPT, "the stack delete keeps the data, its key and its secrets"
    assert inventory.difference(before, inventory.take(aws)) == {}
