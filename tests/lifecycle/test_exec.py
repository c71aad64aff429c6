"""ECS Exec: the per-service switch in the templates and the plan, and `make exec` against the emulator.

The templates: only a service with `exec` gets EnableExecuteCommand and the task role's four ssmmessages
actions; the ssmmessages interface endpoint and its security group exist only when an awsvpc service has
it (a bridge container leaves through its host). `make exec` and `scripts/ecs-app exec` hand ExecuteCommand's
session to session-manager-plugin with the AWS CLI's arguments: a stand-in plugin first on PATH records them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from emulator import REGION, ecs_exec
from helpers import ROOT, app_from, as_typed, cfn_lint, dks_data, resources, service, templates, write_build
from templates_src import plan
from templates_src.app import config

STACK = "dks"
ACTIONS = ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
           "ssmmessages:OpenDataChannel"]


def with_exec(*names: str) -> dict:
    data = dks_data()
    for name in names:
        entry = service(data, name)
        entry["exec"] = True
        entry["read_only"] = False
    return data


def exec_roles(built: dict) -> dict[str, list]:
    """Task role -> the actions of its `exec` policy."""
    found = {}
    for name, role in resources(built["iam.yaml"], "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            if policy["PolicyName"] == "exec":
                (statement,) = policy["PolicyDocument"]["Statement"]
                assert statement["Resource"] == ["*"] and statement["Effect"] == "Allow"
                found[name] = statement["Action"]
    return found


def exec_services(built: dict) -> set[str]:
    return {name for name, svc in resources(built["services.yaml"], "AWS::ECS::Service").items()
            if svc["Properties"].get("EnableExecuteCommand")}


# --- templates ---------------------------------------------------------------------------------------

def test_the_default_app_has_no_exec_anywhere(dks_templates):
    assert not resources(dks_templates["network.yaml"], "AWS::EC2::VPCEndpoint")
    assert "ExecEndpointSecurityGroup" not in dks_templates["network.yaml"]["Resources"]
    assert exec_services(dks_templates) == set()
    assert exec_roles(dks_templates) == {}


def test_an_awsvpc_service_with_exec_gets_the_switch_its_role_s_channels_and_the_endpoint():
    built = templates(app_from(with_exec("dks-api")))
    assert exec_services(built) == {"DksApiService"}
    assert exec_roles(built) == {"DksApiTaskRole": ACTIONS}
    network = built["network.yaml"]["Resources"]
    (endpoint,) = resources(built["network.yaml"], "AWS::EC2::VPCEndpoint").values()
    props = endpoint["Properties"]
    assert props["VpcEndpointType"] == "Interface" and props["PrivateDnsEnabled"] is True
    assert props["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.ssmmessages"}
    assert props["SubnetIds"] == [{"Ref": "PublicSubnetA"}, {"Ref": "PublicSubnetB"}]  # one interface per AZ
    assert props["SecurityGroupIds"] == [{"Ref": "ExecEndpointSecurityGroup"}]
    group = network["ExecEndpointSecurityGroup"]["Properties"]
    # HTTPS only, from the exec service's tasks and from the hosts (whose agent resolves the endpoint too).
    assert {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in group["SecurityGroupIngress"]} == {("tcp", 443, 443)}
    assert [r["SourceSecurityGroupId"] for r in group["SecurityGroupIngress"]] == [
        {"Ref": "DksApiSecurityGroup"}, {"Ref": "HostSecurityGroup"}]
    assert not any("CidrIp" in r for r in group["SecurityGroupIngress"])
    egress = network["DksApiToExecEndpointEgress"]["Properties"]
    assert (egress["GroupId"], egress["FromPort"], egress["DestinationSecurityGroupId"]) == (
        {"Ref": "DksApiSecurityGroup"}, 443, {"Ref": "ExecEndpointSecurityGroup"})
    # the database, without exec, gains no path to it
    assert not [r for r in resources(built["network.yaml"], "AWS::EC2::SecurityGroupEgress").values()
                if r["Properties"]["GroupId"] == {"Ref": "DksDbSecurityGroup"}
                and r["Properties"].get("DestinationSecurityGroupId") == {"Ref": "ExecEndpointSecurityGroup"}]


def test_a_bridge_service_with_exec_needs_no_endpoint():
    data = dks_data()
    service(data, "dks-ui")["exec"] = True  # the UI keeps a writable root already
    built = templates(app_from(data))
    assert exec_services(built) == {"DksUiService"}
    assert exec_roles(built) == {"DksUiTaskRole": ACTIONS}
    assert not resources(built["network.yaml"], "AWS::EC2::VPCEndpoint")
    assert "ExecEndpointSecurityGroup" not in built["network.yaml"]["Resources"]


def test_exec_on_a_read_only_root_is_refused_with_the_field():
    data = dks_data()
    service(data, "dks-api")["exec"] = True
    with pytest.raises(config.ConfigError) as caught:
        app_from(data)
    assert caught.value.problems[0][0] == "services[1].exec"
    assert "read_only: false" in str(caught.value)


def test_the_variant_with_exec_lints_clean(tmp_path):
    out = write_build(app_from(with_exec("dks-api", "dks-ui")), tmp_path / "build")
    done = cfn_lint(sorted(out.glob("*.yaml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_plan_prices_the_endpoint_per_az_only_when_it_is_built(dks):
    assert "vpc_endpoint_hour" not in {line.item for line in plan.make(dks).public.lines}
    bridge_only = dks_data()
    service(bridge_only, "dks-ui")["exec"] = True
    assert "vpc_endpoint_hour" not in {line.item for line in plan.make(app_from(bridge_only)).public.lines}

    app = app_from(with_exec("dks-api"))
    made = plan.make(app)
    prices = plan.load_prices()["items"]
    hours = made.public.line("vpc_endpoint_hour")
    assert hours.quantity == app.network.availability_zones and hours.hours == 730
    assert hours.monthly == round(2 * 730 * prices["vpc_endpoint_hour"]["prices"]["us-east-1"], 2) == 14.6
    data = made.public.line("vpc_endpoint_gb")
    assert data.monthly == round(plan.Assumptions().exec_gb * prices["vpc_endpoint_gb"]["prices"]["us-east-1"], 2)
    # behind NAT gateways the tasks would reach Session Manager through them: no endpoint there
    assert "vpc_endpoint_hour" not in {line.item for line in made.nat.lines}
    text = plan.text(made)
    assert "VPC endpoint ssmmessages (ECS Exec)  2 endpoint-AZs x 730 h" in text and "$14.60" in text
    readme = " ".join((ROOT / "README.md").read_text().split())
    price = prices["vpc_endpoint_hour"]["prices"]["us-east-1"]
    assert f"(2 × 730 h × ${price:g} = ${hours.monthly:.2f} a month in us-east-1)" in readme
    assert f"It costs ${hours.monthly:.2f} a month in us-east-1 for two AZs" in readme


# --- make exec on the emulator -------------------------------------------------------------------------

PLUGIN = """#!{python}
import json, os, sys
with open(os.environ["PLUGIN_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in
                         ("AWS_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE")}}}}) + "\\n")
