"""The templates keep the data whole and can take it back: the file system, its key and the secrets
are retained and tagged with their role; root parameters name kept ones, a condition per stack
chooses between the new resource and the kept one, and every consumer reads the chosen one through
the wiring. An app that keeps no data builds as before.
"""
from __future__ import annotations

import itertools
import re

import pytest
from helpers import app_from, dks_data, resources, templates
from test_templates import props, stack_of
from templates_src import plan
from templates_src.stacks import kept

KEPT = {("secrets.yaml", "AWS::KMS::Key"): "NewKey", ("secrets.yaml", "AWS::SecretsManager::Secret"): "NewSecrets",
        ("storage.yaml", "AWS::EFS::FileSystem"): "NewFileSystem"}
PARAMETER = {"NewKey": "DataKeyArn", "NewSecrets": "DataSecretArns", "NewFileSystem": "DataFileSystemId"}


def test_the_file_system_its_key_and_the_secrets_are_kept_by_a_delete_and_tagged_with_their_role(dks_templates):
    roles = set()
    for (file, kind), condition in KEPT.items():
        template = dks_templates[file]
        assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": PARAMETER[condition]}, ""]}
        for resource in resources(template, kind).values():
            assert resource["Condition"] == condition, "made only when no kept one is given"
            assert resource["DeletionPolicy"] == "RetainExceptOnCreate" and resource["UpdateReplacePolicy"] == "Retain"
            tags = props(resource)["FileSystemTags" if kind == "AWS::EFS::FileSystem" else "Tags"]
            (role,) = [tag["Value"] for tag in tags if tag["Key"] == "ecs-app:data"]
            roles.add(role)
    assert roles == {"file-system", "key", "secret:postgres-password", "secret:db-role-password"}


@pytest.mark.parametrize("link, producer", [("KmsKeyArn", "secrets.yaml"), ("SecretArns", "secrets.yaml"),
                                            ("FileSystemId", "storage.yaml"), ("FileSystemArn", "storage.yaml")])
def test_each_shared_value_is_the_new_resource_s_or_the_kept_one_s(dks_templates, link, producer):
    (condition, made, given) = dks_templates[producer]["Outputs"][link]["Value"]["Fn::If"]
    parameter = PARAMETER[condition]
    assert parameter in str(given) and parameter not in str(made), "the kept one only when it is given"
    made_by = {name for name, r in dks_templates[producer]["Resources"].items() if r.get("Condition") == condition}
    assert made_by and all(name in str(made) for name in made_by)
    # Every stack that needs the value asks for it once, from that one output: IAM, services, storage.
    main = dks_templates["main.yaml"]
    consumers = [file for file, template in dks_templates.items() if link in template.get("Parameters", {})
                 and file != "main.yaml"]
    assert consumers, f"{link} is used"
    for file in consumers:
        source = props(main["Resources"][stack_of(main, file)])["Parameters"][link]
        assert source == {"Fn::GetAtt": [stack_of(main, producer), f"Outputs.{link}"]}


def test_mount_targets_and_access_points_are_made_on_whichever_file_system_is_used(dks_templates):
    storage = dks_templates["storage.yaml"]
    chosen = {"Fn::If": ["NewFileSystem", {"Ref": "FileSystem"}, {"Ref": "DataFileSystemId"}]}
    for kind in ("AWS::EFS::MountTarget", "AWS::EFS::AccessPoint"):
        made = resources(storage, kind).values()
        assert made and all(props(r)["FileSystemId"] == chosen and "Condition" not in r for r in made)
    # IAM: the database's task role may mount the file system in use (FileSystemArn, above), no other.
    (policy,) = props(dks_templates["iam.yaml"]["Resources"]["DksDbTaskRole"])["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Resource"] == [{"Ref": "FileSystemArn"}]
    kept_arn = dks_templates["storage.yaml"]["Outputs"]["FileSystemArn"]["Value"]["Fn::If"][2]
    assert kept_arn == {"Fn::Sub": "arn:${AWS::Partition}:elasticfilesystem:${AWS::Region}:${AWS::AccountId}:"
                                   "file-system/${DataFileSystemId}"}


