"""CloudFormation's quotas: a 200-service app split over services stacks, and what the build refuses."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

import inventory
import stacks
from helpers import ROOT, app_from, templates, write_build
from templates_src import render
from templates_src.app import quotas
from test_templates import assert_lints_clean

sys.path.insert(0, str(ROOT / "scripts"))
import synthetic  # noqa: E402

# CommaDelimitedList parameters of a services stack and the kind of value each member is.
LIST_KINDS = {"ServiceSecurityGroupIds": "security group", "PeerSecurityGroupIds": "security group",
              "TaskRoleArns": "task role", "DiscoveryServiceArns": "discovery service",
              "TargetGroupArns": "target group", "SecretArns": "secret"}


@pytest.fixture(scope="module")
def big():
    app = app_from(synthetic.app_data(200))
    return app, templates(app)


def services_stacks(tpls: dict) -> dict[str, dict]:
    return {name: t for name, t in tpls.items() if name.startswith("services")}


def test_200_services_split_over_services_stacks_each_within_every_quota(big):
    app, tpls = big
    split = services_stacks(tpls)
    assert len(split) >= 2
    placed = [props["ServiceName"] for t in split.values() for r in t["Resources"].values()
              if r["Type"] == "AWS::ECS::Service" for props in [r["Properties"]]]
    assert sorted(placed) == sorted(s.name for s in app.services), "every service in exactly one stack"
    files = render.render(app, "synthetic")
    for name, template in tpls.items():
        assert len(template["Resources"]) <= quotas.RESOURCES, name
        assert len(template.get("Parameters", {})) <= quotas.PARAMETERS, name
        assert len(template.get("Outputs", {})) <= quotas.OUTPUTS, name
        limit = quotas.INLINE_BYTES if name in quotas.INLINE else quotas.TEMPLATE_BYTES
        assert len(files[name].encode()) <= limit, name


def test_each_joined_list_fits_one_parameter_value_at_its_longest(big):
    app, tpls = big
    for name, template in services_stacks(tpls).items():
        for parameter, declared in template["Parameters"].items():
            if declared["Type"] != "CommaDelimitedList" or parameter == "SubnetIds":
                continue
            kind = LIST_KINDS[parameter.rstrip("0123456789")]
            members = declared["Description"].split("(in this order: ", 1)[1].rstrip(")").split(", ")
            assert len(members) * quotas.MEMBER_BYTES[kind] <= quotas.PARAMETER_VALUE_BYTES, (name, parameter)


def test_a_services_stack_waits_for_the_stacks_holding_what_its_services_depend_on(big):
    app, tpls = big
    where = {props["ServiceName"]: name for name, t in services_stacks(tpls).items() for r in t["Resources"].values()
             if r["Type"] == "AWS::ECS::Service" for props in [r["Properties"]]}
    root = tpls["main.yaml"]["Resources"]
    logical = {name: "".join(p.capitalize() for p in name[:-5].split("-")) + "Stack" for name in services_stacks(tpls)}
    for svc in app.services:
        for dep in svc.depends_on:
            if where[dep] != where[svc.name]:
                assert logical[where[dep]] in root[logical[where[svc.name]]].get("DependsOn", []), (svc.name, dep)
    names = tpls["main.yaml"]["Outputs"]["ServiceNames"]["Value"]["Fn::Join"][1]
    assert len(names) == len(services_stacks(tpls)), "the root lists the services of every services stack"


def test_200_services_lint_clean(big, tmp_path):
    app, _ = big
    assert_lints_clean(app, tmp_path)


def test_200_services_deploy_and_delete_on_the_emulator(aws, big, tmp_path):
    app, tpls = big
    build = write_build(app, tmp_path / "build")
    before = inventory.take(aws)
    stacks.upload(aws, "synth-templates", "synth/", build=build)
    url = stacks.template_url(aws, "synth-templates", "synth/")
    assert stacks.create(aws, "synth-registry", url + "registry.yaml")["StackStatus"] == "CREATE_COMPLETE"
    root = stacks.create(aws, "synth", url + "main.yaml",
                         {"QSS3BucketName": "synth-templates", "QSS3KeyPrefix": "synth/"})
    assert root["StackStatus"] == "CREATE_COMPLETE"
    ecs = aws.client("ecs")
    pages = ecs.get_paginator("list_services").paginate(cluster="synth")
    running = [arn for page in pages for arn in page["serviceArns"]]
    assert len(running) == 200
    assert len(stacks.outputs(root)["ServiceNames"].split(",")) == 200
    stacks.delete(aws, "synth")
    stacks.delete(aws, "synth-registry")
    stacks.empty_bucket(aws, "synth-templates")
    assert inventory.difference(before, inventory.take(aws)) == {}


# --- refusals --------------------------------------------------------------------------------------

def test_each_quota_is_named_with_the_number_and_the_limit():
    huge = {"Resources": {f"R{i}": {"Type": "AWS::SNS::Topic"} for i in range(501)},
            "Parameters": {f"P{i}": {"Type": "String"} for i in range(201)},
            "Outputs": {f"O{i}": {"Value": "x"} for i in range(201)}}
    found = quotas.problems("services.yaml", huge, "x" * (quotas.TEMPLATE_BYTES + 1))
    assert found == ["services.yaml: 501 resources, CloudFormation allows 500 per stack",
                     "services.yaml: 201 parameters, CloudFormation allows 200 per stack",
                     "services.yaml: 201 outputs, CloudFormation allows 200 per stack",
                     "services.yaml: 1,048,577 bytes, CloudFormation allows 1,048,576 for a template read from S3"]
    assert quotas.problems("main.yaml", {}, "x" * 51_201) == [
        "main.yaml: 51,201 bytes, CloudFormation allows 51,200 for a template passed inline by "
        "`aws cloudformation deploy --template-file`"]
    assert quotas.problems("main.yaml", {}, "x" * 51_200) == []


def refused(data: dict, tmp_path) -> str:
    config = tmp_path / "app.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "templates_src", "build", "--config", str(config), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert not out.exists(), "nothing is written"
    assert "Traceback" not in done.stderr
    return done.stderr


def test_too_many_clients_of_one_service_is_refused_with_the_security_group_quota(tmp_path):
    data = synthetic.app_data(70)
    for service in data["services"][1:]:
        service["depends_on"], service["environment"] = ["db"], {"DB": "{db.host}"}
    message = refused(data, tmp_path)
    assert "network.yaml: security group DbSecurityGroup (" in message
    assert "db tasks) gets 69 inbound rules, EC2 allows 60" in message


def test_a_secret_list_too_long_for_one_parameter_is_refused(tmp_path):
    data = synthetic.app_data(2)
    data["secrets"].update({f"extra-{i}": {"description": "more"} for i in range(40)})
    assert "secrets: 41 secret ARNs may take" in refused(data, tmp_path)


def test_a_stack_refuses_its_501st_resource_with_the_quota_not_a_traceback(dks):
    from troposphere.sns import Topic

    from templates_src.stacks.wiring import Stack

    stack = Stack("network", dks, "test")
    for index in range(quotas.RESOURCES):
        stack.add(Topic(f"T{index}"))
    with pytest.raises(quotas.QuotaError, match="network.yaml: more than 500 resources"):
        stack.add(Topic("OneTooMany"))
