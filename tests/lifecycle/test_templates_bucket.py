"""The templates bucket: what deploy makes of one it creates, and a bucket of another account refused.

CloudFormation runs the templates in the bucket with CAPABILITY_NAMED_IAM, so whoever can write
them can write this account's IAM. Every S3 call names the account it expects to own the bucket
(ExpectedBucketOwner); the emulator answers a mismatch as S3 does (AccessDenied, 403).
"""
from __future__ import annotations

import json

import boto3

import inventory
from test_lifecycle import ACCOUNT_BUCKET, run

OTHER_ACCOUNT = "222222222222"


def test_a_bucket_deploy_creates_is_versioned_and_refuses_plain_http(aws):
    assert run("deploy", STACK="dks", SKIP_IMAGES="1").returncode == 0
    s3 = aws.client("s3")
    assert s3.get_bucket_versioning(Bucket=ACCOUNT_BUCKET)["Status"] == "Enabled"
    policy = json.loads(s3.get_bucket_policy(Bucket=ACCOUNT_BUCKET)["Policy"])
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert sorted(deny["Resource"]) == [f"arn:aws:s3:::{ACCOUNT_BUCKET}", f"arn:aws:s3:::{ACCOUNT_BUCKET}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert run("cleanup", STACK="dks", YES="1").returncode == 0


def other_account(aws) -> boto3.Session:
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/elsewhere"
    credentials = aws.client("sts").assume_role(RoleArn=role, RoleSessionName="elsewhere")["Credentials"]
    session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"], region_name=aws.region_name,
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"])
    assert session.client("sts").get_caller_identity()["Account"] == OTHER_ACCOUNT
    return session


def test_a_bucket_in_another_account_never_receives_the_templates(aws):
    elsewhere = other_account(aws)
    elsewhere.client("s3").create_bucket(Bucket="precreated-elsewhere")
    before = inventory.take(aws)
    refused = run("deploy", STACK="dks", SKIP_IMAGES="1", BUCKET="precreated-elsewhere")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "precreated-elsewhere" in line and "123456789012" in line
    assert elsewhere.client("s3").list_object_versions(Bucket="precreated-elsewhere").get("Versions") is None
    assert inventory.difference(before, inventory.take(aws)) == {}

    # cleanup refuses it too, before deleting anything
    kept = run("cleanup", STACK="dks", YES="1", BUCKET="precreated-elsewhere")
    assert kept.returncode == 2 and "precreated-elsewhere" in kept.stderr, kept.stdout + kept.stderr