def test_root_parameters_accept_kept_identifiers_and_refuse_anything_else(dks_templates):
    declared = dks_templates["main.yaml"]["Parameters"]
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dks-SecretsStack-AB12-PostgresPasswordSecret-CD34-xYz12A"
    cases = {
        "DataFileSystemId": (["", "fs-0123456789abcdef0", "fs-2bf2beb9"], ["fs-", "vol-0123", "fs-XYZ12345", " "]),
        "DataKeyArn": (["", "arn:aws:kms:us-east-1:123456789012:key/525e3f85-0f89-4182-a40d-0c2f8ef4d720",
                        "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef"],
                       ["525e3f85-0f89-4182-a40d-0c2f8ef4d720", "arn:aws:kms:us-east-1:123456789012:alias/dks"]),
        # exactly one ARN per secret of the config, in its order
        "DataSecretArns": (["", f"{arn},{arn}"], [arn, f"{arn},{arn},{arn}", f"{arn},", "x,y"]),
    }
    for name, (good, bad) in cases.items():
        parameter = declared[name]
        assert parameter["Default"] == "" and parameter["Description"]
        assert [v for v in good if not re.fullmatch(parameter["AllowedPattern"], v)] == [], name
        assert [v for v in bad if re.fullmatch(parameter["AllowedPattern"], v)] == [], name
    assert "(in this order: postgres-password, db-role-password)" in declared["DataSecretArns"]["Description"]


def evaluate(node, values: dict[str, str]) -> object:
    """A rule function over parameter values (the subset the root uses)."""
    if isinstance(node, dict):
        ((function, argument),) = node.items()
        if function == "Ref":
            return values[argument]
        arguments = [evaluate(item, values) for item in argument]
        return {"Fn::Equals": lambda: arguments[0] == arguments[1], "Fn::Not": lambda: not arguments[0],
                "Fn::And": lambda: all(arguments), "Fn::Or": lambda: any(arguments)}[function]()
    return node


def accepted(rules: dict, values: dict[str, str]) -> bool:
    """Whether the kept data's rules (the others are tested with what they decide) accept the values."""
    return all(evaluate(assertion["Assert"], values) for name, rule in rules.items() if name.startswith("Kept")
               if evaluate(rule.get("RuleCondition", True), values) for assertion in rule["Assertions"])


def test_kept_data_is_taken_back_whole_or_the_root_refuses_the_parameters(dks_templates):
    rules = dks_templates["main.yaml"]["Rules"]
    names = ("DataFileSystemId", "DataKeyArn", "DataSecretArns")
    for given in itertools.product((False, True), repeat=3):
        values = {name: "kept" if on else "" for name, on in zip(names, given)}
        system, key, secrets = given
        whole = (not system or (key and secrets)) and (not secrets or key)
        assert accepted(rules, values) == whole, values


def test_an_app_that_keeps_no_data_keeps_nothing_and_takes_no_parameters():
    data = dks_data()
    data["persistence"] = "none"
    plain = templates(app_from(data))
    assert not kept.keeps(app_from(data))
    assert not [name for name in plain["main.yaml"]["Rules"] if name.startswith("Kept")]
    assert not any(p.startswith("Data") for p in plain["main.yaml"]["Parameters"])
    secrets = plain["secrets.yaml"]
    assert "Conditions" not in secrets
    for resource in secrets["Resources"].values():
        assert "DeletionPolicy" not in resource and "Condition" not in resource, "they go with the stack, as before"
    assert secrets["Outputs"]["KmsKeyArn"]["Value"] == {"Fn::GetAtt": ["Key", "Arn"]}


def test_an_app_with_data_and_no_secrets_keeps_the_file_system_and_the_key():
    data = dks_data()
    data["secrets"] = {}
    for svc in data["services"]:
        svc.pop("secrets", None)
    built = templates(app_from(data))
    assert "DataSecretArns" not in built["main.yaml"]["Parameters"]
    assert {name for name in built["main.yaml"]["Rules"] if name.startswith("Kept")} == {
        "KeptFileSystemComesWithItsKeyAndSecrets"}
    values = {"DataFileSystemId": "fs-1", "DataKeyArn": ""}
    assert not accepted(built["main.yaml"]["Rules"], values)
    assert accepted(built["main.yaml"]["Rules"], {**values, "DataKeyArn": "arn"})


def test_the_plan_says_what_kept_data_costs_a_month(dks):
    prices = plan.load_prices()["items"]
    (note,) = [note for note in plan.make(dks).notes if "KEEP_DATA=1" in note]
    monthly = prices["kms_key"]["prices"]["us-east-1"] + len(dks.secrets) * prices["secret"]["prices"]["us-east-1"]
    assert f"its KMS key and the {len(dks.secrets)} secrets: ${monthly:.2f} a month plus " \
           f"${prices['efs_standard']['prices']['us-east-1']:g} per GB stored" in note
    data = dks_data()
    data["persistence"] = "none"
    assert not [note for note in plan.make(app_from(data)).notes if "KEEP_DATA=1" in note]
