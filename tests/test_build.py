"""build/ is what the generator makes, the stacks connect, and cfn-lint finds nothing."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import BUILD, ROOT, app_from, cfn_lint, dks_data, lint, service, templates, write_build
from templates_src import render
from templates_src.stacks import services, wiring
from templates_src.app.config import App

PSEUDO = {"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region",
          "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}


# --- build/ in sync ------------------------------------------------------------------------------


def test_committed_build_equals_a_fresh_render(tmp_path):
    fresh = write_build_from_cli(tmp_path / "fresh")
    committed = {p.name: p.read_text() for p in BUILD.glob("*.yaml")}
    rendered = {p.name: p.read_text() for p in fresh.glob("*.yaml")}
    assert sorted(committed) == sorted(rendered), "build/ holds a different set of templates: run make templates"
    stale = [name for name in rendered if committed[name] != rendered[name]]
    assert not stale, f"build/ differs from a fresh render in {stale}: run make templates and commit"


def write_build_from_cli(out):
    # The same command `make templates` runs, so the header names the config as build/ does.
    subprocess.run([sys.executable, "-m", "templates_src", "build", "--out", str(out)], cwd=ROOT, check=True,
                   capture_output=True)
    return out


def test_rendering_is_deterministic(dks):
    assert render.render(dks, "x") == render.render(dks, "x")


def test_write_removes_templates_a_previous_build_made_and_keeps_other_files(tmp_path, dks):
    out = tmp_path / "out"
    files = render.render(dks, "x")
    render.write({**files, "old.yaml": render.HEADER.format(config="x") + "{}\n"}, out)
    (out / "notes.yaml").write_text("mine: true\n")
    render.write(files, out)
    assert sorted(p.name for p in out.glob("*.yaml")) == sorted([*files, "notes.yaml"])


# --- wiring --------------------------------------------------------------------------------------


def intrinsic_names(node, found=None):
    """Every name a template refers to: Ref targets, GetAtt resources, ${...} in Fn::Sub."""
    found = found if found is not None else {"ref": set(), "getatt": set(), "sub": set()}
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found["ref"].add(value)
            elif key == "Fn::GetAtt":
                found["getatt"].add(tuple(value))
            elif key == "Fn::Sub":
                text, local = (value, {}) if isinstance(value, str) else (value[0], value[1])
                names = set(re.findall(r"\$\{([^!}][^}]*)\}", text))
                found["sub"].update(n for n in names if n not in local)
                intrinsic_names(local, found)
                continue
            intrinsic_names(value, found)
    elif isinstance(node, list):
        for item in node:
            intrinsic_names(item, found)
    return found


@pytest.mark.parametrize("variant", ["dks", "no-public", "no-secrets"])
def test_no_dangling_names(variant):
    app = variant_app(variant)
    for name, template in templates(app).items():
        declared = set(template.get("Parameters", {})) | set(template["Resources"]) | PSEUDO
        found = intrinsic_names(template)
        assert found["ref"] <= declared, f"{name}: Ref to {found['ref'] - declared}"
        subs = {n.split(".")[0] for n in found["sub"]}
        assert subs <= declared, f"{name}: Fn::Sub names {subs - declared}"
        assert {r for r, _ in found["getatt"]} <= set(template["Resources"]), f"{name}: GetAtt of a missing resource"
        unused = set(template.get("Parameters", {})) - found["ref"] - subs
        assert not unused, f"{name}: parameters nobody uses: {unused}"


@pytest.mark.parametrize("variant", ["dks", "no-public", "no-secrets"])
def test_every_child_parameter_is_supplied_and_every_referenced_output_exists(variant):
    app = variant_app(variant)
    rendered = templates(app)
    root = rendered["main.yaml"]
    nested = {name: r for name, r in root["Resources"].items() if r["Type"] == "AWS::CloudFormation::Stack"}
    children = {}
    for name, stack in nested.items():
        child_file = stack["Properties"]["TemplateURL"]["Fn::Sub"].rsplit("}", 1)[1]
        child = rendered[child_file]
        children[name] = child
        passed = set(stack["Properties"]["Parameters"])
        assert passed == set(child.get("Parameters", {})), f"{name}: passes {passed}, child wants {set(child['Parameters'])}"
    for (resource, attribute) in intrinsic_names(root)["getatt"]:
        output = attribute.split(".", 1)[1]
        assert output in children[resource].get("Outputs", {}), f"{resource} has no output {output}"


def test_connect_refuses_a_parameter_with_no_source_or_two(dks):
    from templates_src.stacks import links, main

    children = main.children(dks)
    orphan = wiring.Stack("orphan", dks, "needs what nobody gives")
    orphan.use(wiring.Link("Nobody", "no producer"))
    with pytest.raises(wiring.WiringError, match="Nobody of orphan has no sources"):
        main.build(dks, [*children, orphan])
    twin = wiring.Stack("twin", dks, "publishes what network publishes")
    twin.publish(links.VPC_ID, "vpc-1")
    with pytest.raises(wiring.WiringError, match="VpcId of .* has 2 sources: NetworkStack, TwinStack"):
        main.build(dks, [*main.children(dks), twin])


def test_a_list_link_refuses_an_unknown_member(dks):
    from templates_src.stacks import links

    stack = wiring.Stack("s", dks, "x")
    with pytest.raises(wiring.WiringError, match="not a member"):
        stack.member(links.TARGET_GROUP_ARNS, "dks-db")  # dks-db is not public


def variant_app(name: str) -> App:
    data = dks_data()
    if name == "no-public":
        for svc in data["services"]:
            svc.pop("public", None)
            svc.pop("url_output", None)
        service(data, "dks-ui")["environment"]["KNOWLEDGE_SHARE_API"] = "http://localhost:8080"
    if name == "no-secrets":
        data.pop("secrets")
        for svc in data["services"]:
            for key in svc.pop("secrets", {}):
                svc["environment"][key] = "not-a-secret-in-this-variant"
    return app_from(data)


# --- lint ----------------------------------------------------------------------------------------


# build/ and its local-URL variant pass cfn-lint: `make lint` (scripts/lint.py), the phase of `make test` before
# pytest, fails the run otherwise.


def test_local_url_lint_catches_a_parameter_the_root_forgets(tmp_path, dks):
    """The variant exists for E3043; prove it fires when the root drops a child parameter."""
    out = write_build(dks, tmp_path, local_urls=True)
    text = (out / "main.yaml").read_text()
    broken = text.replace("        SubnetIds:\n", "        SubnetIdz:\n", 1)
    assert broken != text
    (out / "main.yaml").write_text(broken)
    run = cfn_lint([out / "main.yaml"], "W3002")
    assert run.returncode != 0 and "E3043" in run.stdout, run.stdout


# A template with a mistake in each part cfn-lint's schema rules walk: parameters, conditions, resources (types,
# patterns, formats, functions), outputs.
BROKEN = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Size:
    Type: Number
    Default: big
  Unused:
    Type: String
Conditions:
  Big: !Equals [!Ref Size, 3, 4]
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Condition: Missing
    Properties:
      BucketName: Not_Valid
      Nope: 1
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Cpu: 12
      ContainerDefinitions:
        - Name: web
          Image: !Sub "${Nowhere}/x"
          Memory: lots
          PortMappings:
            - ContainerPort: 70000
          Environment:
            - Name: A
              Value: !GetAtt Bucket.NoSuchAttribute
  Group:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: g
      SecurityGroupIngress:
        - IpProtocol: tcp
          FromPort: 80
          ToPort: 80
          CidrIp: 0.0.0.0/33
      VpcId: !If [Big, vpc-1, !Ref AWS::NoValue]
Outputs:
  Out:
    Value: !GetAtt Task.Nope
    Export:
      Name: !Ref Missing
"""