"""


def cli(*args: str, path: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "scripts/ecs-app", *args], cwd=ROOT, capture_output=True, text=True,
                          env=as_typed(PATH=path, **env), timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def recorded(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def answered() -> list[dict]:
    return ecs_exec.sessions(ecs_backends[DEFAULT_ACCOUNT_ID][REGION])


@pytest.fixture
def exec_app(tmp_path) -> Path:
    """The DKS app with exec on for dks-api, in a folder of its own (its files beside it)."""
    folder = tmp_path / "app"
    shutil.copytree(config.DEFAULT_CONFIG.parent, folder)
    (folder / "app.yaml").write_text(yaml.safe_dump(with_exec("dks-api"), sort_keys=False))
    return folder / "app.yaml"


def test_make_exec_hands_the_session_to_the_plugin_as_the_aws_cli_does(aws, tmp_path, exec_app):
    assert shutil.which("session-manager-plugin") is None, "the test needs a machine without the real plugin"
    bare = os.environ["PATH"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "session-manager-plugin").write_text(PLUGIN.format(python=sys.executable))
    (bin_dir / "session-manager-plugin").chmod(0o755)
    log = tmp_path / "plugin.log"
    stand_in = f"{bin_dir}{os.pathsep}{bare}"
    env = {"CONFIG": str(exec_app), "STACK": STACK, "PLUGIN_LOG": str(log)}

    deployed = cli("deploy", path=bare, SKIP_IMAGES="1", PARAMS="ServicesRunning=true", **env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    ecs = aws.client("ecs")
    cluster = aws.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    cluster = {o["OutputKey"]: o["OutputValue"] for o in cluster["Outputs"]}["ClusterName"]

    def running(name: str) -> dict:
        (arn,) = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"]
        return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]

    api, db = running("dks-api"), running("dks-db")
    assert api["enableExecuteCommand"] is True and db["enableExecuteCommand"] is False
    assert api["containers"][0]["managedAgents"][0] == {**api["containers"][0]["managedAgents"][0],
                                                       "name": "ExecuteCommandAgent", "lastStatus": "RUNNING"}

    # scripts/ecs-app exec: one ExecuteCommand, then the plugin with exactly the AWS CLI's six arguments
    done = cli("exec", "--service", "dks-api", path=stand_in, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    task_id = api["taskArn"].rsplit("/", 1)[-1]
    assert f"exec: dks-api: task {task_id}, container dks-api: /bin/sh" in done.stdout
    (session,) = answered()
    assert (session["taskArn"], session["containerName"], session["command"], session["interactive"]) == (
        api["taskArn"], "dks-api", "/bin/sh", True)
    (call,) = recorded(log)
    runtime = api["containers"][0]["runtimeId"]
    assert len(runtime) == 64
    assert call["argv"] == [json.dumps(session["session"]), REGION, "StartSession", "",
                            json.dumps({"Target": f"ecs:{cluster}_{task_id}_{runtime}"}), aws_endpoint()]
    assert call["env"]["AWS_ENDPOINT_URL"] == aws_endpoint()

    # make exec, with a command of its own
    made = subprocess.run(["make", "--no-print-directory", "exec", f"STACK={STACK}", "SERVICE=dks-api",
                           "CMD=ls -la /tmp", f"CONFIG={exec_app}"], cwd=ROOT, capture_output=True, text=True,
                          env=as_typed(PATH=stand_in, PLUGIN_LOG=str(log)), timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    assert answered()[-1]["command"] == "ls -la /tmp"
    assert recorded(log)[-1]["argv"][0] == json.dumps(answered()[-1]["session"])

    # no plugin on PATH: one sentence with the install page, exit 2, and no ExecuteCommand was made
    missing = cli("exec", "--service", "dks-api", path=bare, **env)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: session-manager-plugin is not on PATH")
    assert "session-manager-working-with-install-plugin.html" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    # a service without exec, one the deployment does not have, none given: refused before ExecuteCommand
    off = cli("exec", "--service", "dks-db", path=stand_in, **env)
    assert off.returncode == 2 and "set exec: true" in off.stderr and "services[].exec" in off.stderr, off.stderr
    unknown = cli("exec", "--service", "dks-cache", path=stand_in, **env)
    assert unknown.returncode == 2
    assert "has no service 'dks-cache' (its services: dks-api, dks-db, dks-ui)" in unknown.stderr, unknown.stderr
    unnamed = cli("exec", path=stand_in, **env)
    assert unnamed.returncode == 2 and "SERVICE=" in unnamed.stderr
    assert len(answered()) == 2 and len(recorded(log)) == 2

    # ECS itself refuses a task started without exec, in its words
    with pytest.raises(ClientError) as refused:
        ecs.execute_command(cluster=cluster, task=db["taskArn"], container="dks-db", interactive=True,
                            command="/bin/sh")
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert refused.value.response["Error"]["Message"] == ecs_exec.NOT_ENABLED

    assert cli("cleanup", "--yes", path=bare, **env).returncode == 0


def aws_endpoint() -> str:
    return os.environ["AWS_ENDPOINT_URL"]


def test_exec_turned_on_later_reaches_only_the_tasks_ecs_starts_afterwards(aws, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "session-manager-plugin").write_text(PLUGIN.format(python=sys.executable))
    (bin_dir / "session-manager-plugin").chmod(0o755)
    bare = os.environ["PATH"]
    stand_in = f"{bin_dir}{os.pathsep}{bare}"
    log = tmp_path / "plugin.log"
    assert cli("deploy", path=bare, STACK=STACK, SKIP_IMAGES="1", PARAMS="ServicesRunning=true").returncode == 0

    # the UI already has a writable root: exec changes its service and its role, not its task definition
    folder = tmp_path / "app"
    shutil.copytree(config.DEFAULT_CONFIG.parent, folder)
    data = dks_data()
    service(data, "dks-ui")["exec"] = True
    (folder / "app.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    env = {"CONFIG": str(folder / "app.yaml"), "STACK": STACK, "PLUGIN_LOG": str(log)}
    updated = cli("deploy", path=bare, SKIP_IMAGES="1", **env)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    ecs = aws.client("ecs")
    root = aws.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    cluster = {o["OutputKey"]: o["OutputValue"] for o in root["Outputs"]}["ClusterName"]
    (svc,) = ecs.describe_services(cluster=cluster, services=["dks-ui"])["services"]
    assert svc["enableExecuteCommand"] is True
    (old,) = ecs.list_tasks(cluster=cluster, serviceName="dks-ui")["taskArns"]

    early = cli("exec", "--service", "dks-ui", path=stand_in, **env)
    assert early.returncode == 2, early.stdout + early.stderr
    assert f"stop one (aws ecs stop-task --cluster {cluster} --task {old.rsplit('/', 1)[-1]})" in early.stderr
    assert answered() == [] and recorded(log) == []

    ecs.stop_task(cluster=cluster, task=old, reason="exec turned on")
    (new,) = ecs.list_tasks(cluster=cluster, serviceName="dks-ui")["taskArns"]
    assert new != old
    done = cli("exec", "--service", "dks-ui", path=stand_in, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    (session,) = answered()
    assert session["taskArn"] == new and recorded(log)[0]["argv"][0] == json.dumps(session["session"])
    assert cli("cleanup", "--yes", path=bare, **env).returncode == 0
