"""The emulator runs Python Lambda functions for real: Invoke, custom resources, EventBridge targets.

Each function here is a few lines of inline code that writes what it received to an S3 bucket
made by the test (or returns it), through boto3 inside the function, which reaches the emulator.
"""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

import inventory
import stacks

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}

# Writes each event it gets to the bucket named in its environment, under a key the event chooses.
RECORDER = textwrap.dedent("""
    import json, os
    import boto3

    def handler(event, context):
        key = event.get("detail-type") or event.get("from") or "event"
        boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Key=f"{key}/{context.aws_request_id}",
                                      Body=json.dumps(event))
""")


def zipped(code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", textwrap.dedent(code))
    return buffer.getvalue()


def function(aws, name: str, code: str, timeout: int = 5, handler: str = "index.handler", **variables: str) -> str:
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName="runner")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="runner", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    return aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler=handler, Timeout=timeout,
        Code={"ZipFile": zipped(code)}, Environment={"Variables": variables})["FunctionArn"]


def recorded(aws, bucket: str, prefix: str = "") -> list[dict]:
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return [json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys]


def invoke(aws, name: str, payload: dict, **kwargs) -> tuple[dict, dict]:
    answer = aws.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload), **kwargs)
    return answer, json.loads(answer["Payload"].read() or b"null")


# --- Invoke ---------------------------------------------------------------------------------------

def test_a_function_runs_with_its_environment_its_context_and_boto3_reaching_the_emulator(aws):
    aws.client("s3").create_bucket(Bucket="seen-by-the-function")
    aws.client("logs").create_log_group(logGroupName="/aws/lambda/probe")
    function(aws, "probe", """
        import os, boto3
        def handler(event, context):
            print("probing", event["n"])
            return {"n": event["n"] + 1, "colour": os.environ["COLOUR"], "region": os.environ["AWS_REGION"],
                    "retries": os.environ["AWS_RETRY_MODE"], "endpoint": os.environ["AWS_ENDPOINT_URL"],
                    "buckets": [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]],
                    "name": context.function_name, "arn": context.invoked_function_arn,
                    "request": context.aws_request_id, "memory": context.memory_limit_in_mb,
                    "left": context.get_remaining_time_in_millis(), "stream": context.log_stream_name}
    """, timeout=7, COLOUR="teal", AWS_RETRY_MODE="legacy", AWS_ENDPOINT_URL="https://lambda.us-east-1.amazonaws.com")

    answer, result = invoke(aws, "probe", {"n": 41}, LogType="Tail")
    # The function's own settings, but never an endpoint other than the emulator's.
    assert result["retries"] == "legacy" and result["endpoint"] == os.environ["AWS_ENDPOINT_URL"]

    assert "FunctionError" not in answer
    assert result["n"] == 42 and result["colour"] == "teal" and result["region"] == "us-east-1"
    assert result["buckets"] == ["seen-by-the-function"], "the function's boto3 reached the emulator"
    assert result["name"] == "probe" and result["arn"].endswith(":function:probe") and result["memory"] == "128"
    assert 0 < result["left"] <= 7000
    assert "probing 41" in base64.b64decode(answer["LogResult"]).decode()
    (stream,) = aws.client("logs").describe_log_streams(logGroupName="/aws/lambda/probe")["logStreams"]
    assert stream["logStreamName"] == result["stream"]
    lines = [e["message"] for e in aws.client("logs").get_log_events(
        logGroupName="/aws/lambda/probe", logStreamName=result["stream"])["events"]]
    assert lines[0] == f"START RequestId: {result['request']} Version: $LATEST" and "probing 41" in lines
    assert lines[-1].startswith(f"REPORT RequestId: {result['request']}")


def test_an_exception_a_timeout_and_a_missing_handler_are_reported_as_lambda_reports_them(aws):
    function(aws, "raises", """
        def handler(event, context):
            raise ValueError("no " + event["what"])
    """)
    function(aws, "sleeps", """
        import time
        def handler(event, context):
            time.sleep(30)
    """, timeout=1)
    function(aws, "misnamed", "def handler(event, context):\n    return 1\n", handler="index.nothing")

    answer, error = invoke(aws, "raises", {"what": "luck"})
    assert answer["FunctionError"] == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no luck")
    assert any("raise ValueError" in line for line in error["stackTrace"])

    started = time.monotonic()
    answer, error = invoke(aws, "sleeps", {})
    assert time.monotonic() - started < 15, "killed at its timeout, not left to sleep"
    assert answer["FunctionError"] == "Unhandled" and error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")

    answer, error = invoke(aws, "misnamed", {})
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "Handler 'nothing' missing on module 'index'"


