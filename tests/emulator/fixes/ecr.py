"""ECR through CloudFormation: repositories keep scanning, encryption, lifecycle policy and EmptyOnDelete.

moto 5.2.5 hands CloudFormation's PascalCase settings to an API that reads camelCase, drops the lifecycle
policy, and deletes a repository that still holds images whatever EmptyOnDelete says.
"""
from __future__ import annotations

from moto.ecr import models as ecr

from ..resources import camel
from . import flag, replace, replace_classmethod


# ImageScanningConfiguration, EncryptionConfiguration, LifecyclePolicy, EmptyOnDelete
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecr-repository.html
@replace_classmethod(ecr.Repository, "create_from_cloudformation_json")
def _repository_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    for key in ("ImageScanningConfiguration", "EncryptionConfiguration"):
        if key in props:  # moto hands CloudFormation's PascalCase to an API that reads camelCase
            props[key] = camel(props[key])
    repository = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    repository.empty_on_delete = flag(props.get("EmptyOnDelete", False))
    policy = props.get("LifecyclePolicy", {}).get("LifecyclePolicyText")
    if policy:
        ecr.ecr_backends[account_id][region_name].put_lifecycle_policy(None, repository.name, policy)
    return repository


# EmptyOnDelete true deletes the images with the repository; false refuses a repository that holds any
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecr-repository.html
@replace(ecr.Repository, "delete")
def _repository_delete(original, self, account_id, region_name):
    backend = ecr.ecr_backends[account_id][region_name]
    if self.name in backend.repositories:
        backend.delete_repository(self.name, force=getattr(self, "empty_on_delete", False))
