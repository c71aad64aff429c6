"""Stack updates on the emulator: in place, replacing only what the resource schemas say, rolled back on failure.

Each scenario deploys the default app once with `make deploy`'s script (SKIP_IMAGES), then updates it
the way a user does, and compares every physical resource ID of the root and its nested stacks
before and after. The change set a diff shows is made first and must say what the update then does.
"""
from __future__ import annotations

import shutil

import pytest
import yaml
from botocore.exceptions import ClientError

from helpers import ROOT
from test_lifecycle import run

STACK = "dks"


def deploy(**env: str):
    """`make deploy` as a user runs it, images already pushed (so the services run their tasks)."""
    env["PARAMS"] = " ".join(["ServicesRunning=true", env.get("PARAMS", "")]).strip()
    return run("deploy", STACK=STACK, SKIP_IMAGES="1", **env)


def physical_ids(cfn) -> dict[str, str]:
    """'<nested stack logical ID>/<resource logical ID>' -> physical ID, for the root and every nested stack."""
    found = {}

    def walk(stack: str, prefix: str) -> None:
        for resource in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]:
            key = f"{prefix}{resource['LogicalResourceId']}"
            found[key] = resource.get("PhysicalResourceId", "")
            if resource["ResourceType"] == "AWS::CloudFormation::Stack":
                walk(resource["PhysicalResourceId"], key + "/")

    walk(STACK, "")
    return found


def statuses(cfn) -> set[str]:
    """The root's status and its nested stacks'."""
    ours = [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == STACK
            or (s["StackName"].startswith(STACK + "-") and s["StackName"] != f"{STACK}-registry")]
    return {s["StackStatus"] for s in ours}


def preview(cfn, keep: bool = False, **overrides: str) -> dict[str, dict]:
    """The root's change set with nested stacks included, as `make diff` makes it: resource path -> change.
    Deleted unless `keep` (then executed by the caller, as deploy does)."""
    root = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    # The values DescribeStacks gives, passed back as deploy passes them (an SSM-typed one by its name).
    params = [{"ParameterKey": p["ParameterKey"], "ParameterValue": p["ParameterValue"]} for p in root["Parameters"]
              if p["ParameterKey"] not in overrides]
    params += [{"ParameterKey": k, "ParameterValue": v} for k, v in overrides.items()]
    made = cfn.create_change_set(StackName=STACK, ChangeSetName="preview", ChangeSetType="UPDATE",
                                 UsePreviousTemplate=True, Parameters=params, IncludeNestedStacks=True,
                                 Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])
    changes = {}

    def walk(change_set: str, prefix: str) -> None:
        for change in cfn.describe_change_set(ChangeSetName=change_set)["Changes"]:
            resource = change["ResourceChange"]
            key = prefix + resource["LogicalResourceId"]
            changes[key] = resource
            if resource.get("ChangeSetId"):
                walk(resource["ChangeSetId"], key + "/")

    walk(made["Id"], "")
    if not keep:
        cfn.delete_change_set(ChangeSetName=made["Id"])
    return changes


