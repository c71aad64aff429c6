"""IAM: roles with their managed and inline policies, and policy conditions evaluated as IAM evaluates them.

moto 5.2.5 ignores a role's ManagedPolicyArns, stores inline policies as Python objects (GetRolePolicy then
answers their repr), and treats a condition on a key the request lacks as holding and one that fails as a deny.
"""
from __future__ import annotations

import json

from moto.iam import access_control
from moto.iam import models as iam
from moto.utilities.utils import get_partition

from . import replace, replace_classmethod


# ManagedPolicyArns, Policies
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-role.html
@replace_classmethod(iam.Role, "create_from_cloudformation_json")
def _role_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    # IAM keeps an inline policy as JSON text; moto stores the template's object, and GetRolePolicy
    # then answers with its Python repr.
    for policy in cloudformation_json["Properties"].get("Policies", []):
        if isinstance(policy.get("PolicyDocument"), dict):
            policy["PolicyDocument"] = json.dumps(policy["PolicyDocument"])
    role = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    backend = iam.iam_backends[account_id][get_partition(region_name)]
    for arn in cloudformation_json["Properties"].get("ManagedPolicyArns", []):
        backend.attach_role_policy(arn, role.name)
    return role


# DeleteRole refuses a role with attached policies: detach them first
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html
@replace_classmethod(iam.Role, "delete_from_cloudformation_json")
def _role_delete(original, cls, resource_name, cloudformation_json, account_id, region_name):
    backend = iam.iam_backends[account_id][get_partition(region_name)]
    role = next((r for r in backend.roles.values() if r.name == resource_name), None)
    if role is None:
        return
    for arn in list(role.managed_policies):
        backend.detach_role_policy(arn, role.name)
    original(resource_name, cloudformation_json, account_id, region_name)


# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
@replace(access_control.IAMPolicyStatement, "is_action_permitted")
def _statement(original, self, action, resource="*", principal=None, incoming_condition_values=None):
    # A statement whose Condition does not hold does not apply. moto 5.2.5 counts a condition on a key
    # the request does not carry as holding, and one that does not hold as a denial, so a bucket policy
    # that denies only some requests (taskcat's "deny signature v2") refused every request.
    if "Condition" in self._statement and not conditions_hold(self._statement["Condition"], incoming_condition_values):
        return access_control.PermissionResult.NEUTRAL
    return original(self, action, resource, principal, incoming_condition_values)


def conditions_hold(conditions: dict, values: dict | None) -> bool:
    """IAM's rule: every condition must hold, and one on a key the request lacks holds only for ...IfExists."""
    from moto.iam.policy_conditions import TrustRelationShipConditions

    for condition in TrustRelationShipConditions(conditions):
        actual = [values[key] for key in condition.context_keys if values and key in values]
        if not actual:
            if not condition._condition.endswith("IfExists"):
                return False
        elif not condition.verify_condition(actual):
            return False
    return True
