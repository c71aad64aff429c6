"""The templates bucket: whose it is, what deploy put in it, and the lock one deploy holds.

CloudFormation runs the templates in this bucket with CAPABILITY_NAMED_IAM, so whoever can write
them can write this account's IAM. Every S3 call names the account it expects to own the bucket
(ExpectedBucketOwner: S3 answers 403 when another account owns it, before reading or writing):
a bucket pre-created in another account under the expected name never receives a template.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html

A bucket deploy creates is tagged `CREATED_TAG=<stack>`, encrypted, public access blocked,
versioned (a template overwritten or deleted can be recovered, and cleanup deletes exact
versions) and denies any request not made over TLS (`aws:SecureTransport` false).
https://repost.aws/knowledge-center/s3-bucket-policy-for-config-rule
A bucket given with BUCKET= is used as it is: deploy does not change the settings of a bucket it
did not create, and says which of these it lacks.

What deploy uploads is recorded, key and version, in the manifest `<stack>/uploads.json`; cleanup
deletes exactly those versions and never lists a prefix to decide what to delete. A key is
recorded only as `<stack>/<16 hex digits of the build's digest>/<file>`, so a manifest written by
anyone else can name nothing outside the content-addressed keys of this stack's builds. The
bucket itself goes only when deploy created it for this stack and nothing else is left in it
(another stack deployed with BUCKET= keeps its templates there).

While a deploy runs it holds `<stack>/deploy.lock`, written only if absent (a conditional write,
If-None-Match: *); a second deploy of the stack meanwhile refuses with one sentence.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import socket
from collections.abc import Iterator

from botocore.exceptions import ClientError

from lifecycle import wait
from lifecycle.aws import CREATED_TAG, TAG, InputError, Target, error_code

DENIED = ("403", "AccessDenied", "Forbidden")
ABSENT = ("404", "NoSuchBucket", "NotFound")


def manifest_key(stack: str) -> str:
    return f"{stack}/uploads.json"


def lock_key(stack: str) -> str:
    return f"{stack}/deploy.lock"


def _owner(target: Target) -> dict[str, str]:
    return {"ExpectedBucketOwner": target.account}


def _refused(target: Target, bucket: str) -> InputError:
    return InputError(f"BUCKET={bucket}: S3 refused it for ExpectedBucketOwner={target.account} (another account "
                      "owns it, or this one may not use it), and templates CloudFormation runs with "
                      "CAPABILITY_NAMED_IAM go only to a bucket of this account: choose another BUCKET")


def exists(target: Target, bucket: str) -> bool:
    """Whether the bucket exists and is this account's; refuses (exit 2) one of another account."""
    try:
        target.client("s3").head_bucket(Bucket=bucket, **_owner(target))
        return True
    except ClientError as error:
        if error_code(error) in DENIED:
            raise _refused(target, bucket) from None
        if error_code(error) in ABSENT:
            return False
        raise


def tags(target: Target, bucket: str) -> dict[str, str]:
    try:
        found = target.client("s3").get_bucket_tagging(Bucket=bucket, **_owner(target))["TagSet"]
    except ClientError as error:
        if error_code(error) in DENIED:
            raise _refused(target, bucket) from None
        if error_code(error) == "NoSuchTagSet":
            return {}
        raise
    return {tag["Key"]: tag["Value"] for tag in found}


def tls_only_policy(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def ensure(target: Target, bucket: str) -> None:
    """Create the bucket when missing; say what a bucket deploy did not create lacks."""
    s3 = target.client("s3")
    if exists(target, bucket):
        if tags(target, bucket).get(CREATED_TAG) != target.stack:
            for line in _lacks(target, bucket):
                print(f"bucket {bucket}: {line}")
        return
    print(f"bucket {bucket}: creating (encrypted, versioned, TLS only, public access blocked)")
    extra = {} if target.region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": target.region}}
    s3.create_bucket(Bucket=bucket, **extra)
    # Tagged first: a deploy stopped midway leaves a bucket cleanup knows as this stack's.
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": TAG, "Value": target.stack}, {"Key": CREATED_TAG, "Value": target.stack}]}, **_owner(target))
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
        **_owner(target))
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]},
        **_owner(target))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}, **_owner(target))
    s3.put_bucket_policy(Bucket=bucket, Policy=tls_only_policy(bucket), **_owner(target))


