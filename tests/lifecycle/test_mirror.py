"""make deploy / images copy Docker Hub images into the app's ECR, on the emulator, with a stand-in `docker`.

The stand-in records every command, and a `docker push` puts a manifest under the pushed tag into
the emulated ECR (as a real push would), noting whether the root stack existed at that moment:
so a second run finds the copy there, and the order of copies and root stack is visible.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import inventory
import pytest
import yaml
from helpers import ROOT, stand_in_docker

STACK = "dks"
REGISTRY_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
STAND_IN = '''#!{python}
"""docker, as far as make images uses it: records each command; a push lands in the (emulated) ECR."""
import hashlib, json, os, sys
import boto3
from botocore.exceptions import ClientError
argv = sys.argv[1:]
entry = {{"argv": argv}}
if argv[0] == "login":
    assert sys.stdin.read(), "the password comes on stdin"
if argv[0] == "push":
    try:
        root = boto3.client("cloudformation").describe_stacks(StackName=os.environ["STACK"])["Stacks"][0]
        entry["root"] = root["StackStatus"]
        entry["running"] = {{p["ParameterKey"]: p["ParameterValue"] for p in root["Parameters"]}}["ServicesRunning"]
    except ClientError:
        entry["root"] = None
    repository, _, tag = argv[1].partition("/")[2].rpartition(":")
    digest = "sha256:" + hashlib.sha256(argv[1].encode()).hexdigest()
    manifest = {{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {{"digest": digest, "size": 1,
                           "mediaType": "application/vnd.docker.container.image.v1+json"}},
                "layers": []}}
    boto3.client("ecr").put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)
with open(os.environ["DOCKER_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
if argv[0] == "build" and os.environ.get("DOCKER_BUILD") == "fail":
    sys.exit(1)
'''


def run(command: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, f"scripts/{command}.py"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def docker(tmp_path) -> dict[str, str]:
    """Environment with the stand-in `docker` first on PATH and two git checkouts as the sources."""
    return stand_in_docker(tmp_path, STAND_IN.format(python=sys.executable))


def calls(env: dict[str, str]) -> list[dict]:
    """The commands since the last call (each with the root's status at a push)."""
    log = Path(env["DOCKER_LOG"])
    if not log.exists():
        return []
    found = [json.loads(line) for line in log.read_text().splitlines()]
    log.unlink()
    return found


def describe(aws, name: str) -> dict:
    return aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]


def parameters(stack: dict) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def task_images(aws, cluster: str, services: list[str]) -> dict[str, str]:
    ecs = aws.client("ecs")
    found = {}
    for svc in ecs.describe_services(cluster=cluster, services=services)["services"]:
        definition = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        found[svc["serviceName"]] = definition["containerDefinitions"][0]["image"]
    return found


def tags_in(aws, repository: str) -> set[str]:
    ids = aws.client("ecr").list_images(repositoryName=repository)["imageIds"]
    return {i["imageTag"] for i in ids if "imageTag" in i}