def test_a_function_that_carries_its_own_boto3_imports_its_own(aws, tmp_path):
    # https://docs.aws.amazon.com/lambda/latest/dg/python-package.html: the runtime's boto3 serves a function
    # unless its package carries one, which comes first on the path. The environments forked with boto3
    # imported already must not hide a function's own.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", textwrap.dedent("""
            import os, sys
            import boto3
            def handler(event, context):
                return {"boto3": getattr(boto3, "WHOSE", "the runtime's"), "cwd": os.getcwd(),
                        "root": os.environ["LAMBDA_TASK_ROOT"], "path": sys.path[0]}
        """))
        archive.writestr("boto3/__init__.py", 'WHOSE = "its own"\n')
    role = aws.client("iam").create_role(RoleName="runner", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    aws.client("lambda").create_function(FunctionName="carries", Runtime="python3.12", Role=role["Arn"],
                                         Handler="index.handler", Code={"ZipFile": buffer.getvalue()})
    function(aws, "plain", "import boto3\ndef handler(event, context):\n    return boto3.__name__\n")

    answer, result = invoke(aws, "carries", {})
    assert "FunctionError" not in answer, result
    assert result["boto3"] == "its own"
    assert result["cwd"] == result["root"] == result["path"], "run in its code's directory, first on the path"
    assert invoke(aws, "plain", {})[1] == "boto3", "and one that carries none has the runtime's"


def test_when_the_zygote_is_killed_new_interpreters_take_over_and_its_environments_end(aws, monkeypatch):
    from emulator import lambdas

    own = lambdas._Zygote()  # killed below: the run's own zygote is left to the other tests
    monkeypatch.setattr(lambdas, "_ZYGOTE", own)
    function(aws, "first", "def handler(event, context):\n    return 1\n")
    assert invoke(aws, "first", {})[1] == 1
    (forked,) = [environment.process for environment in lambdas._IDLE]
    assert isinstance(forked, lambdas._Forked) and own.alive

    own.process.kill()
    own.process.wait()
    assert invoke(aws, "first", {})[1] == 1
    function(aws, "second", "def handler(event, context):\n    return 2\n")
    assert invoke(aws, "second", {})[1] == 2
    assert {type(environment.process) for environment in lambdas._IDLE} == {subprocess.Popen}, \
        "an environment whose end the zygote can no longer tell is replaced, not reused"
    deadline = time.monotonic() + 10
    while Path(f"/proc/{forked.pid}").exists() and Path(f"/proc/{forked.pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the orphaned environment did not end"
        time.sleep(0.1)


COUNTER = """
    import os
    calls = 0  # the init phase runs once per execution environment

    def handler(event, context):
        global calls
        calls += 1
        if event.get("fail"):
            raise RuntimeError("asked to")
        if event.get("crash"):
            os._exit(1)
        return {"calls": calls, "stream": context.log_stream_name, "colour": os.environ.get("COLOUR")}
"""


def test_an_environment_stays_warm_until_a_crash_a_change_or_a_reset(aws, emulator):
    # https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
    function(aws, "counter", COUNTER, COLOUR="teal")
    _, first = invoke(aws, "counter", {})
    _, second = invoke(aws, "counter", {})
    assert (first["calls"], second["calls"]) == (1, 2), "the module is imported once, then the environment reused"
    assert second["stream"] == first["stream"], "one log stream per environment"

    answer, _ = invoke(aws, "counter", {"fail": True})
    assert answer["FunctionError"] == "Unhandled"
    _, after_error = invoke(aws, "counter", {})
    assert after_error["calls"] == 4 and after_error["stream"] == first["stream"], "a handler's error keeps it"

    answer, error = invoke(aws, "counter", {"crash": True})
    assert answer["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.ExitError"
    _, after_crash = invoke(aws, "counter", {})
    assert after_crash["calls"] == 1 and after_crash["stream"] != first["stream"], "a new environment after a crash"

    aws.client("lambda").update_function_configuration(FunctionName="counter",
                                                       Environment={"Variables": {"COLOUR": "red"}})
    _, changed = invoke(aws, "counter", {})
    assert (changed["calls"], changed["colour"]) == (1, "red"), "a new environment for the changed configuration"

    emulator.reset()
    function(aws, "counter", COUNTER, COLOUR="red")
    _, again = invoke(aws, "counter", {})
    assert again["calls"] == 1, "nothing warm outlives a reset, though the function is the same again"


def test_an_event_invocation_is_accepted_at_once_and_runs_afterwards(aws):
    aws.client("s3").create_bucket(Bucket="later")
    function(aws, "recorder", RECORDER, BUCKET="later")

    answer = aws.client("lambda").invoke(FunctionName="recorder", InvocationType="Event",
                                         Payload=json.dumps({"from": "queue"}))

    assert answer["StatusCode"] == 202
    deadline = time.monotonic() + 20
    while not recorded(aws, "later") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert recorded(aws, "later") == [{"from": "queue"}]


# --- Custom resources -----------------------------------------------------------------------------

# Records every request, then answers it the way its properties ask (cfnresponse is beside index.py for
# inline code, as in Lambda).
PROVIDER = textwrap.dedent("""
    import json, os
    import boto3, cfnresponse

    def handler(event, context):
        boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Body=json.dumps(event),
                                      Key=f"{event['RequestType']}/{context.aws_request_id}")
        wanted = event["ResourceProperties"]
        if event["RequestType"] == "Delete" or wanted.get("Answer") == "SUCCESS":
            cfnresponse.send(event, context, cfnresponse.SUCCESS, {"Echo": wanted.get("Word", "") + "-echo"},
                             physicalResourceId="thing-" + wanted.get("Word", ""))
        elif wanted.get("Answer") == "FAILED":
            cfnresponse.send(event, context, cfnresponse.FAILED, {}, physicalResourceId="half-made",
                             reason="the provider says no")
        # any other Answer: no response at all
