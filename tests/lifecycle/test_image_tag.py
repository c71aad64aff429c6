"""The tag make images gives the app's images covers all that goes into them: commits, build arguments, platform.

Tags are immutable and a tag ECR already holds is never built again, so anything that makes an
image differ and is not in the tag would leave the old image running.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import images  # noqa: E402

URL = {"dks-ui": {"KNOWLEDGE_SHARE_API": "http://dks-alb-1.us-east-1.elb.amazonaws.com:8080"}}


def commit(source: Path, text: str) -> None:
    source.mkdir(exist_ok=True)
    (source / "Dockerfile").write_text(text)
    git = ["git", "-C", str(source), "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
    if not (source / ".git").exists():
        subprocess.run(["git", "init", "-q", str(source)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", text], check=True)


@pytest.fixture
def sources(tmp_path) -> dict[str, Path]:
    found = {name: tmp_path / name for name in ("dks-api", "dks-ui")}
    for source in found.values():
        commit(source, "FROM scratch\n")
    return found


def test_the_same_inputs_give_the_same_tag(sources):
    tag = images.tag_for(sources, URL, "linux/amd64")
    assert tag == images.tag_for(dict(reversed(sources.items())), URL, "linux/amd64")
    assert len(tag) == 12 and "-local-" not in tag


@pytest.mark.parametrize("args", [
    {"dks-ui": {"KNOWLEDGE_SHARE_API": "https://dks-alb-1.us-east-1.elb.amazonaws.com:8080"}},  # scheme
    {"dks-ui": {"KNOWLEDGE_SHARE_API": "http://dks.example.com:8080"}},  # domain
    {"dks-ui": {}},  # the argument gone
    {**URL, "dks-api": {"KNOWLEDGE_SHARE_API": URL["dks-ui"]["KNOWLEDGE_SHARE_API"]}},  # given to another image
    {"dks-ui": {"KNOWLEDGE_SHARE_API": URL["dks-ui"]["KNOWLEDGE_SHARE_API"], "MORE": ""}},  # one more
])
def test_a_changed_build_argument_changes_the_tag(sources, args):
    assert images.tag_for(sources, args, "linux/amd64") != images.tag_for(sources, URL, "linux/amd64")


def test_the_platform_changes_the_tag(sources):
    assert images.tag_for(sources, URL, "linux/arm64") != images.tag_for(sources, URL, "linux/amd64")


def test_a_new_commit_changes_the_tag_and_local_changes_add_a_time(sources):
    tag = images.tag_for(sources, URL, "linux/amd64")
    commit(sources["dks-api"], "FROM scratch\nLABEL v=2\n")
    assert images.tag_for(sources, URL, "linux/amd64") != tag
    (sources["dks-ui"] / "Dockerfile").write_text("FROM busybox\n")
    assert "-local-" in images.tag_for(sources, URL, "linux/amd64")
