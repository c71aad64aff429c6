"""Deploying build/ the way the README says, through boto3: upload, registry stack, root stack."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import boto3
import yaml

import buckets
import inventory
from helpers import BUILD

REGISTRY = "registry.yaml"
ROOT_TEMPLATE = "main.yaml"


def template_url(session: boto3.Session, bucket: str, key: str) -> str:
    return f"https://{bucket}.s3.{session.region_name}.amazonaws.com/{key}"


def upload(session: boto3.Session, bucket: str, prefix: str, build: Path = BUILD) -> list[str]:
    """Create the bucket and copy every built template under prefix; returns the keys."""
    s3 = session.client("s3")
    s3.create_bucket(Bucket=bucket)
    keys = []
    for path in sorted(build.glob("*.yaml")):
        s3.upload_file(str(path), bucket, prefix + path.name)
        keys.append(prefix + path.name)
    return keys


def create(session: boto3.Session, name: str, url: str, parameters: dict[str, str] | None = None) -> dict:
    """CreateStack and wait; returns the stack's description whatever state it ended in."""
    cfn = session.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateURL=url,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    try:
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    except Exception:  # WaiterError on a failed create: the caller asserts on the status
        pass
    return describe(session, name)


def describe(session: boto3.Session, name: str) -> dict:
    return session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]


def delete(session: boto3.Session, name: str) -> None:
    """DeleteStack and wait; a stack that does not exist counts as deleted."""
    cfn = session.client("cloudformation")
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def empty_bucket(session: boto3.Session, bucket: str) -> None:
    buckets.remove(session.client("s3"), bucket)


@dataclasses.dataclass(frozen=True)
class Resource:
    template: str  # build/ file the resource comes from, e.g. "network.yaml"
    logical_id: str
    type: str
    physical_id: str
    properties: dict  # as written in the template (intrinsics unresolved)


def nested(session: boto3.Session, root: str) -> dict[str, dict]:
    """Template file -> description of the stack deployed from it, for the root and its children."""
    cfn = session.client("cloudformation")
    root_template = load(ROOT_TEMPLATE)
    stacks = {ROOT_TEMPLATE: describe(session, root)}
    for item in cfn.list_stack_resources(StackName=root)["StackResourceSummaries"]:
        if item["ResourceType"] == "AWS::CloudFormation::Stack":
            url = root_template["Resources"][item["LogicalResourceId"]]["Properties"]["TemplateURL"]
            file = (url["Fn::Sub"] if isinstance(url, dict) else url).rsplit("}", 1)[-1].rsplit("/", 1)[-1]
            stacks[file] = describe(session, item["PhysicalResourceId"])
    return stacks


def resources(session: boto3.Session, stacks: dict[str, dict]) -> list[Resource]:
    """Every resource of the given stacks, with its physical ID and its template properties."""
    cfn = session.client("cloudformation")
    found = []
    for file, stack in stacks.items():
        template = load(file)
        for item in cfn.list_stack_resources(StackName=stack["StackId"])["StackResourceSummaries"]:
            declared = template["Resources"][item["LogicalResourceId"]]
            assert item["ResourceType"] == declared["Type"]
            found.append(Resource(file, item["LogicalResourceId"], item["ResourceType"],
                                  item["PhysicalResourceId"], declared.get("Properties", {})))
    return found


# libyaml's safe loader: yaml.safe_load's data, some ten times faster (many tests read every template).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(file: str, build: Path = BUILD) -> dict:
    return yaml.load((build / file).read_text(), Loader=_LOADER)


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def parameters(stack: dict) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}


def nested_count(build: Path = BUILD) -> int:
    """How many nested stacks the built root declares."""
    return sum(r["Type"] == "AWS::CloudFormation::Stack" for r in load(ROOT_TEMPLATE, build)["Resources"].values())


# What deleting the DKS stacks keeps: the database's file system, the key and its two passwords.
KEPT = {"file system": 1, "key": 1, "secret": 2}


def drop_retained(session: boto3.Session, before: dict) -> dict[str, int]:
    """Delete what a stack delete kept (RetainExceptOnCreate: the data's EFS file system, the KMS key
    that encrypts it, the secrets) that was not there before; returns how many of each, so a test
    can assert the data was kept whole."""
    kept = {"file system": 0, "key": 0, "secret": 0}
    efs = session.client("efs")
    for system in efs.describe_file_systems()["FileSystems"]:
        if system["FileSystemId"] not in before.get("efs file systems, mount targets, access points", []):
            assert not efs.describe_mount_targets(FileSystemId=system["FileSystemId"])["MountTargets"]
            efs.delete_file_system(FileSystemId=system["FileSystemId"])
            kept["file system"] += 1
    sm = session.client("secretsmanager")
    for secret in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]:
        if secret["ARN"] not in before.get("secretsmanager secrets", []):
            sm.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
            kept["secret"] += 1
    kind = "kms keys (not pending deletion)"
    for key in set(inventory.KINDS[kind](session)) - set(before.get(kind, [])):
        session.client("kms").schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
        kept["key"] += 1
    return kept
