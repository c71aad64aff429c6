"""make deploy asks before a change set that touches IAM or security groups or replaces a resource:
at a terminal (tmux, answered n and y), not with YES=1, not without a terminal (CI)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import tmux
from helpers import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import approval  # noqa: E402
from lifecycle import stacks as lifecycle_stacks  # noqa: E402

STACK = "dks"
QUESTION = r"Execute it on dks\? \[y/N\]"


def described(aws, name: str) -> dict | None:
    found = [s for s in aws.client("cloudformation").list_stacks()["StackSummaries"]
             if s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"]
    return found[0] if found else None


@pytest.mark.skipif(not tmux.TMUX, reason="tmux is not installed")
def test_declined_at_the_terminal_nothing_is_executed_and_deploy_says_so(aws, tmp_path):
    pane = tmux.Pane(tmp_path, tmux.script("deploy"), STACK=STACK, SKIP_IMAGES="1")
    try:
        screen = pane.until(QUESTION)
        text = "\n".join(screen)
        assert "dks: this change set widens access or replaces resources:" in text
        assert "Add IamStack (AWS::CloudFormation::Stack): creates IAM resources" in text
        assert "Add NetworkStack (AWS::CloudFormation::Stack): creates security group resources" in text
        assert "ServicesStack (AWS::CloudFormation::Stack): creates" not in text, "no IAM or group there"
        assert "dks: Add    IamStack AWS::CloudFormation::Stack" in text, "the change set is shown first"
        pane.keys("n", "Enter")
        assert pane.exit_code() == 0
        said = "\n".join(pane.history())
        assert ("deploy: not executed; the change set is deleted and dks was not created. "
                "Executed earlier in this deploy: dks-registry.") in said.replace("\n", "")
    finally:
        pane.close()
    assert described(aws, STACK) is None, "the root was neither created nor left in review"
    assert described(aws, f"{STACK}-registry")["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.skipif(not tmux.TMUX, reason="tmux is not installed")
def test_approved_at_the_terminal_the_deploy_goes_on_and_asks_once(aws, tmp_path):
    pane = tmux.Pane(tmp_path, tmux.script("deploy"), STACK=STACK, SKIP_IMAGES="1")
    try:
        pane.until(QUESTION)
        pane.keys("y", "Enter")
        assert pane.exit_code() == 0, "\n".join(pane.history())
        history = "\n".join(pane.history())
        assert history.count("[y/N]") == 1
        assert "dks: CREATE_COMPLETE: " in history
    finally:
        pane.close()
    assert described(aws, STACK)["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.skipif(not tmux.TMUX, reason="tmux is not installed")
def test_yes_does_not_ask_at_the_terminal(aws, tmp_path):
    pane = tmux.Pane(tmp_path, tmux.script("deploy"), STACK=STACK, SKIP_IMAGES="1", YES="1")
    try:
        assert pane.exit_code() == 0, "\n".join(pane.history())
        history = "\n".join(pane.history())
        assert "[y/N]" not in history and "widens access" not in history
    finally:
        pane.close()
    assert described(aws, STACK)["StackStatus"] == "CREATE_COMPLETE"


def test_without_a_terminal_deploy_goes_on_and_says_what_it_did_not_ask(aws):
    done = subprocess.run([sys.executable, "scripts/deploy.py"], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env={**os.environ, "STACK": STACK, "SKIP_IMAGES": "1"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dks: not a terminal, so executing without asking: Add IamStack" in done.stdout
    assert "[y/N]" not in done.stdout
    assert described(aws, STACK)["StackStatus"] == "CREATE_COMPLETE"


TEMPLATES = {"IamStack": {"AWS::IAM::Role"}, "ServicesStack": {"AWS::ECS::Service"}}


@pytest.mark.parametrize("change, reason", [
    ({"Action": "Modify", "LogicalResourceId": "Api", "ResourceType": "AWS::ECS::Service", "Replacement": "False"},
     None),
    ({"Action": "Modify", "LogicalResourceId": "Db", "ResourceType": "AWS::EFS::FileSystem", "Replacement": "True"},
     "Modify Db (AWS::EFS::FileSystem): REPLACED"),
    ({"Action": "Modify", "LogicalResourceId": "Lb", "ResourceType": "AWS::ElasticLoadBalancingV2::LoadBalancer",
      "Replacement": "Conditional"}, "Modify Lb (AWS::ElasticLoadBalancingV2::LoadBalancer): may be replaced"),
    ({"Action": "Add", "LogicalResourceId": "In", "ResourceType": "AWS::EC2::SecurityGroupIngress"},
     "Add In (AWS::EC2::SecurityGroupIngress): security group"),
    ({"Action": "Remove", "LogicalResourceId": "Role", "ResourceType": "AWS::IAM::Role"},
     "Remove Role (AWS::IAM::Role): IAM"),
    ({"Action": "Modify", "LogicalResourceId": "IamStack", "ResourceType": "AWS::CloudFormation::Stack"},
     "Modify IamStack (AWS::CloudFormation::Stack): may change (its changes are not listed) IAM resources"),
    ({"Action": "Modify", "LogicalResourceId": "ServicesStack", "ResourceType": "AWS::CloudFormation::Stack"}, None),
], ids=["plain", "replaced", "conditional", "group-rule", "role", "nested-unlisted", "nested-harmless"])
def test_what_is_asked_about(change, reason):
    found = approval.Approval(yes=False, templates=TEMPLATES).reasons(None, [change])
    assert found == ([reason] if reason else [])


def test_a_listed_nested_change_set_is_read_instead_of_the_template(monkeypatch):
    nested = [{"Action": "Modify", "LogicalResourceId": "HostRole", "ResourceType": "AWS::IAM::Role"}]
    monkeypatch.setattr(lifecycle_stacks, "change_set_changes",
                        lambda target, name, arn: nested if arn == "cs-iam" else [])
    review = approval.Approval(yes=False, templates=TEMPLATES)
    changes = [{"Action": "Modify", "LogicalResourceId": "IamStack", "ResourceType": "AWS::CloudFormation::Stack",
                "ChangeSetId": "cs-iam"},
               {"Action": "Modify", "LogicalResourceId": "ServicesStack",
                "ResourceType": "AWS::CloudFormation::Stack", "ChangeSetId": "cs-services"}]
    assert review.reasons(None, changes) == ["Modify IamStack/HostRole (AWS::IAM::Role): IAM"]


@pytest.mark.skipif(not tmux.TMUX, reason="tmux is not installed")
def test_an_update_declined_leaves_the_stack_as_it_was(aws, tmp_path):
    first = subprocess.run([sys.executable, "scripts/deploy.py"], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "STACK": STACK, "SKIP_IMAGES": "1", "YES": "1"}, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    cfn = aws.client("cloudformation")
    before = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    # Narrowing who reaches the load balancer changes the network stack's security group rules: its own change
    # set (one per nested stack) lists them.
    pane = tmux.Pane(tmp_path, tmux.script("deploy"), STACK=STACK, SKIP_IMAGES="1",
                     PARAMS="AllowedIngressCidr=203.0.113.7/32")
    try:
        text = "\n".join(pane.until(QUESTION))
        assert re.search(r"Modify NetworkStack/\w+ \(AWS::EC2::SecurityGroup\w*\): security group", text), text
        pane.keys("n", "Enter")
        assert pane.exit_code() == 0
        assert "the change set is deleted and dks is unchanged." in " ".join(pane.history())
    finally:
        pane.close()
    after = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert after["StackStatus"] == before["StackStatus"] and after["Parameters"] == before["Parameters"]
    waiting = [c for c in cfn.list_change_sets(StackName=STACK)["Summaries"]
               if c["StackId"] == before["StackId"] and c.get("ExecutionStatus") == "AVAILABLE"]
    assert waiting == [], "the declined change set is deleted"