def _lacks(target: Target, bucket: str) -> list[str]:
    s3 = target.client("s3")
    lines = []
    if s3.get_bucket_versioning(Bucket=bucket, **_owner(target)).get("Status") != "Enabled":
        lines.append("not created by deploy and not versioned (left as it is): a template overwritten in it "
                     "cannot be recovered")
    try:
        policy = s3.get_bucket_policy(Bucket=bucket, **_owner(target))["Policy"]
    except ClientError as error:
        if error_code(error) != "NoSuchBucketPolicy":
            raise
        policy = ""
    if '"aws:SecureTransport"' not in policy:
        lines.append("not created by deploy and its policy does not deny plain HTTP (left as it is)")
    return lines


# --- what deploy put there ---------------------------------------------------------------------------

def _recorded(stack: str, key: str) -> bool:
    return re.fullmatch(rf"{re.escape(stack)}/[0-9a-f]{{16}}/[A-Za-z0-9._-]+", key) is not None


def manifest(target: Target, bucket: str) -> tuple[dict, str | None]:
    """The manifest and the version of it read: None when there is none, "" in an unversioned bucket."""
    try:
        found = target.client("s3").get_object(Bucket=bucket, Key=manifest_key(target.stack), **_owner(target))
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return {"objects": [], "manifests": []}, None
        raise
    try:
        recorded = json.loads(found["Body"].read())
    except ValueError:
        recorded = {}
    objects = [item for item in recorded.get("objects", [])
               if isinstance(item, dict) and _recorded(target.stack, str(item.get("Key", "")))]
    manifests = [v for v in recorded.get("manifests", []) if isinstance(v, str)]
    version = found.get("VersionId")
    return {"objects": objects, "manifests": manifests}, (version if version not in (None, "null") else "")


def upload(target: Target, bucket: str, key_prefix: str, files: dict[str, str]) -> int:
    """Put each template unless deploy recorded putting it there already and it still is; record
    what it put. Returns how many were put."""
    s3 = target.client("s3")
    recorded, version = manifest(target, bucket)
    present = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=key_prefix, **_owner(target)) for item in page.get("Contents", [])}
    # Deploy's own and still there: a key somebody else put at the same name is put again, as deploy's.
    done = {item["Key"] for item in recorded["objects"]} & present
    put = []
    for name, text in files.items():
        key = key_prefix + name
        if key in done:
            continue
        answer = s3.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/x-yaml",
                               **_owner(target))
        put.append({"Key": key, "VersionId": answer.get("VersionId")})
    if put:
        recorded["objects"] += put
        recorded["manifests"] += [version] if version else []
        s3.put_object(Bucket=bucket, Key=manifest_key(target.stack), ContentType="application/json",
                      Body=json.dumps({"stack": target.stack, **recorded}, indent=1).encode(), **_owner(target))
    return len(put)


def remove(target: Target, bucket: str) -> bool:
    """Delete the exact object versions deploy recorded, then the bucket if deploy created it for
    this stack and nothing else is left in it. True when a bucket deploy created is kept for what
    others left in it (it still carries the stack's tag, on purpose)."""
    s3 = target.client("s3")
    if not exists(target, bucket):
        print(f"bucket {bucket}: not there")
        return False
    created = tags(target, bucket).get(CREATED_TAG) == target.stack
    recorded, version = manifest(target, bucket)
    doomed = [{"Key": item["Key"], **({"VersionId": item["VersionId"]} if item.get("VersionId") else {})}
              for item in recorded["objects"]]
    key = manifest_key(target.stack)
    doomed += [{"Key": key, "VersionId": v} for v in recorded["manifests"] + ([version] if version else [])]
    if version == "":  # unversioned: the key is the one copy
        doomed.append({"Key": key})
    for start in range(0, len(doomed), 1000):
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start:start + 1000], "Quiet": True},
                                   **_owner(target))
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise InputError(f"bucket {bucket}: S3 did not delete {first['Key']}: {first.get('Message', '')}")
    deleted = len(recorded["objects"])
    if not created:
        print(f"bucket {bucket}: not created by deploy for {target.stack}, kept; the {deleted} objects deploy "
              "recorded uploading deleted")
        return False
    left = s3.list_object_versions(Bucket=bucket, MaxKeys=5, **_owner(target))
    others = sorted({v["Key"] for v in left.get("Versions", []) + left.get("DeleteMarkers", [])})
    if others:
        print(f"bucket {bucket}: kept, it still holds objects deploy did not upload for {target.stack} "
              f"({', '.join(others)}{', ...' if left.get('IsTruncated') else ''}); the {deleted} it did are deleted, "
              f"and make cleanup STACK={target.stack} deletes the bucket once the others are gone")
        return True
    s3.delete_bucket(Bucket=bucket, **_owner(target))
    with wait.shown(f"bucket {bucket}: waiting for S3 to report it deleted", "Ctrl-C stops waiting; it is deleted",
                    after=3):
        s3.get_waiter("bucket_not_exists").wait(Bucket=bucket, **_owner(target),
                                               WaiterConfig={"Delay": 2, "MaxAttempts": 30})
    print(f"bucket {bucket}: deleted ({deleted} objects)")
    return False


