"""The emulator's fault switch itself: what it answers, that botocore retries it, that it counts."""
from __future__ import annotations

import json
import threading
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

# Few retries, so a call that can never succeed gives up quickly; the lifecycle itself allows 10.
# (botocore's `max_attempts` counts retries: the call is sent max_attempts + 1 times.)
# Standard mode: adaptive mode classifies the same way, and also slows the client down for a while.
FEW = Config(retries={"mode": "standard", "max_attempts": 2})

# One call per protocol: query (CloudFormation), EC2's query dialect, JSON 1.1 (ECS), S3's REST-XML,
# REST-JSON (EFS), with what each answers when it throttles.
CALLS = [
    ("cloudformation", "describe_stacks", {}, "Throttling", 400),
    ("ec2", "describe_vpcs", {}, "RequestLimitExceeded", 503),
    ("ecs", "list_clusters", {}, "ThrottlingException", 400),
    ("s3", "list_buckets", {}, "SlowDown", 503),
    ("efs", "describe_file_systems", {}, "ThrottlingException", 400),
]


@pytest.fixture
def faults(emulator):
    emulator.faults.clear()
    yield emulator.faults
    emulator.faults.clear()


@pytest.fixture
def session(emulator) -> boto3.Session:
    """A session on the emulator as it is: these calls read, or make nothing that lasts."""
    return boto3.Session()


@pytest.mark.parametrize("service, operation, kwargs, code, status", CALLS, ids=[c[0] for c in CALLS])
def test_a_call_under_constant_throttling_fails_after_its_attempts_with_the_throttling_code(
        session, faults, service, operation, kwargs, code, status):
    faults.arm(1.0, kinds=["throttle"])
    with pytest.raises(ClientError) as refused:
        getattr(session.client(service, config=FEW), operation)(**kwargs)
    answer = refused.value.response
    assert answer["Error"]["Code"] == code and answer["ResponseMetadata"]["HTTPStatusCode"] == status
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2, "botocore classified it as retryable"
    assert faults.counts()["injected"] == 3


@pytest.mark.parametrize("kind, code, status", [("500", "InternalFailure", 500), ("503", "ServiceUnavailable", 503)])
def test_transient_server_errors_are_retried_too(session, faults, kind, code, status):
    faults.arm(1.0, kinds=[kind])
    for service in ("cloudformation", "ecs"):
        with pytest.raises(ClientError) as refused:
            session.client(service, config=FEW).list_clusters() if service == "ecs" else \
                session.client(service, config=FEW).describe_stacks()
        assert refused.value.response["Error"]["Code"] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert refused.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert faults.counts()["by_code"] == {code: 6}


def test_under_a_share_of_faults_every_call_succeeds_and_the_faults_are_counted(session, faults):
    cfn = session.client("cloudformation", config=Config(retries={"mode": "standard", "max_attempts": 10}))
    faults.arm(0.3, seed=3, kinds=["500", "503"])  # server errors: botocore's backoff for them is short
    for _ in range(20):
        cfn.describe_stacks()
    counts = faults.counts()
    assert counts["injected"] > 0
    assert counts["requests"] == 20 + counts["injected"], "each fault was answered by a retry"


def test_only_the_services_and_actions_named_get_faults(session, faults):
    faults.arm(1.0, services=["ecs"], actions=["ListClusters"], kinds=["throttle"])
    session.client("cloudformation").describe_stacks()
    session.client("ecs").describe_clusters()
    with pytest.raises(ClientError):
        session.client("ecs", config=FEW).list_clusters()
    assert faults.counts()["by_call"] == {"ecs ListClusters ThrottlingException": 3}


def test_reset_clears_the_switch(session, faults, emulator):
    faults.arm(1.0)
    emulator.reset()
    assert faults.idle and faults.counts()["injected"] == 0
    session.client("cloudformation").describe_stacks()


def test_the_control_endpoint_arms_reads_and_clears(session, faults, emulator):
    def call(method: str, settings: dict | None = None) -> dict:
        request = urllib.request.Request(f"{emulator.endpoint}/moto-api/faults", method=method,
                                         data=json.dumps(settings).encode() if settings else None)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    call("POST", {"rate": 1.0, "kinds": ["503"], "services": ["sts"]})
    with pytest.raises(ClientError):
        session.client("sts", config=FEW).get_caller_identity()
    assert call("GET")["by_call"] == {"sts GetCallerIdentity ServiceUnavailable": 3}
    assert call("DELETE")["injected"] == 0
    session.client("sts", config=FEW).get_caller_identity()


def test_a_held_request_waits_until_released(session, faults):
    cfn = session.client("cloudformation")
    hold = faults.hold("DescribeStacks", StackName="held")
    answered = []
    caller = threading.Thread(target=lambda: answered.append(
        _code(lambda: cfn.describe_stacks(StackName="held"))))
    caller.start()
    assert hold.wait(10)
    cfn.describe_stacks()  # other requests go on
    with pytest.raises(ClientError):
        cfn.describe_stacks(StackName="other")  # another stack's: not held (and not there)
    assert not answered
    hold.release()
    caller.join(10)
    assert answered == ["ValidationError"], "processed once released: the stack does not exist"


def _code(call) -> str:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return "ok"


def test_a_held_resource_leaves_its_stack_in_progress(aws, faults):
    cfn = aws.client("cloudformation")
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}, "Topic": {"Type": "AWS::SNS::Topic"}}}
    hold = faults.hold(resource="Topic")
    made = cfn.create_change_set(StackName="slow", ChangeSetName="one", ChangeSetType="CREATE",
                                 TemplateBody=json.dumps(template))
    executing = threading.Thread(target=lambda: boto3.Session().client("cloudformation").execute_change_set(
        ChangeSetName=made["Id"]))
    executing.start()
    assert hold.wait(10)
    assert cfn.describe_stacks(StackName="slow")["Stacks"][0]["StackStatus"] == "CREATE_IN_PROGRESS"
    hold.release()
    executing.join(10)
    assert cfn.describe_stacks(StackName="slow")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_stack_left_in_review_takes_another_create_change_set_and_a_live_one_refuses_it(aws):
    """What a deploy interrupted before executing its change set leaves, and what it meets next."""
    cfn = aws.client("cloudformation")
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    first = cfn.create_change_set(StackName="left", ChangeSetName="one", ChangeSetType="CREATE",
                                  TemplateBody=template)
    second = cfn.create_change_set(StackName="left", ChangeSetName="two", ChangeSetType="CREATE",
                                   TemplateBody=template)
    assert second["StackId"] == first["StackId"], "the same stack, as in CloudFormation"
    assert [s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"]] == ["REVIEW_IN_PROGRESS"]
    cfn.execute_change_set(ChangeSetName=second["Id"])
    assert cfn.describe_stacks(StackName="left")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert [c["ChangeSetName"] for c in cfn.list_change_sets(StackName="left")["Summaries"]] == ["two"], \
        "executing one removes the others"
    with pytest.raises(ClientError) as refused:
        cfn.create_change_set(StackName="left", ChangeSetName="three", ChangeSetType="CREATE",
                              TemplateBody=template)
    assert "already exists" in refused.value.response["Error"]["Message"]
    assert len(cfn.list_stacks()["StackSummaries"]) == 1
