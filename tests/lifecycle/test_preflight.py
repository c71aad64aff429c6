"""Checks before slow work: what the lifecycle refuses before it makes, uploads, clones or builds anything.

Each refusal is one sentence and exit 2, and the emulator holds no bucket and no stack afterwards.
"""
from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from botocore.utils import parse_timestamp
from helpers import BUILD, ROOT, stand_in_docker

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import aws as lifecycle_aws  # noqa: E402
from lifecycle import preflight  # noqa: E402

STACK = "dks"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "scripts/ecs-app", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def one_sentence(done: subprocess.CompletedProcess) -> str:
    """The refusal: exit 2, one line on stderr."""
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


def nothing_made(aws) -> None:
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert [s for s in aws.client("cloudformation").describe_stacks()["Stacks"]
            if s["StackStatus"] != "DELETE_COMPLETE"] == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again once the socket is: nothing listens there


# --- the endpoint ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["status", "deploy", "cleanup"])
def test_a_closed_port_is_said_in_one_sentence_within_seconds(command):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    done = cli(command, "--stack", STACK, *(["--yes"] if command == "cleanup" else []), AWS_ENDPOINT_URL=endpoint)
    took = time.monotonic() - started
    assert one_sentence(done) == f"error: nothing answered at {endpoint}/: is `make emulator` running?"
    assert "refused" not in done.stderr
    assert took < 5, f"{took:.1f} s: a connection that nobody answers is not retried for half a minute"


