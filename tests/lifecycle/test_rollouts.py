"""Rollouts and rollback on the emulator: a new image tag changes task definitions and services only,
deploy follows the ECS deployments until steady, and make rollback puts the services back on the
revisions the templates keep for it (UpdateReplacePolicy: Retain), which make cleanup then removes."""
from __future__ import annotations

import re
import subprocess
import sys

import inventory
import pytest
import tmux
import yaml
from helpers import ROOT, as_typed

from templates_src.app import config, loading

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import aws as lifecycle_aws  # noqa: E402
from lifecycle import deploy, stacks  # noqa: E402

STACK = "dks"


def cli(command: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "scripts/ecs-app", command], cwd=ROOT, capture_output=True, text=True,
                          env=as_typed(STACK=STACK, **env), timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def deployed(tag: str) -> subprocess.CompletedProcess:
    # ECR holds no image; the emulator's tasks need none, and these scenarios follow running services.
    done = cli("deploy", SKIP_IMAGES="1", IMAGE_TAG=tag, PARAMS="ServicesRunning=true")
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def built() -> list[config.Service]:
    """The services whose image the app builds (their task definitions carry the image tag)."""
    return [svc for svc in loading.load(config.DEFAULT_CONFIG).services if not svc.image]


def running(aws) -> dict[str, str]:
    """Service name -> the task definition (family:revision) it runs."""
    ecs = aws.client("ecs")
    names = [arn.rsplit("/", 1)[-1] for arn in ecs.list_services(cluster=cluster(aws))["serviceArns"]]
    return {s["serviceName"]: s["taskDefinition"].rsplit("/", 1)[-1]
            for s in ecs.describe_services(cluster=cluster(aws), services=names)["services"]}


def cluster(aws) -> str:
    root = aws.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in root["Outputs"]}["ClusterName"]


def images(aws, services: dict[str, str]) -> dict[str, str]:
    ecs = aws.client("ecs")
    return {name: ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]["containerDefinitions"][0]["image"]
            for name, td in services.items()}


def changes(target, change_set: str, label: str) -> set[tuple[str, str, str, str]]:
    """(stack, logical ID, type, action) of a change set and of its nested change sets."""
    found = set()
    for change in stacks.change_set_changes(target, None, change_set):
        found.add((label, change["LogicalResourceId"], change["ResourceType"], change["Action"]))
        if change["ResourceType"] == "AWS::CloudFormation::Stack" and change.get("ChangeSetId"):
            found |= changes(target, change["ChangeSetId"], change["LogicalResourceId"])
    return found


def test_an_image_tag_changes_only_the_built_services_task_definitions_and_services(aws):
    deployed("v1")
    target = lifecycle_aws.target(STACK)
    staged = deploy.prepare(target, config.DEFAULT_CONFIG, None, {"ImageTag": "v2"})
    params = staged.root_parameters(target, stacks.describe(target, STACK), {"ImageTag": "v2"})
    proposal = stacks.propose(target, STACK, staged.url(target, "main.yaml"), params, nested=True, purpose="diff")
    try:
        found = changes(target, proposal.change_set, STACK)
    finally:
        stacks.withdraw(target, proposal)
    holding = {logical for logical, file in deploy.nested_templates(staged.files).items()
               if any(r["Type"] == "AWS::ECS::TaskDefinition"
                      for r in yaml.safe_load(staged.files[file])["Resources"].values())}
    expected = {(stack, f"{config.logical_id(svc.name)}{kind}", f"AWS::ECS::{kind}", "Modify")
                for svc in built() for kind in ("TaskDefinition", "Service") for stack in holding
                if f"{config.logical_id(svc.name)}{kind}" in yaml.safe_load(
                    staged.files[deploy.nested_templates(staged.files)[stack]])["Resources"]}
    expected |= {(STACK, stack, "AWS::CloudFormation::Stack", "Modify") for stack in holding}
    assert built() and found == expected