def test_an_image_tag_rollout_replaces_task_definitions_and_modifies_services_only(aws):
    cfn, ecs = aws.client("cloudformation"), aws.client("ecs")
    assert deploy().returncode == 0
    before = physical_ids(cfn)

    planned = preview(cfn, keep=True, ImageTag="v2")
    task_definitions = {k for k in before if k.endswith("TaskDefinition")}
    services = {k for k in before if k.startswith("ServicesStack/") and k.endswith("Service")}
    replaced = {k for k, c in planned.items() if c.get("Replacement") == "True"}
    # The images the app builds carry the tag; postgres's copy keeps its own.
    assert replaced == {"ServicesStack/DksApiTaskDefinition", "ServicesStack/DksUiTaskDefinition"}
    modified = {k for k, c in planned.items() if c["ResourceType"] != "AWS::CloudFormation::Stack"} - replaced
    assert modified == {"ServicesStack/DksApiService", "ServicesStack/DksUiService"}, "nothing else would change"
    assert all(planned[k]["Action"] == "Modify" and planned[k]["Replacement"] == "False" for k in modified)

    cfn.execute_change_set(ChangeSetName="preview", StackName=STACK)  # the very change set previewed
    cfn.get_waiter("stack_update_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1})
    after = physical_ids(cfn)
    assert {k for k in before if before[k] != after.get(k)} == replaced, "what the change set said, nothing else"
    assert statuses(cfn) <= {"UPDATE_COMPLETE", "CREATE_COMPLETE"}
    for key in replaced:  # the old revisions are kept for make rollback (UpdateReplacePolicy: Retain)
        old = ecs.describe_task_definition(taskDefinition=before[key])["taskDefinition"]
        assert old["status"] == "ACTIVE" and "v2" in str(
            ecs.describe_task_definition(taskDefinition=after[key])["taskDefinition"]["containerDefinitions"])
    cluster = after["ClusterStack/Cluster"]
    running = {s["serviceName"]: s["taskDefinition"] for s in ecs.describe_services(
        cluster=cluster, services=[after[k] for k in services])["services"]}
    assert set(running.values()) == {after[k] for k in replaced} | {after["ServicesStack/DksDbTaskDefinition"]}


def test_an_instance_type_change_modifies_the_launch_template_not_the_cluster(aws):
    cfn, ec2 = aws.client("cloudformation"), aws.client("ec2")
    assert deploy().returncode == 0
    before = physical_ids(cfn)

    # Out of its constraints, a value is refused when the change set is asked for, with nothing changed.
    for name, value, message in (
            ("InstanceType", "t9.huge", "Parameter 'InstanceType' failed to satisfy constraint: x86_64 types on "
                                        "which the tasks fit within 2 hosts (checked at build time)"),
            ("MinSize", "21", "Parameter 'MinSize' must be a number not greater than 20"),
            ("ImageTag", "v 2", "Parameter 'ImageTag' failed to satisfy constraint: must match pattern "
             "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")):
        with pytest.raises(ClientError) as refused:
            preview(cfn, **{name: value})
        assert refused.value.response["Error"]["Code"] == "ValidationError"
        assert refused.value.response["Error"]["Message"] == message
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert not [c for c in cfn.list_change_sets(StackName=STACK)["Summaries"] if c["ChangeSetName"] == "preview"]
    assert physical_ids(cfn) == before

    planned = preview(cfn, InstanceType="t3.large")
    assert planned["ClusterStack/HostLaunchTemplate"]["Replacement"] == "False"
    assert "ClusterStack/Cluster" not in planned

    done = deploy(PARAMS="InstanceType=t3.large")
    assert done.returncode == 0, done.stdout + done.stderr
    assert physical_ids(cfn) == before, "modified in place: every physical ID kept"
    template = before["ClusterStack/HostLaunchTemplate"]
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=template)["LaunchTemplateVersions"]
    latest = max(versions, key=lambda v: v["VersionNumber"])
    assert latest["VersionNumber"] == 2 and latest["LaunchTemplateData"]["InstanceType"] == "t3.large"
    events = cfn.describe_stack_events(StackName=before["ClusterStack"])["StackEvents"]
    touched = {e["LogicalResourceId"] for e in events if e["ResourceStatus"].startswith("UPDATE")}
    assert "HostLaunchTemplate" in touched and "Cluster" not in touched


