"""taskcat's own test run of taskcat.yml (test `default`) against the local emulator, for tests/test_taskcat.py.

Runs under .venv-taskcat's python: taskcat 0.9.58 pins jsonschema<4 and urllib3<2, which the main
environment (moto 5) cannot have. The caller's environment points boto3 at the emulator
(AWS_ENDPOINT_URL, dummy credentials, us-east-1). The last line on stdout is one JSON document:

    {"stacks": [{"name", "id", "status", "reason", "parent_id", "failures"}, ...],  # root and nested, as created
     "deleted": bool,                 # every one of them DELETE_COMPLETE after taskcat's clean-up
     "removed_buckets": [...],        # taskcat's buckets this script had to empty and delete
     "error": str | null}             # what taskcat raised, if anything

Exit status 0 only when taskcat raised nothing and every stack was deleted.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import boto3
from botocore.exceptions import ClientError
from taskcat.exceptions import TaskCatException
from taskcat.testing import CFNTest

import buckets

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"  # the emulator's region; taskcat.yml also lists regions only real AWS serves
BUCKET_PREFIX = "tcat-"  # taskcat names every bucket it creates this way


def configured_test() -> CFNTest:
    """taskcat.yml as `taskcat test run` reads it, in the emulator's one region.

    Waiting for the delete: clean-up must be over before this script looks at stacks and buckets.
    """
    test = CFNTest.from_file(project_root=str(ROOT), input_file="taskcat.yml")
    test.regions = REGION  # run() trims every test's region list to this (from_file's regions does not)
    test.dont_wait_for_delete = False
    return test


def stack_tree(stacks) -> list[dict]:
    """The root stacks taskcat created and their descendants, found through ParentId as taskcat does.

    Plain DescribeStacks rather than taskcat's Stack.descendants(): that one locates a child's template
    through the parent's stack events and, not finding it there, downloads it into the project directory.
    """
    found = []
    for root in stacks:
        described = {s["StackId"]: s for page in root.client.get_paginator("describe_stacks").paginate()
                     for s in page["Stacks"]}
        found += descendants(root.client, root.id, described) if root.id in described else [failed_launch(root)]
    return found


def descendants(cfn, stack_id: str, described: dict[str, dict]) -> list[dict]:
    stack = described[stack_id]
    tree = [{"name": stack["StackName"], "id": stack_id, "status": stack["StackStatus"],
             "reason": stack.get("StackStatusReason"), "parent_id": stack.get("ParentId"),
             "failures": failure_events(cfn, stack_id)}]
    for child in (s for s in described.values() if s.get("ParentId") == stack_id):
        tree += descendants(cfn, child["StackId"], described)
    return tree


def failure_events(cfn, stack_id: str) -> list[str]:
    """Why a stack failed: its stack status rarely says, its resources' FAILED events do."""
    return [f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason')}"
            for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id)
            for e in page["StackEvents"] if e["ResourceStatus"].endswith("_FAILED")]


def failed_launch(stack) -> dict:
    """A stack whose CreateStack call failed: taskcat keeps a placeholder (no such stack) with the error."""
    return {"name": stack.name, "id": stack.id, "status": stack.status, "reason": stack.status_reason,
            "parent_id": None, "failures": []}


def all_deleted(stacks: list[dict]) -> bool:
    """Every stack DELETE_COMPLETE, or unknown to CloudFormation (a launch that failed never made one)."""
    cfn = boto3.client("cloudformation", region_name=REGION)
    return all(status_now(cfn, s["id"]) in ("DELETE_COMPLETE", None) for s in stacks)


def status_now(cfn, stack_id: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    except ClientError as error:
        if "does not exist" in error.response["Error"]["Message"]:
            return None
        raise


def bucket_names(s3) -> set[str]:
    return {b["Name"] for b in s3.list_buckets()["Buckets"]}


def remove_buckets(s3, names: list[str]) -> None:
    """Empty and delete the buckets taskcat leaves behind.

    A per-region bucket (s3_regional_buckets) taskcat keeps on purpose for the next run; a single
    auto-bucket 0.9.58 leaks, its clean-up deleting a freshly created bucket instead.
    """
    for name in names:
        buckets.remove(s3, name)


def main() -> int:
    if not os.environ.get("AWS_ENDPOINT_URL"):
        sys.exit("taskcat_run.py runs against the emulator only (AWS_ENDPOINT_URL unset); real AWS: make taskcat")
    s3 = boto3.client("s3", region_name=REGION)
    existing = bucket_names(s3)
    report = {"stacks": [], "deleted": False, "removed_buckets": [], "error": None}
    try:
        with configured_test() as stacks:
            report["stacks"] = stack_tree(stacks)
    except TaskCatException as error:
        report["error"] = str(error)
    finally:
        report["deleted"] = all_deleted(report["stacks"])
        report["removed_buckets"] = sorted(n for n in bucket_names(s3) - existing if n.startswith(BUCKET_PREFIX))
        remove_buckets(s3, report["removed_buckets"])
        print(json.dumps(report), flush=True)
    return 0 if report["error"] is None and report["deleted"] else 1


if __name__ == "__main__":
    sys.exit(main())
