"""Emptying and deleting an S3 bucket, for the tests' own clean-up. boto3 only: tests/taskcat_run.py imports it
under taskcat's python, which has none of the project's packages."""
from __future__ import annotations


def remove(s3, bucket: str) -> None:
    """Delete every object, one DeleteObjects call per listed page of up to 1,000 keys rather than one
    DeleteObject per object (taskcat uploads some 650 files), then the bucket
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            failed = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True}).get("Errors")
            if failed:
                raise RuntimeError(f"{bucket}: {len(failed)} objects not deleted, e.g. {failed[0]}")
    s3.delete_bucket(Bucket=bucket)
