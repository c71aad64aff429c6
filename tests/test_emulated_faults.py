"""Deploys that go wrong, on the emulator: each ends in a clear state and leaves the account as it was."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

import inventory
import stacks
from test_emulated_deploy import BUCKET, PREFIX, REGISTRY, ROOT, deploy

ROOT_PARAMETERS = {"QSS3BucketName": BUCKET, "QSS3KeyPrefix": PREFIX}


def root_url(session) -> str:
    return stacks.template_url(session, BUCKET, PREFIX + "main.yaml")


def events(session, stack_id: str) -> list[dict]:
    return session.client("cloudformation").describe_stack_events(StackName=stack_id)["StackEvents"]


def test_a_nested_stack_that_fails_fails_the_root_and_delete_leaves_nothing(aws):
    stacks.upload(aws, BUCKET, PREFIX)
    before = inventory.take(aws)
    # Each value is within the root's own limits; together the Auto Scaling group refuses them.
    root = stacks.create(aws, ROOT, root_url(aws), {**ROOT_PARAMETERS, "DesiredCapacity": "5", "MaxSize": "3"})

    assert root["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [e for e in events(aws, root["StackId"]) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed[-1]["LogicalResourceId"] == "ClusterStack", "the first failure is the cluster's stack"
    assert "Embedded stack" in failed[-1]["ResourceStatusReason"]
    cluster_stack = failed[-1]["PhysicalResourceId"] or next(
        s["StackId"] for s in aws.client("cloudformation").list_stacks()["StackSummaries"]
        if "-ClusterStack-" in s["StackName"])
    deepest = [e for e in events(aws, cluster_stack) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert deepest[-1]["LogicalResourceId"] == "HostGroup"
    assert "Desired capacity:5 must be between the specified min size:1 and max size:3" in \
        deepest[-1]["ResourceStatusReason"]
    root_events = events(aws, root["StackId"])
    rolled_back = [e["LogicalResourceId"] for e in root_events if e["ResourceStatus"] == "DELETE_COMPLETE"]
    assert "IamStack" in rolled_back, "what was created before the failure is rolled back"

    stacks.delete(aws, ROOT)
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_a_parameter_outside_its_constraints_is_refused_before_anything_is_created(aws):
    stacks.upload(aws, BUCKET, PREFIX)
    before = inventory.take(aws)
    with pytest.raises(ClientError) as refused:
        stacks.create(aws, ROOT, root_url(aws), {**ROOT_PARAMETERS, "EnvironmentName": "Not_Valid"})
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "EnvironmentName" in refused.value.response["Error"]["Message"]
    assert inventory.difference(before, inventory.take(aws)) == {}


# Deletes today's build/ with DeleteStack: with ECS's managed-draining hook modelled that delete fails
# (build/cluster.yaml deletes its capacity provider before its group; see test_emulator_hosts.py).
@pytest.mark.usefixtures("draining_hook_unmodelled")
def test_three_deploy_delete_cycles_in_a_row_leave_nothing(aws):
    before = inventory.take(aws)
    for cycle in range(3):
        deployment = deploy(aws)
        assert len(deployment.stacks) == stacks.nested_count() + 2, f"cycle {cycle}: root, nested, registry"
        stacks.delete(aws, ROOT)
        stacks.delete(aws, REGISTRY)
        stacks.empty_bucket(aws, BUCKET)
        assert len(stacks.drop_retained(aws, before)) == 1, f"cycle {cycle}: the data is kept"
        assert inventory.difference(before, inventory.take(aws)) == {}, f"cycle {cycle}"


# Deletes today's build/ with DeleteStack: with ECS's managed-draining hook modelled that delete fails
# (build/cluster.yaml deletes its capacity provider before its group; see test_emulator_hosts.py).
@pytest.mark.usefixtures("draining_hook_unmodelled")
def test_deleting_a_stack_that_is_already_gone_is_harmless(aws):
    deploy(aws)
    stacks.delete(aws, ROOT)
    after_first = inventory.take(aws)
    stacks.delete(aws, ROOT)  # again, by name
    stacks.delete(aws, "never-existed")
    assert inventory.difference(after_first, inventory.take(aws)) == {}
    summaries = aws.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in summaries if s["StackName"] == ROOT] == ["DELETE_COMPLETE"]