""")


def provider_stack(kind: str = "Custom::Thing", **properties) -> dict:
    return {
        "Parameters": {"Word": {"Type": "String"}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": TRUST}},
            "Provider": {"Type": "AWS::Lambda::Function", "Properties": {
                "Runtime": "python3.12", "Handler": "index.handler", "Timeout": 2, "Code": {"ZipFile": PROVIDER},
                "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Environment": {"Variables": {"BUCKET": "requests"}}}},
            "Thing": {"Type": kind, "Properties": {
                "ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]}, "Word": {"Ref": "Word"}, **properties}},
            # Reads the provider's Data: created after the custom resource, deleted before it.
            "Echo": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::Sub": "/echo/${Thing.Echo}"}}},
        },
        "Outputs": {"Echo": {"Value": {"Fn::GetAtt": ["Thing", "Echo"]}}, "Id": {"Value": {"Ref": "Thing"}}},
    }


def run(aws, operation: str, name: str, template: dict, word: str) -> dict:
    cfn = aws.client("cloudformation")
    getattr(cfn, operation)(StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"],
                            Parameters=[{"ParameterKey": "Word", "ParameterValue": word}])
    return cfn.describe_stacks(StackName=name)["Stacks"][0]


def test_a_custom_resource_gets_create_update_and_delete_and_its_response_drives_the_stack(aws):
    before = inventory.take(aws)
    aws.client("s3").create_bucket(Bucket="requests")
    template = provider_stack(Answer="SUCCESS", Count=3, Flag=True)

    stack = run(aws, "create_stack", "custom", template, "one")

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == {"Echo": "one-echo", "Id": "thing-one"}
    assert aws.client("logs").describe_log_groups(logGroupNamePrefix="/echo/")["logGroups"][0][
        "logGroupName"] == "/echo/one-echo", "Fn::GetAtt reads the response's Data"
    (create,) = recorded(aws, "requests", "Create/")
    assert create["RequestType"] == "Create" and create["StackId"] == stack["StackId"]
    assert (create["LogicalResourceId"], create["ResourceType"]) == ("Thing", "Custom::Thing")
    assert create["ResponseURL"].startswith("http://127.0.0.1:") and create["RequestId"]
    assert create["ResourceProperties"] == {"ServiceToken": create["ServiceToken"], "Word": "one",
                                            "Answer": "SUCCESS", "Count": "3", "Flag": "true"}
    assert "PhysicalResourceId" not in create and "OldResourceProperties" not in create

    stack = run(aws, "update_stack", "custom", template, "two")

    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["Id"] == "thing-two"
    (update,) = recorded(aws, "requests", "Update/")
    assert update["PhysicalResourceId"] == "thing-one"
    assert (update["OldResourceProperties"]["Word"], update["ResourceProperties"]["Word"]) == ("one", "two")
    (replaced,) = recorded(aws, "requests", "Delete/")
    assert replaced["PhysicalResourceId"] == "thing-one", "a new PhysicalResourceId replaces: the old one is deleted"

    aws.client("cloudformation").delete_stack(StackName="custom")

    deleted = [r for r in recorded(aws, "requests", "Delete/") if r["PhysicalResourceId"] == "thing-two"]
    assert [(r["ResourceProperties"]["Word"], r["LogicalResourceId"]) for r in deleted] == [("two", "Thing")]
    assert aws.client("cloudformation").describe_stacks(StackName=stack["StackId"])["Stacks"][0][
        "StackStatus"] == "DELETE_COMPLETE"
    stacks.empty_bucket(aws, "requests")
    assert inventory.difference(before, inventory.take(aws)) == {}


@pytest.mark.parametrize("answer, reason", [
    ("FAILED", "Received response status [FAILED] from custom resource. Message returned: the provider says no"),
    ("SILENCE", "CloudFormation did not receive a response from your Custom Resource within the function's timeout"),
])
def test_a_failed_or_missing_response_fails_the_resource_and_the_rollback_sends_delete(aws, answer, reason):
    aws.client("s3").create_bucket(Bucket="requests")
    started = time.monotonic()

    stack = run(aws, "create_stack", "refused", provider_stack("AWS::CloudFormation::CustomResource",
                                                                 Answer=answer), "x")

    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert time.monotonic() - started < 30, "a missing response fails at the function's timeout (2 s), not in an hour"
    events = aws.client("cloudformation").describe_stack_events(StackName=stack["StackId"])["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed["LogicalResourceId"] == "Thing" and failed["ResourceStatusReason"].startswith(reason)
    (delete,) = recorded(aws, "requests", "Delete/")
    if answer == "FAILED":
        assert delete["PhysicalResourceId"] == "half-made", "the rollback's Delete names what the failed create gave"
    else:
        assert delete["PhysicalResourceId"], "a resource that never answered still gets a Delete, with a made-up ID"
    assert aws.client("lambda").list_functions()["Functions"] == []


# --- EventBridge ----------------------------------------------------------------------------------

def rule(aws, name: str, target_arn: str, pattern: dict | None = None, permitted: bool = True, **target) -> str:
    events = aws.client("events")
    shape = {"EventPattern": json.dumps(pattern)} if pattern else {"ScheduleExpression": "rate(5 minutes)"}
    arn = events.put_rule(Name=name, **shape)["RuleArn"]
    events.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": target_arn, **target}])
    if permitted:
        aws.client("lambda").add_permission(FunctionName=target_arn, StatementId=name, Action="lambda:InvokeFunction",
                                            Principal="events.amazonaws.com", SourceArn=arn)
    return arn


def test_a_matching_rule_delivers_to_its_function_and_a_disabled_or_unpermitted_one_does_not(aws):
    aws.client("s3").create_bucket(Bucket="deliveries")
    target = function(aws, "recorder", RECORDER, BUCKET="deliveries")
    pattern = {"source": ["shop.orders"], "detail-type": ["Order Placed"]}
    rule(aws, "selected", target, pattern, InputPath="$.detail")
    rule(aws, "whole", target, {"source": ["shop.orders"], "detail": {"size": ["large"]}})
    rule(aws, "disabled", target, pattern, Input=json.dumps({"from": "disabled"}))
    aws.client("events").disable_rule(Name="disabled")
    rule(aws, "unpermitted", target, pattern, permitted=False, Input=json.dumps({"from": "unpermitted"}))

    aws.client("events").put_events(Entries=[
        {"Source": "shop.orders", "DetailType": "Order Placed",
         "Detail": json.dumps({"from": "order", "size": "small"})},
        {"Source": "shop.returns", "DetailType": "Order Placed", "Detail": json.dumps({"from": "other source"})}])

    assert recorded(aws, "deliveries") == [{"from": "order", "size": "small"}], "InputPath $.detail, one rule only"


def test_a_schedule_fires_on_demand_with_the_scheduled_event_and_gets_no_bus_events(aws, emulator):
    aws.client("s3").create_bucket(Bucket="ticks")
    target = function(aws, "recorder", RECORDER, BUCKET="ticks")
    arn = rule(aws, "every-five-minutes", target)

    aws.client("events").put_events(Entries=[{"Source": "anything", "DetailType": "x", "Detail": "{}"}])
    assert recorded(aws, "ticks") == [], "a schedule-only rule matches no event on the bus"

    assert emulator.fire_schedule("every-five-minutes") is True

    (tick,) = recorded(aws, "ticks")
    assert (tick["source"], tick["detail-type"], tick["resources"], tick["detail"]) == (
        "aws.events", "Scheduled Event", [arn], {})
    aws.client("events").disable_rule(Name="every-five-minutes")
    assert emulator.fire_schedule("every-five-minutes") is False and len(recorded(aws, "ticks")) == 1
