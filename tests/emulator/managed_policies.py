"""AWS managed policies read once per process instead of once per IAM backend.

moto builds every IAM backend (one per partition, six per account) by parsing its 1,582 AWS managed
policies from one large JSON string and serialising each document back, on every reset too: about
0.9 s of a reset's 1.2 s after a deploy, paid by each test on the emulator. The parsed fields are the
same every time, so they are parsed once; each backend still gets policy objects of its own, since
attaching a policy counts on the object (ManagedPolicy.attach_to).
"""
from __future__ import annotations

import functools
import json
from datetime import datetime

from moto.iam import models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.settings import load_iam_aws_managed_policies


@functools.cache
def _fields() -> tuple[tuple[str, dict], ...]:
    """What AWSManagedPolicy.from_data passes to the constructor, per policy, computed as it computes it."""
    return tuple(
        (name, {"default_version_id": data.get("DefaultVersionId"), "path": data.get("Path"),
                "document": json.dumps(data.get("Document")),
                "create_date": datetime.fromisoformat(data["CreateDate"]),
                "update_date": datetime.fromisoformat(data["UpdateDate"])})
        for name, data in json.loads(aws_managed_policies_data).items())


def _init_aws_policies(self: models.IAMBackend) -> list[models.ManagedPolicy]:
    if not load_iam_aws_managed_policies():
        return []
    return [models.AWSManagedPolicy(name, account_id=self.account_id, region=self.region_name, **fields)
            for name, fields in _fields()]


models.IAMBackend._init_aws_policies = _init_aws_policies
