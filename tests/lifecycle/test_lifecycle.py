"""make deploy / images / status / verify / cleanup, end to end on the emulator, as a user runs them.

Each command runs as its own process through the Makefile (or the script the target calls), with
the emulator's endpoint in the environment and nothing else changed. Every scenario ends with an
inventory of the account equal to the one taken before it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import inventory
import stacks
import pytest
from helpers import BUILD, ROOT, as_typed, stand_in_docker

STACK = "dks"
REGISTRY = "dks-registry"
ACCOUNT_BUCKET = "dks-templates-123456789012-us-east-1"


def run(command: str, *args: str, make: bool = False, **env: str) -> subprocess.CompletedProcess:
    """`make <command>` (make=True) or `python scripts/<command>.py`, with extra environment."""
    argv = ["make", "--no-print-directory", command] if make else [sys.executable, f"scripts/{command}.py", *args]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=as_typed(**env), timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def stack(aws, name: str) -> dict:
    return aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]


def parameters(description: dict) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in description["Parameters"]}


def test_deploy_again_status_verify_cleanup_twice(aws):
    before = inventory.take(aws)

    # ECR is empty, so SKIP_IMAGES=1 alone would make the services with no task; the emulator's tasks
    # need no image, and this scenario follows running services.
    first = run("deploy", make=True, STACK=STACK, SKIP_IMAGES="1", PARAMS="ServicesRunning=true")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"bucket {ACCOUNT_BUCKET}: creating" in first.stdout
    built = len(list(BUILD.glob("*.yaml")))
    assert f"({built} of {built} uploaded" in first.stdout
    root = stack(aws, STACK)
    assert root["StackStatus"] == "CREATE_COMPLETE"
    assert {"Key": "ecs-app:stack", "Value": STACK} in root["Tags"]
    given = parameters(root)
    assert given["QSS3BucketName"] == ACCOUNT_BUCKET and given["EnvironmentName"] == STACK
    assert given["QSS3KeyPrefix"].startswith(f"{STACK}/") and given["ServicesRunning"] == "true"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in root["Outputs"]}
    for key in ("AppUrl", "ApiUrl", "ClusterName"):
        assert outputs[key] in first.stdout, f"{key} printed at the end"
    # the live view followed the nested stacks, not just the root
    assert "ServicesStack" in first.stdout and "DksApiService" in first.stdout
    s3 = aws.client("s3")
    encryption = s3.get_bucket_encryption(Bucket=ACCOUNT_BUCKET)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=ACCOUNT_BUCKET)["PublicAccessBlockConfiguration"].values())
    assert stack(aws, REGISTRY)["StackStatus"] == "CREATE_COMPLETE"

    again = run("deploy", make=True, STACK=STACK, SKIP_IMAGES="1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{REGISTRY}: no changes" in again.stdout and f"{STACK}: no changes" in again.stdout
    assert f"(0 of {built} uploaded" in again.stdout
    assert stack(aws, STACK)["StackStatus"] == "CREATE_COMPLETE", "nothing was executed"

    status = run("status", make=True, STACK=STACK)
    assert status.returncode == 0, status.stderr
    for name in ("dks-db", "dks-api", "dks-ui"):
        assert any(line.split()[:2] == ["service", name] and "desired 1" in line for line in status.stdout.splitlines())
    assert any(line.split()[:2] == ["stack", "ServicesStack"] for line in status.stdout.splitlines())
    assert outputs["AppUrl"] in status.stdout

    verify = run("verify", STACK=STACK)
    assert verify.returncode == 3, verify.stdout  # nothing failed, not everything observable
    lines = verify.stdout.splitlines()
    assert any(line.startswith("PASS") and "stacks complete" in line for line in lines)
    for fact in ("container instances", "services steady", "targets registered", "Cloud Map instances"):
        (line,) = [line for line in lines if fact in line]
        assert line.startswith("PASS") and "emulated" in line, line  # the emulator's scheduler placed them
    (line,) = [line for line in lines if "targets healthy" in line]
    assert line.startswith("NOT OBSERVABLE HERE"), line
    probes = [line for line in lines if " GET " in line]
    assert len(probes) == 2 and all(line.startswith("NOT OBSERVABLE HERE") for line in probes)
    assert any(f"GET {outputs['ApiUrl']}/actuator/health" in line for line in probes)

    gone = run("cleanup", make=True, STACK=STACK, YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"bucket {ACCOUNT_BUCKET}: deleted" in gone.stdout
    assert "data: EFS file system fs-" in gone.stdout and "deleted" in gone.stdout
    assert "nothing tagged dks remains" in gone.stdout
    assert inventory.difference(before, inventory.take(aws)) == {}

    twice = run("cleanup", make=True, STACK=STACK, YES="1")
    assert twice.returncode == 0, twice.stdout + twice.stderr
    assert f"{STACK}: no such stack" in twice.stdout and f"{REGISTRY}: no such stack" in twice.stdout
    assert run("status", STACK=STACK).stdout.startswith(f"{STACK}: not deployed")


def test_a_deploy_that_fails_midway_names_the_root_cause_and_cleanup_leaves_nothing(aws):
    before = inventory.take(aws)
    # A valid bucket name, but no such bucket: ELB refuses to enable access logs to it, midway through.
    failed = run("deploy", STACK=STACK, SKIP_IMAGES="1", PARAMS="AccessLogsBucket=no-such-logs-bucket")
    assert failed.returncode == 1
    assert "error: dks: ROLLBACK_COMPLETE" in failed.stderr
    (cause,) = [line for line in failed.stderr.splitlines() if line.startswith("root cause:")]
    assert "LoadbalancerStack" in cause and "/ LoadBalancer (AWS::ElasticLoadBalancingV2::LoadBalancer) CREATE_FAILED" \
        in cause
    assert "Access Denied for bucket: no-such-logs-bucket. Please check S3bucket permission" in cause

    # deploy again resumes: the empty failed stack is replaced
    resumed = run("deploy", STACK=STACK, SKIP_IMAGES="1")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "ROLLBACK_COMPLETE from a failed first create; it holds nothing, deleting it first" in resumed.stdout
    assert stack(aws, STACK)["StackStatus"] == "CREATE_COMPLETE"

    failed_again = run("deploy", STACK=STACK, SKIP_IMAGES="1", PARAMS="NoSuchParameter=1")
    assert failed_again.returncode == 2 and "PARAMS names no parameter of main.yaml: NoSuchParameter" in \
        failed_again.stderr

    gone = run("cleanup", STACK=STACK, YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_cleanup_recovers_a_stack_left_delete_failed(aws):
    before = inventory.take(aws)
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    # An instance registered by hand keeps Cloud Map from deleting the service: the delete fails.
    sd = aws.client("servicediscovery")
    (service,) = [s for s in sd.list_services()["Services"] if s["Name"] == "dks-db"]
    sd.register_instance(ServiceId=service["Id"], InstanceId="by-hand", Attributes={"AWS_INSTANCE_IPV4": "10.20.0.9"})
    cfn = aws.client("cloudformation")
    cfn.delete_stack(StackName=STACK)
    assert stack(aws, STACK)["StackStatus"] == "DELETE_FAILED"

    gone = run("cleanup", STACK=STACK, YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "DELETE_FAILED (attempt 1 of 3)" in gone.stdout
    assert f"fixed: Cloud Map instance by-hand deregistered from {service['Id']}" in gone.stdout
    assert "dks: deleted" in gone.stdout
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_cleanup_lists_what_still_carries_the_stack_tag(aws):
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "ecs-app:stack", "Value": STACK}])

    gone = run("cleanup", STACK=STACK, YES="1")
    assert gone.returncode == 1
    assert "cleanup: 1 resource still carries the tag of dks:" in gone.stdout
    assert vpc in gone.stdout
    ec2.delete_vpc(VpcId=vpc)
    assert run("cleanup", STACK=STACK, YES="1").returncode == 0


def test_cleanup_asks_before_deleting_and_refuses_without_a_terminal(aws):
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    refused = run("cleanup", STACK=STACK)  # stdin is not a terminal and YES is not set
    assert refused.returncode == 2 and "say YES=1" in refused.stderr
    assert stack(aws, STACK)["StackStatus"] == "CREATE_COMPLETE", "nothing deleted"
    assert run("cleanup", STACK=STACK, YES="1").returncode == 0


def test_region_and_stack_name_come_from_the_environment_and_are_checked(aws):
    env = {k: v for k, v in os.environ.items() if k != "AWS_DEFAULT_REGION"}
    only_aws_region = subprocess.run([sys.executable, "scripts/status.py"], cwd=ROOT, capture_output=True, text=True,
                                     env={**env, "STACK": STACK, "AWS_REGION": "eu-west-1"})
    assert only_aws_region.stdout.startswith(f"{STACK}: not deployed in eu-west-1")
    bad = run("status", STACK="Not_A_Name")
    assert bad.returncode == 2 and "cannot name a deployment" in bad.stderr


# --- images ------------------------------------------------------------------------------------

STAND_IN = '''#!{python}
"""A docker client that records its arguments and answers like a working engine (or a missing one)."""
import json, os, sys
with open(os.environ["DOCKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1] == "info" and os.environ.get("DOCKER_ENGINE") == "down":
    print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock", file=sys.stderr)
    sys.exit(1)
if sys.argv[1] == "login":
    assert sys.stdin.read(), "the password comes on stdin"
'''


@pytest.fixture
def docker(tmp_path) -> dict[str, str]:
    """Environment with a stand-in `docker` first on PATH and two git checkouts as the sources."""
    return stand_in_docker(tmp_path, STAND_IN.format(python=sys.executable))


def calls(env: dict[str, str]) -> list[list[str]]:
    log = Path(env["DOCKER_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_first_deploy_learns_the_api_url_then_builds_and_pushes_the_images(aws, docker):
    before = inventory.take(aws)
    done = run("deploy", STACK=STACK, **docker)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "first deploy; creating it with ServicesRunning=false" in done.stdout

    root = stack(aws, STACK)
    api_url = {o["OutputKey"]: o["OutputValue"] for o in root["Outputs"]}["ApiUrl"]
    tag = parameters(root)["ImageTag"]
    registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    api, ui = f"{registry}/{STACK}/dks-api:{tag}", f"{registry}/{STACK}/dks-ui:{tag}"
    db = f"{registry}/{STACK}/mirror/library/postgres:16.4-alpine-amd64"
    assert calls(docker) == [
        ["info", "--format", "{{.ServerVersion}}"],
        ["login", "--username", "AWS", "--password-stdin", registry],
        ["pull", "--platform", "linux/amd64", "postgres:16.4-alpine"],  # Docker Hub's image, copied first
        ["tag", "postgres:16.4-alpine", db],
        ["push", db],
        ["build", "--platform", "linux/amd64", "--tag", api, docker["DKS_API_DIR"]],
        ["build", "--platform", "linux/amd64", "--tag", ui, "--build-arg", f"KNOWLEDGE_SHARE_API={api_url}",
         docker["DKS_UI_DIR"]],
        ["push", api],
        ["push", ui],
    ]
    assert parameters(root)["ServicesRunning"] == "true"
    ecs = aws.client("ecs")
    images = {}
    for svc in ecs.describe_services(cluster=STACK, services=["dks-db", "dks-api", "dks-ui"])["services"]:
        assert svc["desiredCount"] == 1, svc["serviceName"]
        definition = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        images[svc["serviceName"]] = definition["containerDefinitions"][0]["image"]
    assert images == {"dks-db": db, "dks-api": api, "dks-ui": ui}

    # Tags are immutable: an image already in ECR under the tag is not built, copied or pushed again.
    ecr = aws.client("ecr")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "x"}, "layers": []})
    ecr.put_image(repositoryName=f"{STACK}/dks-api", imageManifest=manifest, imageTag=tag)
    ecr.put_image(repositoryName=f"{STACK}/mirror/library/postgres", imageManifest=manifest,
                  imageTag="16.4-alpine-amd64")
    Path(docker["DOCKER_LOG"]).unlink()
    again = run("images", STACK=STACK, **docker)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"images: dks-api already in ECR as {tag}, not built again" in again.stdout
    assert f"images: postgres:16.4-alpine already in ECR as {db}, not copied again" in again.stdout
    assert [c[0] for c in calls(docker)] == ["info", "login", "build", "push"]
    assert calls(docker)[2][-1] == docker["DKS_UI_DIR"]

    assert run("cleanup", STACK=STACK, YES="1").returncode == 0
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_images_without_a_docker_engine_fail_clearly_and_push_nothing(aws, docker):
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    down = run("images", STACK=STACK, DOCKER_ENGINE="down", **docker)
    assert down.returncode == 1
    assert "no Docker engine answers" in down.stderr and "nothing was built or pushed" in down.stderr
    assert calls(docker) == [["info", "--format", "{{.ServerVersion}}"]]
    ecr = aws.client("ecr")
    assert all(not ecr.list_images(repositoryName=f"{STACK}/{repo}")["imageIds"] for repo in ("dks-api", "dks-ui"))

    missing = run("images", STACK=STACK, **{**docker, "DKS_UI_DIR": str(Path(docker["DKS_UI_DIR"]) / "nope")})
    assert missing.returncode == 1 and "is not a directory" in missing.stderr
    assert run("cleanup", STACK=STACK, YES="1").returncode == 0


def test_images_need_the_registry_stack(aws, docker):
    refused = run("images", STACK=STACK, **docker)
    assert refused.returncode == 1 and "no registry stack dks-registry: run make deploy" in refused.stderr
    assert calls(docker) == []


def test_the_root_cause_of_a_service_that_does_not_stabilize_names_its_stopped_tasks(aws):
    """What deploy prints after an ECS service's CREATE_FAILED: the service's counts and events and
    why its tasks stopped, read from ECS (here the service's task, stopped as a crash would stop it)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from lifecycle import aws as lifecycle_aws
    from lifecycle import stacks as lifecycle_stacks

    assert run("deploy", STACK=STACK, SKIP_IMAGES="1", PARAMS="ServicesRunning=true").returncode == 0
    ecs = aws.client("ecs")
    (service,) = ecs.describe_services(cluster=STACK, services=["dks-api"])["services"]
    (task,) = ecs.list_tasks(cluster=STACK, serviceName="dks-api")["taskArns"]
    reason = "Essential container in task exited"
    ecs.stop_task(cluster=STACK, task=task, reason=reason)

    story = lifecycle_stacks.service_story(lifecycle_aws.target(STACK), service["serviceArn"])
    assert story[0].startswith("  service dks-api: desired 1, running 1")  # the scheduler placed a replacement
    assert f"  stopped task {task.rsplit('/', 1)[-1]}: {reason}" in story
    assert run("cleanup", STACK=STACK, YES="1").returncode == 0


def test_diff_previews_changes_and_changes_nothing(aws):
    cfn = aws.client("cloudformation")

    def live_stacks() -> list[str]:
        return sorted(s["StackName"] + ":" + s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"]
                      if s["StackStatus"] != "DELETE_COMPLETE")

    new = run("diff", make=True, STACK=STACK)
    assert new.returncode == 0, new.stdout + new.stderr
    assert f"{REGISTRY} (new stack): 3 changes" in new.stdout  # dks-api, dks-ui and the postgres copy
    assert f"{STACK} (new stack): {stacks.nested_count()} changes" in new.stdout
    assert "  Add    ServicesStack AWS::CloudFormation::Stack" in new.stdout
    assert live_stacks() == [], "the change sets and their empty stacks are gone"

    assert run("deploy", STACK=STACK, SKIP_IMAGES="1", PARAMS="ServicesRunning=true").returncode == 0
    deployed = live_stacks()
    same = run("diff", STACK=STACK)
    assert same.returncode == 0 and "diff: no changes" in same.stdout

    bigger = run("diff", STACK=STACK, PARAMS="MaxSize=4")
    assert bigger.returncode == 0, bigger.stdout + bigger.stderr
    assert f"{STACK} (update): 1 change" in bigger.stdout
    assert "  Modify ClusterStack AWS::CloudFormation::Stack" in bigger.stdout
    assert live_stacks() == deployed and parameters(stack(aws, STACK))["MaxSize"] == "3", "not executed"
    assert not [c for c in cfn.list_change_sets(StackName=STACK)["Summaries"] if c["ChangeSetName"].startswith("diff-")]
    assert run("cleanup", STACK=STACK, YES="1").returncode == 0


def test_a_certificate_serves_https_and_redirects_http(aws):
    before = inventory.take(aws)
    # A certificate made elsewhere covers the user's name, never the load balancer's: DomainName goes with it.
    certificate = aws.client("acm").request_certificate(DomainName="dks.example.com")["CertificateArn"]
    done = run("deploy", STACK=STACK, SKIP_IMAGES="1",
               PARAMS=f"CertificateArn={certificate} DomainName=dks.example.com")
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack(aws, STACK)["Outputs"]}
    assert (outputs["AppUrl"], outputs["ApiUrl"]) == ("https://dks.example.com", "https://dks.example.com:8080")

    elb = aws.client("elbv2")
    (balancer,) = elb.describe_load_balancers()["LoadBalancers"]
    # no HostedZoneId: the user points the name at the load balancer, whose name an output gives
    assert outputs["LoadBalancerDnsName"] == balancer["DNSName"]
    assert not [z for z in aws.client("route53").list_hosted_zones()["HostedZones"] if not z["Config"]["PrivateZone"]]
    listeners = {item["Port"]: item for item in elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
        "Listeners"]}
    assert sorted(listeners) == [80, 443, 8080]
    (redirect,) = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    for port in (443, 8080):
        assert listeners[port]["Protocol"] == "HTTPS"
        assert listeners[port]["Certificates"][0]["CertificateArn"] == certificate
    # its own group (the other holds the hosts' addresses, for the bridge UI's calls)
    (group,) = aws.client("ec2").describe_security_groups(Filters=[
        {"Name": "group-id", "Values": balancer["SecurityGroups"]}, {"Name": "tag:Name", "Values": ["dks-alb"]}])[
        "SecurityGroups"]
    assert sorted(p["FromPort"] for p in group["IpPermissions"]) == [80, 443, 8080]

    ecs = aws.client("ecs")
    (ui,) = ecs.describe_services(cluster=STACK, services=["dks-ui"])["services"]
    container = ecs.describe_task_definition(taskDefinition=ui["taskDefinition"])["taskDefinition"][
        "containerDefinitions"][0]
    assert {"name": "KNOWLEDGE_SHARE_API", "value": outputs["ApiUrl"]} in container["environment"]

    assert run("cleanup", STACK=STACK, YES="1").returncode == 0
    aws.client("acm").delete_certificate(CertificateArn=certificate)
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_cleanup_keeps_the_data_when_asked(aws):
    before = inventory.take(aws)
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    kept = run("cleanup", STACK=STACK, YES="1", KEEP_DATA="1")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    efs = aws.client("efs")
    (system,) = efs.describe_file_systems()["FileSystems"]
    assert system["Name"] == f"{STACK}-data"
    assert f"data: EFS file system {system['FileSystemId']} kept (KEEP_DATA=1)" in kept.stdout
    assert not efs.describe_mount_targets(FileSystemId=system["FileSystemId"])["MountTargets"]
    # a later cleanup without KEEP_DATA removes it: nothing of the deployment is left
    gone = run("cleanup", STACK=STACK, YES="1")
    assert gone.returncode == 0 and f"data: EFS file system {system['FileSystemId']} deleted" in gone.stdout
    assert inventory.difference(before, inventory.take(aws)) == {}
