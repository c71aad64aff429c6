"""AWS managed policies read once per process instead of once per IAM backend.

moto builds every IAM backend (one per partition, six per account) by parsing its 1,582 AWS managed
policies from one large JSON string and serialising each document back, on every reset too: about
0.9 s of a reset's 1.2 s after a deploy, paid by each test on the emulator. The parsed fields are the
same every time, so they are parsed once. Building the 1,582 policy objects then still cost most of an
IAM backend's making (a random 21-character id each), so they are built once per account and partition
too, and each backend gets shallow copies: objects of its own, since attaching a policy counts on the
object (ManagedPolicy.attach_to), with the same ids every time, as an AWS managed policy has one id
everywhere (ANPA...).
"""
from __future__ import annotations

import functools
import json
from datetime import datetime

from moto.iam import models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.settings import load_iam_aws_managed_policies

from .fixes import copy_of


@functools.cache
def _fields() -> tuple[tuple[str, dict], ...]:
    """What AWSManagedPolicy.from_data passes to the constructor, per policy, computed as it computes it."""
    return tuple(
        (name, {"default_version_id": data.get("DefaultVersionId"), "path": data.get("Path"),
                "document": json.dumps(data.get("Document")),
                "create_date": datetime.fromisoformat(data["CreateDate"]),
                "update_date": datetime.fromisoformat(data["UpdateDate"])})
        for name, data in json.loads(aws_managed_policies_data).items())


@functools.cache
def _built(account_id: str, region: str) -> tuple[models.AWSManagedPolicy, ...]:
    return tuple(models.AWSManagedPolicy(name, account_id=account_id, region=region, **fields)
                 for name, fields in _fields())


def _init_aws_policies(self: models.IAMBackend) -> list[models.ManagedPolicy]:
    if not load_iam_aws_managed_policies():
        return []
    return [copy_of(policy, versions=list(policy.versions), tags=dict(policy.tags))
            for policy in _built(self.account_id, self.region_name)]


models.IAMBackend._init_aws_policies = _init_aws_policies
