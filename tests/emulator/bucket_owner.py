"""S3's bucket owner condition, which moto 5.2.5 ignores: a request naming ExpectedBucketOwner
(the `x-amz-expected-bucket-owner` header) on a bucket of another account is refused with
AccessDenied, 403, before it reads or writes anything.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html

moto keeps one bucket namespace across accounts (`s3_backends.bucket_accounts`) and lets any
account use any bucket, so without this a second emulated account's bucket takes another
account's uploads as if it were its own.
"""
from __future__ import annotations

from typing import Any

from moto.s3 import responses
from moto.s3.models import s3_backends

from .fixes import replace

HEADER = "x-amz-expected-bucket-owner"
# S3's own answer; moto's serializer would give an error code outside S3's model status 400.
DENIED = (403, {"content-type": "application/xml"},
          b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
          b"<Message>Access Denied</Message></Error>")


def another_owner(response: responses.S3Response) -> bool:
    expected = response.headers.get(HEADER)
    owner = s3_backends.bucket_accounts.get(getattr(response, "bucket_name", None) or "")
    return bool(expected) and owner is not None and owner[1] != expected


@replace(responses.S3Response, "_bucket_response")
def _bucket_response(original, self, request: Any, full_url: str) -> Any:
    return DENIED if another_owner(self) else original(self, request, full_url)


@replace(responses.S3Response, "_key_response")
def _key_response(original, self, request: Any, full_url: str) -> Any:
    return DENIED if another_owner(self) else original(self, request, full_url)