def test_deploy_follows_the_rollout_and_rollback_returns_each_service_to_its_previous_revision(aws):
    before = inventory.take(aws)
    first = deployed("v1")
    assert "rollout: every service steady" in first.stdout, first.stdout
    v1 = running(aws)

    second = deployed("v2")
    v2 = running(aws)
    names = [svc.name for svc in built()]
    for name in names:
        assert v2[name] != v1[name] and images(aws, {name: v2[name]})[name].endswith(":v2")
        # Plain text, one line per change: the new revision steady, the old one's tasks stopped by the rollout.
        assert any(line.split()[1:4] == ["rollout", name, "COMPLETED"] and v2[name] in line
                   for line in second.stdout.splitlines()), second.stdout
        assert f"stopped ({v1[name]}: " in second.stdout, second.stdout
    ecs = aws.client("ecs")
    kept = {name: ecs.describe_task_definition(taskDefinition=v1[name])["taskDefinition"]["status"] for name in names}
    assert kept == {name: "ACTIVE" for name in names}, "the replaced revisions are kept for rollback"

    back = cli("rollback", YES="1")
    assert back.returncode == 0, back.stdout + back.stderr
    now = running(aws)
    assert {name: now[name] for name in names} == {name: v1[name] for name in names}
    assert all(image.endswith(":v1") for image in images(aws, {n: now[n] for n in names}).values())
    for name in names:
        assert f"rollback: {name}: {v2[name]} -> {v1[name]}" in back.stdout
    assert "rollout: every service steady" in back.stdout
    assert "the stack's template still names" in back.stdout

    again = cli("rollback", YES="1")
    assert again.returncode == 2 and again.stderr.startswith("error: nothing to roll back to: "), again.stderr

    gone = cli("cleanup", YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "task definitions: " in gone.stdout
    assert inventory.difference(before, inventory.take(aws)) == {}, "no task definition left ACTIVE"


def test_rollback_of_one_service_leaves_the_others_and_each_rollback_goes_one_revision_further(aws):
    revisions = []
    for tag in ("v1", "v2", "v3"):
        deployed(tag)
        revisions.append(running(aws))
    one, *others = [svc.name for svc in built()]
    for expected in (revisions[1], revisions[0]):
        back = cli("rollback", SERVICE=one, YES="1")
        assert back.returncode == 0, back.stdout + back.stderr
        now = running(aws)
        assert now[one] == expected[one] and all(now[name] == revisions[2][name] for name in others)
    last = cli("rollback", SERVICE=one, YES="1")
    assert (last.returncode, last.stderr.strip()) == (
        2, f"error: nothing to roll back to: {one} runs the oldest revision this deployment keeps")

    unknown = cli("rollback", SERVICE="nope", YES="1")
    assert unknown.returncode == 2
    (line,) = unknown.stderr.strip().splitlines()
    assert line.startswith(f"error: SERVICE: 'nope' is not a service of {STACK} (it has ") and one in line, line
    assert cli("cleanup", YES="1").returncode == 0


def test_services_with_no_tasks_have_nothing_to_roll_out(aws):
    done = cli("deploy", SKIP_IMAGES="1", IMAGE_TAG="v1")  # ECR holds no v1: ServicesRunning=false
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no tasks" in done.stdout and "rollout: every service steady" in done.stdout
    assert cli("cleanup", YES="1").returncode == 0


def test_the_emulator_refuses_an_inactive_revision_as_ecs_does(aws):
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="c")
    old, new = (ecs.register_task_definition(family="f", containerDefinitions=[
        {"name": "app", "image": f"app:{tag}", "memory": 64}])["taskDefinition"]["taskDefinitionArn"]
        for tag in ("v1", "v2"))
    ecs.create_service(cluster="c", serviceName="s", taskDefinition=new, desiredCount=0)
    ecs.deregister_task_definition(taskDefinition=old)
    with pytest.raises(ecs.exceptions.ClientException, match="TaskDefinition is inactive"):
        ecs.update_service(cluster="c", service="s", taskDefinition=old)
    assert ecs.describe_services(cluster="c", services=["s"])["services"][0]["taskDefinition"] == new


@pytest.mark.skipif(not tmux.TMUX, reason="tmux is not installed")
def test_on_a_terminal_the_rollout_is_drawn_under_the_stacks_and_gives_way_to_its_summary(aws, emulator, tmp_path):
    deployed("v1")
    # Held before the UI's new task definition is made: the root update is in progress while the screen is read.
    hold = emulator.faults.hold(resource="DksUiTaskDefinition")
    pane = tmux.Pane(tmp_path, [sys.executable, "scripts/ecs-app", "deploy"], width=120, height=30, STACK=STACK,
                     SKIP_IMAGES="1", IMAGE_TAG="v2", YES="1")
    try:
        assert hold.wait(120), "\n".join(pane.history())
        screen = pane.until(r"^ECS rollout: \d/3 services settled")
        assert any(re.match(r"^dks: UPDATE_IN_PROGRESS, ", row) for row in screen), "\n".join(screen)
        assert all(any(re.match(rf"^  {name} +\w+ +dks-{name}:\d+ \d+/\d+/\d+", row) for row in screen)
                   for name in ("dks-db", "dks-api", "dks-ui")), "\n".join(screen)
        hold.release()
        assert pane.exit_code() == 0, "\n".join(pane.history())
        history = pane.history()
        assert any(row.startswith("rollout: every service steady") for row in history), "\n".join(history)
        assert not [row for row in history if row.startswith("ECS rollout:")], "the region left no copy behind"
    finally:
        hold.release()
        pane.close()


def test_a_deployment_the_circuit_breaker_failed_ends_the_rollout_with_exit_1_and_ecs_reason():
    # DescribeServices as ECS answers once the circuit breaker has tripped and the rollback deployment runs
    # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html); the
    # emulator runs no container, so no task of its ever fails.
    from types import SimpleNamespace

    from lifecycle import rollouts

    reason = "ECS deployment circuit breaker: tasks failed to start."
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/dks-dks-api:{}"
    service = {"serviceName": "dks-api", "desiredCount": 2, "taskDefinition": arn.format(1), "deployments": [
        {"status": "PRIMARY", "taskDefinition": arn.format(1), "runningCount": 1, "pendingCount": 1,
         "desiredCount": 2, "rolloutState": "IN_PROGRESS", "rolloutStateReason": "ECS deployment in progress."},
        {"status": "ACTIVE", "taskDefinition": arn.format(2), "runningCount": 0, "pendingCount": 0,
         "desiredCount": 0, "rolloutState": "FAILED", "rolloutStateReason": reason}]}
    rollout = rollouts.Rollout(SimpleNamespace(emulated=False, stack=STACK))
    seen = rollout.services.setdefault("dks-api", rollouts.Service("dks-api"))
    rollout._read(seen, service)
    assert rollout.settled and seen.line() == f"dks-api            FAILED      dks-dks-api:1 1/1/2: {reason}"
    code, lines = rollout.summary()
    assert code == 1 and lines[0].startswith("rollout: FAILED: dks-api: the deployment circuit breaker")
    assert lines[-1] == f"  dks-api: {reason}"
    assert rollout.failures() == [f"rollout: dks-api: FAILED: {reason}"], "what a failed deploy says beside its cause"
