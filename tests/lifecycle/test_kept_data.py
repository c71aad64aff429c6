"""Kept data comes back: `make cleanup KEEP_DATA=1` keeps the file system, its key and the secrets,
the next `make deploy` takes the same ones back, and a plain `make cleanup` deletes them, on the
emulator, each command run as a user runs it. What the deployment did not make is never touched.
"""
from __future__ import annotations

import os
import re

import inventory
from helpers import ROOT
from test_aws_cli import DOCKER
from test_aws_cli import run as shell
from test_lifecycle import STACK, parameters, run, stack

ROLES = {"file-system", "key", "secret:postgres-password", "secret:db-role-password"}


def nested_outputs(aws, logical_id: str) -> dict[str, str]:
    cfn = aws.client("cloudformation")
    (child,) = [r["PhysicalResourceId"] for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
                if r["LogicalResourceId"] == logical_id]
    return {o["OutputKey"]: o["OutputValue"] for o in stack(aws, child).get("Outputs", [])}


def task_definition(aws, service: str) -> dict:
    ecs = aws.client("ecs")
    (svc,) = ecs.describe_services(cluster=STACK, services=[service])["services"]
    return ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]


def in_use(aws) -> dict:
    """The file system, key and secrets the deployed stacks use, read from the stacks and from ECS."""
    storage, secrets = nested_outputs(aws, "StorageStack"), nested_outputs(aws, "SecretsStack")
    db = task_definition(aws, "dks-db")
    (volume,) = db["volumes"]
    return {
        "file system": storage["FileSystemId"],
        "volume": volume["efsVolumeConfiguration"]["fileSystemId"],
        "key": secrets["KmsKeyArn"],
        "secrets": secrets["SecretArns"].split(","),
        "in tasks": sorted({s["valueFrom"] for name in ("dks-db", "dks-api")
                            for s in task_definition(aws, name)["containerDefinitions"][0]["secrets"]}),
    }


def role_policy(aws, role: str, name: str) -> dict:
    return aws.client("iam").get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]


def data_tags(aws, used: dict) -> dict[str, dict[str, str]]:
    """Each kept resource's tags, by its role tag."""
    efs, kms, sm = aws.client("efs"), aws.client("kms"), aws.client("secretsmanager")
    (system,) = efs.describe_file_systems(FileSystemId=used["file system"])["FileSystems"]
    found = [{t["Key"]: t["Value"] for t in system["Tags"]},
             {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=used["key"])["Tags"]}]
    found += [{t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=arn)["Tags"]} for arn in used["secrets"]]
    return {tags["ecs-app:data"]: tags for tags in found}


