"""Elastic Load Balancing: load balancers keep their Type and attributes; listeners, rules, target groups delete.

moto 5.2.5 drops Type (a network load balancer becomes an application one) and LoadBalancerAttributes, never
checks the access-log bucket's policy, and cannot delete listeners, listener rules or target groups with their
stack (a rule outlived it and kept its target group in use).
"""
from __future__ import annotations

import json

from moto.elbv2 import models as elbv2
from moto.utilities.utils import get_partition

from ..resources import InvalidParameter
from . import add, replace_classmethod


# Regions' Elastic Load Balancing accounts that deliver access logs to a bucket whose policy names them,
# for regions before August 2022; later ones deliver as the logdelivery service principal:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
ELB_LOG_ACCOUNTS = {"us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980",
                    "us-west-2": "797873946194", "eu-west-1": "156460612806", "eu-central-1": "054676820928"}
ELB_LOG_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


@replace_classmethod(elbv2.FakeLoadBalancer, "create_from_cloudformation_json")
def _load_balancer_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    """moto makes the load balancer and drops Type and LoadBalancerAttributes; ELB applies them, and enabling access
    logs fails the resource unless the bucket exists and its policy lets ELB's log delivery write to it
    ("Access Denied for bucket: <name>. Please check S3bucket permission", InvalidConfigurationRequest)."""
    attributes = {}
    for item in cloudformation_json["Properties"].get("LoadBalancerAttributes") or []:
        if isinstance(item, dict) and "Key" in item:
            attributes[item["Key"]] = str(item["Value"]).lower() if isinstance(item["Value"], bool) else item["Value"]
    if attributes.get("access_logs.s3.enabled") == "true":
        bucket = attributes.get("access_logs.s3.bucket", "")
        if not _log_delivery_allowed(account_id, region_name, bucket):
            raise InvalidParameter(f"Access Denied for bucket: {bucket}. Please check S3bucket permission")
    balancer = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    # moto drops Type too, so a network load balancer became an application one that refuses TCP and UDP
    # listeners; CloudFormation makes the Type given (default application):
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-elasticloadbalancingv2-loadbalancer.html
    balancer.type = cloudformation_json["Properties"].get("Type") or "application"
    if attributes:
        elbv2.elbv2_backends[account_id][region_name].modify_load_balancer_attributes(balancer.arn, attributes)
    return balancer


def _log_delivery_allowed(account_id: str, region_name: str, bucket: str) -> bool:
    from moto.s3.models import s3_backends

    found = s3_backends[account_id][get_partition(region_name)].buckets.get(bucket)
    if found is None or not found.policy:
        return False
    policy = json.loads(found.policy.decode() if isinstance(found.policy, bytes) else found.policy)
    writers = {ELB_LOG_SERVICE, f"arn:aws:iam::{ELB_LOG_ACCOUNTS.get(region_name, '')}:root",
               ELB_LOG_ACCOUNTS.get(region_name, "")}
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = statement.get("Principal", {})
        named = {p for value in (principal.values() if isinstance(principal, dict) else [principal])
                 for p in ([value] if isinstance(value, str) else value)}
        if statement.get("Effect") == "Allow" and {"s3:PutObject", "s3:*"} & set(actions) and named & writers:
            return True
    return False


# A stack's delete deletes its listeners, rules and target groups
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html
@add(elbv2.FakeListener, "delete")
def _listener_delete(self, account_id, region_name):
    elbv2.elbv2_backends[account_id][region_name].delete_listener(self.arn)


@add(elbv2.FakeListenerRule, "delete")
def _listener_rule_delete(self, account_id, region_name):
    # moto had none: a rule outlived its stack and kept its target group in use, until moto's delete
    # happened to remove the listener first.
    elbv2.elbv2_backends[account_id][region_name].delete_rule(self.arn)


@add(elbv2.FakeTargetGroup, "delete")
def _target_group_delete(self, account_id, region_name):
    elbv2.elbv2_backends[account_id][region_name].delete_target_group(self.arn)