# --- one deploy at a time ----------------------------------------------------------------------------

def _holder(target: Target, bucket: str) -> tuple[dict, str] | None:
    """The lock's holder (stack, host, pid, started) and the lock's version; None when there is no lock."""
    try:
        found = target.client("s3").get_object(Bucket=bucket, Key=lock_key(target.stack), **_owner(target))
    except ClientError as error:
        if error_code(error) in ("NoSuchKey", "404"):
            return None
        raise
    try:
        holder = json.loads(found["Body"].read())
    except ValueError:
        holder = {}
    return (holder if isinstance(holder, dict) else {}), found.get("VersionId") or ""


def _gone(holder: dict) -> bool:
    """Whether the holder is a process of this host that no longer runs (killed before it let go).
    A holder on another host cannot be looked at from here."""
    if holder.get("stack") is None or holder.get("host") != socket.gethostname():
        return False
    try:
        pid = int(holder.get("pid", 0))
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False
    return pid <= 0 or _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process whose parent has not collected it yet still answers kill(pid, 0) (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _describe(target: Target, bucket: str, holder: dict) -> str:
    return (f"s3://{bucket}/{lock_key(target.stack)} is held by process {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')} since {holder.get('started', '?')}")


def _drop(target: Target, bucket: str, version: str) -> None:
    target.client("s3").delete_object(Bucket=bucket, Key=lock_key(target.stack), **_owner(target),
                                      **({"VersionId": version} if version not in ("", "null") else {}))


def clear_stale_lock(target: Target, bucket: str) -> None:
    """For cleanup: remove a lock its holder left when killed; refuse (exit 2) while a deploy holds it."""
    found = _holder(target, bucket)
    if found is None:
        return
    holder, version = found
    if not _gone(holder):
        raise InputError(f"a make deploy of {target.stack} may be running: {_describe(target, bucket, holder)}; "
                         "wait for it to end, or, if it died, delete that object and run make cleanup again")
    _drop(target, bucket, version)
    print(f"deploy lock of process {holder.get('pid')} (no longer running) removed")


@contextlib.contextmanager
def lock(target: Target, bucket: str) -> Iterator[None]:
    """Hold the stack's deploy lock for the block; refuse (exit 2) while another deploy holds it.
    A lock left by a killed deploy on this host is taken over, and said so."""
    s3 = target.client("s3")
    key = lock_key(target.stack)
    mine = {"stack": target.stack, "host": socket.gethostname(), "pid": os.getpid(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    for attempt in (1, 2):
        try:
            answer = s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(mine).encode(), IfNoneMatch="*",
                                   ContentType="application/json", **_owner(target))
            break
        except ClientError as error:
            # 409 ConditionalRequestConflict: another conditional write of the key is in flight.
            if error_code(error) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
        found = _holder(target, bucket)
        if found is not None and attempt == 1 and _gone(found[0]):
            _drop(target, bucket, found[1])
            print(f"deploy lock of process {found[0].get('pid')} (no longer running) taken over")
            continue
        held = _describe(target, bucket, found[0]) if found else f"s3://{bucket}/{key} is held"
        raise InputError(f"another make deploy of {target.stack} is running: {held}; wait for it to end, or, "
                         "if it died, delete that object and deploy again")
    try:
        yield
    finally:
        _drop(target, bucket, answer.get("VersionId") or "")