def test_deploy_copies_postgres_before_the_root_exists_and_rebuilds_only_when_a_build_argument_changes(aws, docker):
    before = inventory.take(aws)
    first = run("deploy", STACK=STACK, **docker)
    assert first.returncode == 0, first.stdout + first.stderr
    copy_uri = outputs(describe(aws, f"{STACK}-registry"))["MirrorLibraryPostgresRepositoryUri"]
    assert copy_uri == f"{REGISTRY_HOST}/{STACK}/mirror/library/postgres"
    copy = f"{copy_uri}:16.4-alpine-amd64"
    made = calls(docker)
    assert [c["argv"] for c in made[2:5]] == [
        ["pull", "--platform", "linux/amd64", "postgres:16.4-alpine"],  # the exact reference, for t3 hosts
        ["tag", "postgres:16.4-alpine", copy],
        ["push", copy],
    ]
    pushes = {c["argv"][1]: c["root"] for c in made if c["argv"][0] == "push"}
    assert pushes.pop(copy) is None, "copied before the root stack existed"
    assert set(pushes.values()) == {"CREATE_COMPLETE"}, "built once the root (no tasks) gave the URLs"
    assert tags_in(aws, f"{STACK}/mirror/library/postgres") == {"16.4-alpine-amd64"}
    root = describe(aws, STACK)
    tag = parameters(root)["ImageTag"]
    images = task_images(aws, STACK, ["dks-db", "dks-ui"])
    assert images == {"dks-db": copy, "dks-ui": f"{REGISTRY_HOST}/{STACK}/dks-ui:{tag}"}, "hosts pull only from ECR"

    # Nothing changed: nothing is copied, built or pushed, and docker is not even asked.
    again = run("images", STACK=STACK, **docker)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"images: postgres:16.4-alpine already in ECR as {copy}, not copied again" in again.stdout
    assert f"images: dks-api, dks-ui already in ECR as {tag}, not built again" in again.stdout
    assert calls(docker) == []
    same = run("deploy", STACK=STACK, **docker)
    assert same.returncode == 0, same.stdout + same.stderr
    assert calls(docker) == [] and same.stdout.count(f"{STACK}: no changes") == 2
    assert parameters(describe(aws, STACK))["ImageTag"] == tag

    # A certificate turns the API's URL into https: the UI inlines it, so the set gets a new tag, built
    # with the URL this deploy gives the root; the copy stays.
    certificate = aws.client("acm").request_certificate(DomainName="dks.example.com")["CertificateArn"]
    https = run("deploy", STACK=STACK, PARAMS=f"CertificateArn={certificate} DomainName=dks.example.com", **docker)
    assert https.returncode == 0, https.stdout + https.stderr
    root = describe(aws, STACK)
    api_url, new_tag = outputs(root)["ApiUrl"], parameters(root)["ImageTag"]
    assert api_url == "https://dks.example.com:8080" and new_tag != tag
    ui = f"{REGISTRY_HOST}/{STACK}/dks-ui:{new_tag}"
    built = [c["argv"] for c in calls(docker) if c["argv"][0] in ("pull", "build")]
    assert [c[0] for c in built] == ["build", "build"], "the copy is not made again"
    assert built[1] == ["build", "--platform", "linux/amd64", "--tag", ui,
                        "--build-arg", f"KNOWLEDGE_SHARE_API={api_url}", docker["DKS_UI_DIR"]]
    assert task_images(aws, STACK, ["dks-ui"]) == {"dks-ui": ui}

    assert run("cleanup", STACK=STACK, YES="1").returncode == 0
    aws.client("acm").delete_certificate(CertificateArn=certificate)
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_a_deploy_after_a_first_one_that_failed_building_keeps_the_services_stopped_until_the_images_exist(
        aws, docker):
    before = inventory.take(aws)
    failed = run("deploy", STACK=STACK, DOCKER_BUILD="fail", **docker)
    assert failed.returncode == 1 and "building dks-api (nothing pushed yet) failed" in failed.stderr
    assert parameters(describe(aws, STACK))["ServicesRunning"] == "false"  # the root made to learn the URLs
    calls(docker)

    resumed = run("deploy", STACK=STACK, **docker)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    built = [c for c in calls(docker) if c["argv"][0] == "push"]
    assert len(built) == 2 and {c["running"] for c in built} == {"false"}, "no task started before its image"
    assert parameters(describe(aws, STACK))["ServicesRunning"] == "true"

    assert run("cleanup", STACK=STACK, YES="1").returncode == 0
    assert inventory.difference(before, inventory.take(aws)) == {}


DIGEST = hashlib.sha256(b"busybox 1.36").hexdigest()
PUBLIC_APP = {
    "name": "mirrors", "namespace": "mirrors.local",
    "services": [
        {"name": "kv", "image": "redis:7.4-alpine", "port": 6379},
        # the same image, spelt as Docker's canonical name: the same copy
        {"name": "kv-twin", "image": "docker.io/library/redis:7.4-alpine", "port": 6379},
        {"name": "proxy", "image": "public.ecr.aws/nginx/nginx:1.27", "port": 80},
        {"name": "pinned", "image": f"busybox:1.36@sha256:{DIGEST}", "port": 8080,
         "command": ["httpd", "-f", "-p", "8080"]},
    ],
}


def test_an_app_of_public_images_copies_each_docker_hub_image_once_and_uses_the_others_as_they_are(
        aws, docker, tmp_path):
    data = json.loads(json.dumps(PUBLIC_APP))
    for svc in data["services"]:
        svc.update(cpu=128, memory=128, deployment={"min_healthy_percent": 0, "max_percent": 100})
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(data))
    before = inventory.take(aws)

    done = run("deploy", STACK="mirrors", CONFIG=str(config), **docker)
    assert done.returncode == 0, done.stdout + done.stderr
    redis = f"{REGISTRY_HOST}/mirrors/mirror/library/redis:7.4-alpine-amd64"
    busybox = f"{REGISTRY_HOST}/mirrors/mirror/library/busybox:sha256-{DIGEST}-amd64"
    made = calls(docker)
    assert [c["argv"] for c in made[2:]] == [
        ["pull", "--platform", "linux/amd64", "redis:7.4-alpine"],
        ["tag", "redis:7.4-alpine", redis],
        ["push", redis],
        # pulled by the reference as written; Docker keeps only the digest of a tag@digest reference
        ["pull", "--platform", "linux/amd64", f"busybox:1.36@sha256:{DIGEST}"],
        ["tag", f"busybox@sha256:{DIGEST}", busybox],
        ["push", busybox],
    ]
    assert {c["root"] for c in made if c["argv"][0] == "push"} == {None}, "no URL needed: copied before the root"
    root = describe(aws, "mirrors")
    assert "ImageTag" not in parameters(root), "nothing built, no tag to choose"
    assert task_images(aws, "mirrors", ["kv", "kv-twin", "proxy", "pinned"]) == {
        "kv": redis, "kv-twin": redis, "proxy": "public.ecr.aws/nginx/nginx:1.27", "pinned": busybox}
    repositories = {r["repositoryName"] for r in aws.client("ecr").describe_repositories()["repositories"]}
    assert repositories == {"mirrors/mirror/library/redis", "mirrors/mirror/library/busybox"}

    assert run("cleanup", STACK="mirrors", CONFIG=str(config), YES="1").returncode == 0
    assert inventory.difference(before, inventory.take(aws)) == {}
