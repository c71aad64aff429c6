"""KMS through CloudFormation: a key takes KeyPolicy and Tags as templates give them; a stack's delete schedules it.

moto 5.2.5 stores an object KeyPolicy it then fails to read, hands Key/Value tags to an API that reads
TagKey/TagValue, and cannot delete a key with its stack.
"""
from __future__ import annotations

import json

from moto.kms import models as kms

from . import add, replace_classmethod


# KeyPolicy is JSON, Tags are Key/Value, PendingWindowInDays 7-30
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html
@replace_classmethod(kms.Key, "create_from_cloudformation_json")
def _key_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """CloudFormation takes KeyPolicy as an object, and Tags as Key/Value pairs; moto stores the policy
    as given and then fails to read it, and hands the tags to an API that reads TagKey/TagValue."""
    properties = cloudformation_json["Properties"]
    if isinstance(properties.get("KeyPolicy"), dict):
        properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
    properties["Tags"] = [{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in properties.get("Tags", [])]
    key = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    key.pending_window_days = int(properties.get("PendingWindowInDays", 30))
    return key


# PendingWindowInDays
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html
@add(kms.Key, "delete")
def _key_delete(self, account_id, region_name):
    """Deleting a stack schedules its key's deletion after PendingWindowInDays, as CloudFormation does."""
    kms.kms_backends[account_id][region_name].schedule_key_deletion(self.id, getattr(self, "pending_window_days", 30))


class _WhenUsed:
    """A key's signing key pair, made the first time it is used (Sign, Verify, GetPublicKey)."""

    def __init__(self, make, key_spec: str):
        self._make, self._key_spec, self._made = make, key_spec, None

    def __getattr__(self, name: str):
        if self._made is None:
            self._made = self._make(self._key_spec)
        return getattr(self._made, name)


# moto makes an RSA-2048 key pair for every key, a symmetric one too (its fallback), which only Sign,
# Verify and GetPublicKey use: a tenth of a second of each emulated deploy that makes a key, so it is
# made when one of them first asks.
_generate = kms.generate_private_key
kms.generate_private_key = lambda key_spec: _WhenUsed(_generate, key_spec)