def test_kept_data_comes_back_on_the_next_deploy_and_goes_with_the_last_cleanup(aws):
    before = inventory.take(aws)
    first = run("deploy", make=True, STACK=STACK, SKIP_IMAGES="1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "data: nothing kept from an earlier deployment" in first.stdout
    used = in_use(aws)
    assert used["volume"] == used["file system"] and used["in tasks"] == sorted(used["secrets"])
    key_id = used["key"].rsplit("/", 1)[-1]

    kept = run("cleanup", make=True, STACK=STACK, YES="1", KEEP_DATA="1")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert f"cleanup: the data is kept (KEEP_DATA=1): EFS file system {used['file system']}, KMS key {key_id}, " \
           "2 secrets" in kept.stdout
    assert f"data: EFS file system {used['file system']} kept (KEEP_DATA=1): 0.00 GB stored, $0.30 per GB-month" \
        in kept.stdout
    assert f"data: KMS key {key_id} kept (KEEP_DATA=1): $1.00 a month" in kept.stdout
    for arn in used["secrets"]:
        assert f"({arn}) kept (KEEP_DATA=1): $0.40 a month" in kept.stdout
    assert "data: the kept data costs about $1.80 a month in us-east-1" in kept.stdout
    assert "cleanup: nothing tagged dks remains in us-east-1 but the data kept" in kept.stdout
    assert aws.client("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"] == []
    assert aws.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled", \
        "the key is kept, not scheduled for deletion"
    for arn in used["secrets"]:
        assert "DeletedDate" not in aws.client("secretsmanager").describe_secret(SecretId=arn)
    (system,) = aws.client("efs").describe_file_systems(FileSystemId=used["file system"])["FileSystems"]
    assert system["LifeCycleState"] == "available"
    tags = data_tags(aws, used)
    assert set(tags) == ROLES
    for role, each in tags.items():
        assert each["ecs-app:stack"] == STACK, role
        assert each["aws:cloudformation:stack-name"].startswith(f"{STACK}-"), role

    again = run("deploy", make=True, STACK=STACK, SKIP_IMAGES="1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"data: reattaching EFS {used['file system']}, key {key_id}, 2 secrets kept from an earlier deployment" \
        in again.stdout
    assert in_use(aws) == used, "the same file system in the storage stack and the task definition, the same secrets"
    given = parameters(stack(aws, STACK))
    assert given["DataFileSystemId"] == used["file system"] and given["DataKeyArn"] == used["key"]
    assert given["DataSecretArns"] == ",".join(used["secrets"])
    # IAM follows the kept resources: the execution role reads these secrets with this key, the
    # database's task role mounts this file system.
    execution = role_policy(aws, f"{STACK}-us-east-1-execution", "execution")
    statements = {s["Sid"]: s for s in execution["Statement"]}
    assert sorted(statements["ReadOwnSecrets"]["Resource"]) == sorted(used["secrets"])
    assert statements["DecryptOwnSecrets"]["Resource"] == [used["key"]]
    mount = role_policy(aws, f"{STACK}-us-east-1-dks-db-task", "data")
    assert mount["Statement"][0]["Resource"][0].endswith(f":file-system/{used['file system']}")
    # The mount targets and the access point are new, on the kept file system.
    efs = aws.client("efs")
    assert len(efs.describe_mount_targets(FileSystemId=used["file system"])["MountTargets"]) == 2
    assert len(efs.describe_access_points(FileSystemId=used["file system"])["AccessPoints"]) == 1

    # Parameters not given keep their values: an update remembers the kept data.
    changed = run("deploy", STACK=STACK, SKIP_IMAGES="1", PARAMS="MaxSize=4")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "data:" not in changed.stdout, "only a deploy that creates the root looks for kept data"
    assert {k: v for k, v in parameters(stack(aws, STACK)).items() if k.startswith("Data")} == \
        {k: v for k, v in given.items() if k.startswith("Data")}

    gone = run("cleanup", make=True, STACK=STACK, YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"THE DATA IS DELETED TOO: EFS file system {used['file system']}, KMS key {key_id}, 2 secrets" \
        in gone.stdout
    assert f"data: EFS file system {used['file system']} deleted" in gone.stdout
    assert f"data: KMS key {key_id} scheduled for deletion in 7 days" in gone.stdout
    assert gone.stdout.count("deleted (no recovery window)") == 2
    assert aws.client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_a_cleanup_after_keep_data_finds_the_kept_data_by_its_tags(aws):
    before = inventory.take(aws)
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    assert run("cleanup", STACK=STACK, YES="1", KEEP_DATA="1").returncode == 0
    # The stacks are gone; only the tags say what is this deployment's.
    gone = run("cleanup", STACK=STACK, YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "dks: no such stack" in gone.stdout and "THE DATA IS DELETED TOO: EFS file system fs-" in gone.stdout
    assert "scheduled for deletion in 7 days" in gone.stdout
    assert gone.stdout.count("deleted (no recovery window)") == 2
    assert inventory.difference(before, inventory.take(aws)) == {}
    assert "data" not in run("cleanup", STACK=STACK, YES="1").stdout, "nothing left: no word about data"


def test_kept_data_scheduled_for_deletion_is_recovered_by_the_next_deploy(aws):
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    used = in_use(aws)
    assert run("cleanup", STACK=STACK, YES="1", KEEP_DATA="1").returncode == 0
    kms, sm = aws.client("kms"), aws.client("secretsmanager")
    key_id = used["key"].rsplit("/", 1)[-1]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=30)
    sm.delete_secret(SecretId=used["secrets"][0], RecoveryWindowInDays=7)

    again = run("deploy", STACK=STACK, SKIP_IMAGES="1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"data: KMS key {key_id} was scheduled for deletion; deletion cancelled" in again.stdout
    assert f"data: KMS key {key_id} enabled again" in again.stdout
    assert f"({used['secrets'][0]}) was scheduled for deletion; restored" in again.stdout
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert "DeletedDate" not in sm.describe_secret(SecretId=used["secrets"][0])
    assert in_use(aws) == used
    assert run("cleanup", STACK=STACK, YES="1").returncode == 0


def test_kept_data_that_would_not_come_back_whole_is_refused_before_anything_changes(aws):
    before = inventory.take(aws)
    assert run("deploy", STACK=STACK, SKIP_IMAGES="1").returncode == 0
    used = in_use(aws)
    assert run("cleanup", STACK=STACK, YES="1", KEEP_DATA="1").returncode == 0
    # One password is gone for good: the database on the kept file system could not be logged into.
    aws.client("secretsmanager").delete_secret(SecretId=used["secrets"][1], ForceDeleteWithoutRecovery=True)

    refused = run("deploy", STACK=STACK, SKIP_IMAGES="1")
    assert refused.returncode == 1
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert line == ("error: the secrets kept from an earlier deployment of dks cover postgres-password but not "
                    "db-role-password; the data was written with the kept ones, so give them all in "
                    "PARAMS=\"DataSecretArns=...\" or delete the kept data with make cleanup")
    assert aws.client("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"] == []

    gone = run("cleanup", STACK=STACK, YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_data_the_deployment_did_not_make_is_never_touched(aws):
    """A file system named like the data, one tagged for another deployment, and a whole set given
    by hand in PARAMS: none of them carries this deployment's tags, so none is reattached or deleted."""
    efs, kms, sm = aws.client("efs"), aws.client("kms"), aws.client("secretsmanager")
    named = efs.create_file_system(CreationToken="someone", Tags=[{"Key": "Name", "Value": f"{STACK}-data"}])
    other = efs.create_file_system(CreationToken="other", Tags=[
        {"Key": "Name", "Value": f"{STACK}-data"}, {"Key": "ecs-app:stack", "Value": "other"},
        {"Key": "ecs-app:data", "Value": "file-system"}])
    strangers = {named["FileSystemId"], other["FileSystemId"]}
    before = inventory.take(aws)

    first = run("deploy", STACK=STACK, SKIP_IMAGES="1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "data: nothing kept from an earlier deployment" in first.stdout
    assert in_use(aws)["file system"] not in strangers
    gone = run("cleanup", STACK=STACK, YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert not any(system in gone.stdout for system in strangers)
    assert inventory.difference(before, inventory.take(aws)) == {}

    # Given explicitly, someone else's resources are used (PARAMS win), and still never deleted.
    key = kms.create_key(Description="someone else's")["KeyMetadata"]
    arns = [sm.create_secret(Name=f"someone/{name}", SecretString="x", KmsKeyId=key["KeyId"])["ARN"]
            for name in ("a", "b")]
    before = inventory.take(aws)
    given = run("deploy", STACK=STACK, SKIP_IMAGES="1", PARAMS=f"DataFileSystemId={named['FileSystemId']} "
                f"DataKeyArn={key['Arn']} DataSecretArns={','.join(arns)}")
    assert given.returncode == 0, given.stdout + given.stderr
    assert "data:" not in given.stdout, "nothing is looked for when PARAMS name it all"
    assert in_use(aws)["file system"] == named["FileSystemId"] and in_use(aws)["in tasks"] == sorted(arns)
    gone = run("cleanup", STACK=STACK, YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    for what in (f"EFS file system {named['FileSystemId']}", f"KMS key {key['KeyId']}", *(f"secret {a}" for a in arns)):
        assert f"data: {what} was given to dks but does not carry its tags: not ours, left alone" in gone.stdout
    assert "deleted (no recovery window)" not in gone.stdout and "scheduled for deletion" not in gone.stdout
    assert inventory.difference(before, inventory.take(aws)) == {}
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_the_readme_s_by_hand_commands_take_kept_data_back(aws, tmp_path, monkeypatch):
    section = (ROOT / "README.md").read_text().split("\n### By hand, with the AWS CLI\n", 1)[1]
    deploy, reattach = re.findall(r"```sh\n(.*?)```", section, re.S)[:2]
    bucket = re.search(r"^BUCKET=(\S+)$", deploy, re.M).group(1)
    (tmp_path / "docker").write_text(DOCKER)  # the block copies postgres with docker: a stand-in records it
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("DOCKER_LOG", str(tmp_path / "docker.log"))
    before = inventory.take(aws)
    deployed = shell(deploy, path=f"{tmp_path}{os.pathsep}")
    assert deployed.returncode == 0, deployed.stderr
    used = in_use(aws)

    removed = shell("aws cloudformation delete-stack --stack-name dks\n"
                    "aws cloudformation wait stack-delete-complete --stack-name dks")
    assert removed.returncode == 0, removed.stderr
    back = shell(f"BUCKET={bucket}\n{reattach}")
    assert back.returncode == 0, back.stderr
    assert in_use(aws) == used, "the same file system, key and secrets"

    # What the by-hand stacks made and kept carries the deployment's tags: make cleanup finds it all.
    gone = run("cleanup", STACK=STACK, YES="1", BUCKET=bucket)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"data: EFS file system {used['file system']} deleted" in gone.stdout
    assert shell(f'aws s3 rb "s3://{bucket}" --force').returncode == 0
    assert inventory.difference(before, inventory.take(aws)) == {}
