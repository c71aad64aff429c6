"""make cleanup and make deploy touch only what the deployment made, on the emulator.

A stack, a file system or a bucket's objects are the deployment's only when CloudFormation or
deploy says so (the stack's tags, the stack's resources, the tags deploy and CloudFormation wrote,
the bucket deploy created, the objects deploy recorded uploading), never because a name matches.
"""
from __future__ import annotations

import json

import inventory
from test_lifecycle import run

SHARED = "team-shared-bucket"
STRANGER_TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


def versions(aws, bucket: str) -> list[tuple[str, str]]:
    """Every version and delete marker in the bucket, as (key, version id)."""
    found = []
    for page in aws.client("s3").get_paginator("list_object_versions").paginate(Bucket=bucket):
        found += [(v["Key"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    return sorted(found)


def shared_bucket(aws) -> list[tuple[str, str]]:
    """A versioned bucket deploy did not create, holding someone's objects under `bar/`."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=SHARED)
    s3.put_bucket_versioning(Bucket=SHARED, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"first", b"second"):
        s3.put_object(Bucket=SHARED, Key="bar/notes.txt", Body=body)
    s3.put_object(Bucket=SHARED, Key="bar/0123456789abcdef/main.yaml", Body=b"someone's template")
    return versions(aws, SHARED)


def stranger_file_systems(aws, stack: str) -> dict[str, str]:
    """File systems linked to `stack` only by a name, or by the project's tags written by hand."""
    efs = aws.client("efs")
    named = efs.create_file_system(CreationToken=f"{stack}-named", Tags=[{"Key": "Name", "Value": f"{stack}-data"}])
    other = efs.create_file_system(CreationToken=f"{stack}-other", Tags=[
        {"Key": "Name", "Value": f"{stack}-data"}, {"Key": "ecs-app:stack", "Value": "other"},
        {"Key": "ecs-app:data", "Value": "file-system"}])
    by_hand = efs.create_file_system(CreationToken=f"{stack}-by-hand", Tags=[
        {"Key": "Name", "Value": f"{stack}-data"}, {"Key": "ecs-app:stack", "Value": stack},
        {"Key": "ecs-app:data", "Value": "file-system"}])
    return {"named": named["FileSystemId"], "other": other["FileSystemId"], "by hand": by_hand["FileSystemId"]}


def file_systems(aws) -> set[str]:
    return {fs["FileSystemId"] for fs in aws.client("efs").describe_file_systems()["FileSystems"]}


def test_cleanup_of_a_stack_never_deployed_refuses_a_registry_stack_it_did_not_make(aws):
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="bar-registry", TemplateBody=STRANGER_TEMPLATE)
    strangers = stranger_file_systems(aws, "bar")
    objects = shared_bucket(aws)
    before = inventory.take(aws)

    refused = run("cleanup", STACK="bar", YES="1", BUCKET=SHARED)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "bar-registry" in line and "ecs-app:stack=bar" in line and "not" in line
    assert inventory.difference(before, inventory.take(aws)) == {}
    assert cfn.describe_stacks(StackName="bar-registry")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert versions(aws, SHARED) == objects

    # Without that stack, cleanup has nothing of bar's to delete, and deletes nothing. The file
    # system tagged ecs-app:stack=bar by hand is listed as still carrying the tag (exit 1), not deleted.
    cfn.delete_stack(StackName="bar-registry")
    before = inventory.take(aws)
    done = run("cleanup", STACK="bar", YES="1", BUCKET=SHARED)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cleanup: 1 resource still carries the tag of bar:" in done.stdout
    assert versions(aws, SHARED) == objects, "no object version under bar/ is deploy's"
    assert set(strangers.values()) <= file_systems(aws)
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_deploy_refuses_a_stack_of_its_names_that_it_did_not_make(aws):
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="bar-registry", TemplateBody=STRANGER_TEMPLATE)
    before = inventory.take(aws)
    refused = run("deploy", STACK="bar", SKIP_IMAGES="1")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "bar-registry" in line and "ecs-app:stack=bar" in line
    assert inventory.difference(before, inventory.take(aws)) == {}, "no bucket, no upload, no stack"
    stranger = cfn.describe_stacks(StackName="bar-registry")["Stacks"][0]
    assert stranger["StackStatus"] == "CREATE_COMPLETE" and not stranger.get("Tags")

    cfn.delete_stack(StackName="bar-registry")
    cfn.create_stack(StackName="bar", TemplateBody=STRANGER_TEMPLATE, Tags=[{"Key": "ecs-app:stack", "Value": "baz"}])
    for command in ("deploy", "cleanup"):
        refused = run(command, STACK="bar", SKIP_IMAGES="1", YES="1")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "stack bar does not carry ecs-app:stack=bar" in refused.stderr
    assert cfn.describe_stacks(StackName="bar")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_cleanup_deletes_only_its_own_templates_and_keeps_a_bucket_another_stack_uses(aws):
    strangers = stranger_file_systems(aws, "foo")
    before = inventory.take(aws)
    bucket = "foo-templates-123456789012-us-east-1"
    assert run("deploy", STACK="foo", SKIP_IMAGES="1").returncode == 0
    baz = run("deploy", STACK="baz", SKIP_IMAGES="1", BUCKET=bucket)
    assert baz.returncode == 0, baz.stdout + baz.stderr
    theirs = [(key, version) for key, version in versions(aws, bucket) if key.startswith("baz/")]
    assert theirs

    gone = run("cleanup", STACK="foo", YES="1")
    assert gone.returncode == 1, gone.stdout + gone.stderr
    assert "cleanup: 1 resource still carries the tag of foo:" in gone.stdout, "the one tagged by hand, kept"
    assert strangers["by hand"] in gone.stdout
    assert versions(aws, bucket) == theirs, "foo's templates gone, every version; baz's all there"
    assert f"bucket {bucket}: kept" in gone.stdout and "baz/" in gone.stdout
    assert set(strangers.values()) <= file_systems(aws)
    assert aws.client("cloudformation").describe_stacks(StackName="baz")["Stacks"][0]["StackStatus"] \
        == "CREATE_COMPLETE"

    assert run("cleanup", STACK="baz", YES="1", BUCKET=bucket).returncode == 0
    assert versions(aws, bucket) == []
    last = run("cleanup", STACK="foo", YES="1")
    assert last.returncode == 1, last.stdout + last.stderr
    assert f"bucket {bucket}: deleted" in last.stdout
    assert set(strangers.values()) <= file_systems(aws)
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_kept_data_of_anyone_else_survives_a_cleanup_after_the_stack_is_gone(aws):
    """The "stack gone" path: only tags say what is the deployment's, and hand-written ones do not."""
    strangers = stranger_file_systems(aws, "dks")
    assert run("deploy", STACK="dks", SKIP_IMAGES="1").returncode == 0
    # The one tagged ecs-app:stack=dks by hand is listed as still carrying the tag (exit 1) each time.
    assert run("cleanup", STACK="dks", YES="1", KEEP_DATA="1").returncode == 1
    gone = run("cleanup", STACK="dks", YES="1")
    assert gone.returncode == 1, gone.stdout + gone.stderr
    assert "cleanup: 1 resource still carries the tag of dks:" in gone.stdout
    assert gone.stdout.count("data: EFS file system fs-") == 1, "the one the stack made"
    assert not any(f"{system} deleted" in gone.stdout for system in strangers.values())
    assert file_systems(aws) == set(strangers.values())
