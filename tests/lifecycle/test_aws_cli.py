"""The README's deploy commands, run as written with the AWS CLI, against the emulator."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import inventory
import stacks
from helpers import ROOT

AWS = Path(sys.executable).with_name("aws")


def readme_deploy_commands() -> str:
    """The shell block of the README's by-hand deploy section, exactly as a reader would copy it."""
    section = (ROOT / "README.md").read_text().split("\n### By hand, with the AWS CLI\n", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


# A docker client that records its arguments (no engine runs in the tests).
DOCKER = """#!/bin/sh
[ "$1" != login ] || [ -n "$(cat)" ] || exit 1
echo "$*" >> "$DOCKER_LOG"
"""


def run(script: str, path: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{path}{AWS.parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_readme_deploy_commands_create_the_stacks_and_delete_stack_removes_them(aws, tmp_path, monkeypatch):
    commands = readme_deploy_commands()
    assert "aws cloudformation deploy" in commands and "QSS3BucketName=$BUCKET" in commands
    bucket = re.search(r"^BUCKET=(\S+)$", commands, re.M).group(1)
    (tmp_path / "docker").write_text(DOCKER)
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("DOCKER_LOG", str(tmp_path / "docker.log"))
    before = inventory.take(aws)

    deployed = run(commands, path=f"{tmp_path}{os.pathsep}")
    assert deployed.returncode == 0, deployed.stderr
    for name in ("dks-registry", "dks"):
        assert stacks.describe(aws, name)["StackStatus"] == "CREATE_COMPLETE"
    # The copy of postgres goes where the registry says, under the tag the task definition names.
    (db,) = [c["Image"]["Fn::Sub"] for t in stacks.load("services.yaml")["Resources"].values()
             if t["Type"] == "AWS::ECS::TaskDefinition" for c in t["Properties"]["ContainerDefinitions"]
             if c["Name"] == "dks-db"]
    repository, tag = db.rsplit(":", 1)
    uri = stacks.outputs(stacks.describe(aws, "dks-registry"))["MirrorLibraryPostgresRepositoryUri"]
    assert repository.split("/", 1)[1].replace("${EnvironmentName}", "dks") == uri.split("/", 1)[1]
    assert (tmp_path / "docker.log").read_text().splitlines() == [
        f"login --username AWS --password-stdin {uri.split('/')[0]}",
        "pull --platform linux/amd64 postgres:16.4-alpine",
        f"tag postgres:16.4-alpine {uri}:{tag}",
        f"push {uri}:{tag}",
    ]
    assert "AppUrl" in deployed.stdout, "the last command prints the outputs"
    assert len(stacks.nested(aws, "dks")) == stacks.nested_count() + 1

    removed = run(f"""
        aws cloudformation delete-stack --stack-name dks
        aws cloudformation wait stack-delete-complete --stack-name dks
        aws cloudformation delete-stack --stack-name dks-registry
        aws cloudformation wait stack-delete-complete --stack-name dks-registry
        aws s3 rb "s3://{bucket}" --force
    """)
    assert removed.returncode == 0, removed.stderr
    assert stacks.drop_retained(aws, before) == stacks.KEPT, "delete-stack keeps the data, its key and its secrets"
    assert inventory.difference(before, inventory.take(aws)) == {}