def test_a_connection_lost_midway_is_tried_three_times_not_ten(monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    client = lifecycle_aws.target(STACK, "us-east-1").client("cloudformation")
    sent = []
    client.meta.events.register("before-send", lambda **_: sent.append(1))
    started = time.monotonic()
    with pytest.raises(EndpointConnectionError):
        client.describe_stacks()
    assert len(sent) == lifecycle_aws.CONNECT_ATTEMPTS == 3
    assert time.monotonic() - started < 5


def test_timestamps_in_answers_read_as_botocore_reads_them(aws):
    forms = ["2026-12-02T22:59:25.123Z", "2026-12-02T22:59:25Z", "2026-12-02T22:59:25.123456+00:00",
             "2026-12-02T22:59:25.1234567Z", "2026-12-02T23:59:25+01:00", "Wed, 02 Dec 2026 22:59:25 GMT",
             "2026-12-02T22:59:25", "2026-12-02", 1764716365, 1764716365.5]
    for form in forms:
        ours, theirs = lifecycle_aws.timestamp(form), parse_timestamp(form)
        assert (ours, ours.tzinfo is None) == (theirs, theirs.tzinfo is None), form
    aws.client("s3").create_bucket(Bucket="stamped")
    [bucket] = lifecycle_aws.target(STACK, aws.region_name).client("s3").list_buckets()["Buckets"]
    assert bucket["CreationDate"].tzinfo is datetime.timezone.utc  # read by fromisoformat: dateutil gives tzutc()


def test_an_endpoint_that_is_not_this_machine_gets_no_emulator_hint():
    assert lifecycle_aws.unreachable("https://cloudformation.eu-west-1.amazonaws.com") == (
        "nothing answered at https://cloudformation.eu-west-1.amazonaws.com: check the network, the REGION and "
        "AWS_ENDPOINT_URL")
    assert lifecycle_aws.loopback("http://localhost:5000") and lifecycle_aws.loopback("http://[::1]:5000")
    assert not lifecycle_aws.loopback("http://10.0.0.5:5000")


def test_no_credentials_is_one_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k in ("AWS_ENDPOINT_URL", "AWS_REGION")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1")
    done = subprocess.run([sys.executable, "scripts/ecs-app", "status", "--stack", STACK], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), done.stderr


# --- the region ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["deploy", "cleanup", "diff", "status"])
def test_a_region_no_partition_has_is_refused_before_anything_is_made(aws, command):
    done = cli(command, *(["--yes"] if command == "cleanup" else []), STACK=STACK, REGION="us-east-9",
               SKIP_IMAGES="1")
    assert one_sentence(done).startswith(
        "error: REGION=us-east-9 is not a region of any AWS partition botocore knows (did you mean us-east-")
    nothing_made(aws)


def test_every_partition_s_regions_are_known():
    import boto3

    known = preflight.regions(boto3.Session(region_name="us-east-1"))
    assert {known[r] for r in ("us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1")} == {
        "aws", "aws-cn", "aws-us-gov"}


# --- the parameters ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["deploy", "diff"])
@pytest.mark.parametrize("params, sentence", [
    ("InstanceType=t3.nano", "InstanceType=t3.nano is not one of the template's AllowedValues: "),
    ("MaxSize=1", "MaxSize=1 is below the template's MinValue 2 (the tasks need 2 hosts at the deployment peak)"),
    ("MinSize=21", "MinSize=21 is above the template's MaxValue 20"),
    ("ImageTag=-bad", "ImageTag=-bad does not match the template's AllowedPattern "),
    ("DomainName=" + "a" * 61 + ".com", "is longer than the template's MaxLength 64"),
])
def test_a_parameter_outside_the_template_s_constraints_is_refused_before_anything_is_made(aws, command, params,
                                                                                         sentence):
    done = cli(command, STACK=STACK, PARAMS=params, SKIP_IMAGES="1")
    assert sentence in one_sentence(done)
    assert one_sentence(done).startswith("error: PARAMS: ")
    nothing_made(aws)


def test_the_constraints_read_as_cloudformation_reads_them():
    template = yaml.safe_load((BUILD / "main.yaml").read_text())
    assert preflight.constraints(template, {"InstanceType": "t3.large", "MaxSize": "2", "MinSize": "0",
                                            "ImageTag": "abc123", "DomainName": ""}) is None
    assert "is not a number" in preflight.constraints(template, {"MaxSize": "two"})
    # The pattern must match the whole value, not a part of it.
    assert "AllowedPattern" in preflight.constraints(template, {"ImageTag": "ok tag"})
    assert "MinLength 3" in preflight.constraints(
        {"Parameters": {"Name": {"Type": "String", "MinLength": 3}}}, {"Name": "ab"})
    lists = {"Parameters": {"Zones": {"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]}}}
    assert preflight.constraints(lists, {"Zones": "a,b"}) is None
    assert "AllowedValues" in preflight.constraints(lists, {"Zones": "a,c"})


def test_rules_are_checked_beside_the_constraints_by_make_diff(aws):
    done = cli("diff", STACK=STACK, PARAMS="HostedZoneId=Z0123456789ABCDEFGHIJ")
    assert one_sentence(done) == "error: PARAMS: HostedZoneId needs DomainName: give the name to serve from that " \
                                 "hosted zone"
    nothing_made(aws)


# --- Docker and the sources ------------------------------------------------------------------------

NO_ENGINE = '''#!/bin/sh
echo "$@" >> "$DOCKER_LOG"
echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2
exit 1
'''


def test_a_first_deploy_without_docker_is_refused_before_a_clone_a_bucket_or_a_stack(aws, tmp_path):
    env = stand_in_docker(tmp_path, NO_ENGINE)
    # No source directory given: the sources would be cloned (sources.yaml); Docker is asked first.
    for name in ("DKS_API_DIR", "DKS_UI_DIR"):
        env.pop(name)
    clones = ROOT / ".sources"
    had_clones = clones.exists()
    done = cli("deploy", STACK=STACK, **env)
    line = one_sentence(done)
    assert line.startswith("error: no Docker engine answers (`docker info` failed: Cannot connect to the Docker "
                           "daemon") and line.endswith("deploy with SKIP_IMAGES=1 IMAGE_TAG=<tag>")
    assert "nothing was made" in line
    assert "git clone" not in done.stdout and clones.exists() == had_clones
    assert Path(env["DOCKER_LOG"]).read_text().split() == ["info", "--format", "{{.ServerVersion}}"]
    nothing_made(aws)


def test_a_missing_source_is_refused_before_anything_is_made(aws, tmp_path):
    env = stand_in_docker(tmp_path, "#!/bin/sh\necho \"$@\" >> \"$DOCKER_LOG\"\n")
    done = cli("deploy", STACK=STACK, **{**env, "DKS_UI_DIR": str(tmp_path / "nowhere")})
    nowhere = tmp_path / "nowhere"
    assert one_sentence(done).startswith(f"error: dks-ui: its source is not available (DKS_UI_DIR={nowhere} is not a "
                                         "directory); nothing was made")
    nothing_made(aws)


# --- SKIP_IMAGES with nothing in ECR ----------------------------------------------------------------

def test_skip_images_on_a_first_deploy_with_empty_repositories_makes_the_services_with_no_tasks(aws):
    done = cli("deploy", STACK=STACK, SKIP_IMAGES="1")
    assert done.returncode == 0, done.stdout + done.stderr
    (said,) = [line for line in done.stdout.splitlines() if "SKIP_IMAGES=1" in line]
    assert said.startswith(f"{STACK}: SKIP_IMAGES=1 and ECR holds no {STACK}/dks-api:latest, {STACK}/dks-ui:latest, "
                           f"{STACK}/mirror/library/postgres:16.4-alpine-amd64: creating the services with no tasks")
    cfn = aws.client("cloudformation")
    root = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in root["Parameters"]}["ServicesRunning"] == "false"
    services = aws.client("ecs").describe_services(cluster=STACK, services=["dks-db", "dks-api", "dks-ui"])
    assert [s["desiredCount"] for s in services["services"]] == [0, 0, 0]

    # Still nothing in ECR: a second deploy keeps them stopped rather than start tasks that cannot pull.
    again = cli("deploy", STACK=STACK, SKIP_IMAGES="1")
    assert again.returncode == 0 and f"{STACK}: no changes" in again.stdout, again.stdout + again.stderr
    assert cli("cleanup", "--yes", STACK=STACK).returncode == 0
