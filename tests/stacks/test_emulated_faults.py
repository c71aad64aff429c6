"""Deploys that go wrong, on the emulator: each ends in a clear state and leaves the account as it was."""
from __future__ import annotations

import json

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
    # A valid bucket name, but no such bucket: ELB refuses to enable access logs to it, midway through.
    root = stacks.create(aws, ROOT, root_url(aws), {**ROOT_PARAMETERS, "AccessLogsBucket": "no-such-logs-bucket"})

    assert root["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [e for e in events(aws, root["StackId"]) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed[-1]["LogicalResourceId"] == "LoadbalancerStack", "the first failure is the load balancer's stack"
    assert "Embedded stack" in failed[-1]["ResourceStatusReason"]
    balancer_stack = failed[-1]["PhysicalResourceId"] or next(
        s["StackId"] for s in aws.client("cloudformation").list_stacks()["StackSummaries"]
        if "-LoadbalancerStack-" in s["StackName"])
    deepest = [e for e in events(aws, balancer_stack) if e["ResourceStatus"] == "CREATE_FAILED"]
    assert deepest[-1]["LogicalResourceId"] == "LoadBalancer"
    assert "Access Denied for bucket: no-such-logs-bucket. Please check S3bucket permission" in \
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


def test_three_deploy_delete_cycles_in_a_row_leave_nothing(aws):
    before = inventory.take(aws)
    for cycle in range(3):
        deployment = deploy(aws)
        assert len(deployment.stacks) == stacks.nested_count() + 2, f"cycle {cycle}: root, nested, registry"
        stacks.delete(aws, ROOT)
        stacks.delete(aws, REGISTRY)
        stacks.empty_bucket(aws, BUCKET)
        assert stacks.drop_retained(aws, before) == stacks.KEPT, f"cycle {cycle}: the data is kept"
        assert inventory.difference(before, inventory.take(aws)) == {}, f"cycle {cycle}"


def test_deleting_a_stack_that_is_already_gone_is_harmless(aws):
    deploy(aws)
    stacks.delete(aws, ROOT)
    after_first = inventory.take(aws)
    stacks.delete(aws, ROOT)  # again, by name
    stacks.delete(aws, "never-existed")
    assert inventory.difference(after_first, inventory.take(aws)) == {}
    summaries = aws.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in summaries if s["StackName"] == ROOT] == ["DELETE_COMPLETE"]


def test_access_logs_go_to_a_bucket_whose_policy_lets_elb_deliver(aws):
    # The contrast to the failure above: with ELB's log delivery allowed, the same parameter works.
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="dks-access-logs")
    s3.put_bucket_policy(Bucket="dks-access-logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        "Action": "s3:PutObject", "Resource": "arn:aws:s3:::dks-access-logs/AWSLogs/123456789012/*"}]}))
    deployment = deploy(aws, {"AccessLogsBucket": "dks-access-logs"})
    attributes = {a["Key"]: a["Value"] for a in aws.client("elbv2").describe_load_balancer_attributes(
        LoadBalancerArn=deployment.one("loadbalancer.yaml", "LoadBalancer").physical_id)["Attributes"]}
    assert (attributes["access_logs.s3.enabled"], attributes["access_logs.s3.bucket"]) == ("true", "dks-access-logs")
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    stacks.delete(aws, ROOT)
    stacks.delete(aws, REGISTRY)