def test_a_namespace_rename_is_a_replacement_in_the_change_set_and_in_the_update(aws, tmp_path):
    cfn, sd = aws.client("cloudformation"), aws.client("servicediscovery")
    assert deploy().returncode == 0
    before = physical_ids(cfn)
    app = tmp_path / "dks"
    shutil.copytree(ROOT / "templates_src" / "apps" / "dks", app)
    config = yaml.safe_load((app / "app.yaml").read_text())
    config["namespace"] = "knowledge.local"
    (app / "app.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    shown = run("diff", STACK=STACK, CONFIG=str(app / "app.yaml"))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "Modify Namespace AWS::ServiceDiscovery::PrivateDnsNamespace (REPLACEMENT)" in shown.stdout

    done = deploy(CONFIG=str(app / "app.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    after = physical_ids(cfn)
    old, new = before["DiscoveryStack/Namespace"], after["DiscoveryStack/Namespace"]
    assert old != new
    names = {n["Id"]: n["Name"] for n in sd.list_namespaces()["Namespaces"]}
    assert names == {new: "knowledge.local"}, "the old namespace went once the update succeeded"
    # The services were repointed at the new registries: their running tasks are instances there.
    registries = [s["Id"] for s in sd.list_services()["Services"]]
    assert registries and all(sd.list_instances(ServiceId=r)["Instances"] for r in registries)
    assert after["ClusterStack/Cluster"] == before["ClusterStack/Cluster"]


def test_a_rollout_that_fails_midway_rolls_back_to_the_previous_resources(aws, emulator):
    cfn, ecs = aws.client("cloudformation"), aws.client("ecs")
    assert deploy().returncode == 0
    before = physical_ids(cfn)
    definitions_before = set(ecs.list_task_definitions()["taskDefinitionArns"])

    emulator.faults.fail(resource="DksUiService", reason="Injected: the service did not stabilize")
    failed = deploy(IMAGE_TAG="v2")
    assert failed.returncode != 0
    assert "DksUiService" in failed.stdout + failed.stderr
    root = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert root["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    services_stack = cfn.describe_stacks(StackName=before["ServicesStack"])["Stacks"][0]
    assert services_stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert physical_ids(cfn) == before, "every previous physical resource is back in place"
    assert set(ecs.list_task_definitions()["taskDefinitionArns"]) == definitions_before
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in root["Parameters"]}
    assert parameters["ImageTag"] != "v2"


def test_replacement_is_read_from_the_registry_schemas():
    from emulator.update_plan import UNKNOWN, replacement

    definition = {"Family": "dks-api", "ContainerDefinitions": [{"Name": "api", "Image": "api:v1"}]}
    rolled = {**definition, "ContainerDefinitions": [{"Name": "api", "Image": "api:v2"}]}
    assert replacement("AWS::ECS::TaskDefinition", definition, rolled) == "True"
    service = {"Cluster": "dks", "TaskDefinition": "arn:...:dks-api:1", "DesiredCount": 1}
    assert replacement("AWS::ECS::Service", service, {**service, "TaskDefinition": UNKNOWN}) == "False"
    assert replacement("AWS::ECS::Service", service, {**service, "Cluster": "other"}) == "True"
    assert replacement("AWS::ECS::Service", service, {**service, "Cluster": UNKNOWN}) == "Conditional"
    # A nested create-only path: only the group's ARN inside the provider's settings replaces it.
    provider = {"AutoScalingGroupProvider": {"AutoScalingGroupArn": "arn:a", "ManagedDraining": "ENABLED"}}
    drained = {"AutoScalingGroupProvider": {"AutoScalingGroupArn": "arn:a", "ManagedDraining": "DISABLED"}}
    moved = {"AutoScalingGroupProvider": {"AutoScalingGroupArn": "arn:b", "ManagedDraining": "ENABLED"}}
    assert replacement("AWS::ECS::CapacityProvider", provider, drained) == "False"
    assert replacement("AWS::ECS::CapacityProvider", provider, moved) == "True"
    # The schema's conditionalCreateOnlyProperties: the group may or may not be replaced.
    group = {"MinSize": "1", "MaxSize": "3", "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "1"}}
    assert replacement("AWS::AutoScaling::AutoScalingGroup", group, {**group, "MaxSize": "4"}) == "False"
    assert replacement("AWS::AutoScaling::AutoScalingGroup", group,
                       {**group, "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "2"}}) == "Conditional"
    assert replacement("Custom::Hosts", {"A": "1"}, {"A": "2"}) == "False", "no schema: updated in place"
