"""CloudWatch Logs through CloudFormation: a log group keeps its KMS key.

moto 5.2.5 reads the API's kmsKeyId, not the template's KmsKeyId, and drops the key.
"""
from __future__ import annotations

from moto.logs import models as logs

from . import replace_classmethod


# KmsKeyId
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-logs-loggroup.html
@replace_classmethod(logs.LogGroup, "create_from_cloudformation_json")
def _log_group_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """moto reads the API's kmsKeyId, not the template's KmsKeyId, and drops the key."""
    properties = cloudformation_json["Properties"]
    if "KmsKeyId" in properties:
        properties["kmsKeyId"] = properties.pop("KmsKeyId")
    return original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