def test_in_process_lint_finds_what_the_cfn_lint_command_finds(tmp_path):
    """scripts/lint.py's findings() pays some of cfn-lint's costs once (validator classes, dataclass fields,
    E1101's index of child rules); the command pays them at every property. After the build's templates (so
    what is reused comes from real templates), the same mistakes are found at the same lines with the same
    words."""
    for template in sorted(BUILD.glob("*.yaml")):
        assert lint.findings(template) == [], template.name
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    code, out = lint.cfn_lint([broken])
    # file:line:column:end line:end column:rule:message
    by_command = {tuple(line.split(":", 6)[i] for i in (5, 1, 6)) for line in out.splitlines()}
    in_process = {re.fullmatch(r"\[(\w+): [^]]*\] \((.*)\) matched .*:(\d+)", f, re.S).group(1, 3, 2)
                  for f in lint.findings(broken)}
    assert code != 0 and len(by_command) >= 12
    assert in_process == by_command


# --- files delivered into a container --------------------------------------------------------------


def test_file_wrapper_writes_the_files_then_runs_the_original_program(tmp_path):
    """Run the generated EntryPoint + Command with /bin/sh, as Docker would, with the task's environment."""
    target = tmp_path / "initdb" / "0_init.sh"
    data = dks_data()
    db = service(data, "dks-db")
    db["files"] = {str(target): "db-init.sh"}
    db["entrypoint"] = [sys.executable, "-c"]
    db["command"] = ["import sys; print('ran', sys.argv[1:])", "postgres", "-c", "x=1"]
    app = app_from(data)
    definition = templates(app)["services.yaml"]["Resources"]["DksDbTaskDefinition"]["Properties"]
    container = definition["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"] if isinstance(e["Value"], str)}
    argv = container["EntryPoint"] + container["Command"]
    run = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ran ['postgres', '-c', 'x=1']"
    assert target.read_text() == app.file_contents["db-init.sh"]
    assert os.access(target, os.X_OK)


def test_file_variable_names_are_distinct_per_path():
    assert services.file_variable("/a/b.sh") != services.file_variable("/a/c.sh")
