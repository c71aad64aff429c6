"""Application Auto Scaling through CloudFormation: scalable targets and scaling policies, which moto 5.2.5
has an API for but no CloudFormation types, and the load balancer attributes a request-count policy is
labelled with.

- `AWS::ApplicationAutoScaling::ScalableTarget` registers the target with moto's own backend, so
  `describe-scalable-targets` shows it; Ref answers `<resource id>|<dimension>|<namespace>`, as
  CloudFormation does. Registering moves an ECS service's desired count into min..max, as AWS does: "it
  changes the resource's current capacity to a value that is inside of this range"
  (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html).
  Deleting it deregisters it, and with it its policies ("Deregistering a scalable target deletes the
  scaling policies and the scheduled actions that are associated with it",
  https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DeregisterScalableTarget.html).
- `AWS::ApplicationAutoScaling::ScalingPolicy` puts the policy on its target (ScalingTargetId, or the
  ResourceId/ScalableDimension/ServiceNamespace triple); Ref and Arn answer its ARN.
- `LoadBalancerFullName` (app/<name>/<id>) and `TargetGroupFullName` (targetgroup/<name>/<id>), the
  last parts of the ARNs, which moto leaves unanswered.

An update reaches the API too (updates.MODIFIERS): ServicesRunning turning min and max to 0 and back is seen
by describe-scalable-targets and by the service's desired count. Nothing here runs a policy: no metric
moves a count (what only real AWS can show).
"""
from __future__ import annotations

from typing import Any

from moto.applicationautoscaling.models import applicationautoscaling_backends
from moto.core.common_models import CloudFormationModel
from moto.ecs.models import ecs_backends
from moto.elbv2 import models as elbv2

from . import updates
from .resources import InvalidParameter, Resource


def _backend(account_id: str, region_name: str) -> Any:
    return applicationautoscaling_backends[account_id][region_name]


def _count(value: Any) -> int | None:
    return int(value) if value is not None else None


def _fit_service(account_id: str, region_name: str, resource_id: str, low: int, high: int) -> None:
    """An ECS service's desired count moved into low..high, as registering a scalable target does: through
    UpdateService, as Application Auto Scaling changes it, so the scheduler starts or stops tasks for it."""
    _, cluster, name = resource_id.split("/", 2)
    backend = ecs_backends[account_id][region_name]
    services, _ = backend.describe_services(cluster, [name])
    for service in services:
        count = min(max(service.desired_count or 0, low), high)
        if count != service.desired_count:
            backend.update_service({"cluster": cluster, "service": name, "desired_count": count})


class ScalableTarget(Resource, CloudFormationModel):
    attributes = ("Id",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApplicationAutoScaling::ScalableTarget"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        self = cls(account_id, region_name)
        self.namespace = cloudformation_json["Properties"]["ServiceNamespace"]
        self.resource_id = cloudformation_json["Properties"]["ResourceId"]
        self.dimension = cloudformation_json["Properties"]["ScalableDimension"]
        self.id = f"{self.resource_id}|{self.dimension}|{self.namespace}"
        if _backend(account_id, region_name)._scalable_target_exists(self.resource_id, self.dimension):
            raise InvalidParameter(f"{self.id} already exists")
        self.register(cloudformation_json["Properties"])
        return self

    def register(self, props: dict) -> None:
        low, high = _count(props["MinCapacity"]), _count(props["MaxCapacity"])
        if low > high:
            raise InvalidParameter(f"Minimum capacity {low} cannot be greater than maximum capacity {high}")
        _backend(self.account_id, self.region_name).register_scalable_target(
            self.namespace, self.resource_id, self.dimension, low, high, props.get("RoleARN"),
            _suspended(props.get("SuspendedState")))
        if self.namespace == "ecs":
            _fit_service(self.account_id, self.region_name, self.resource_id, low, high)

    def remove(self) -> None:
        backend = _backend(self.account_id, self.region_name)
        for key, policy in list(backend.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == \
                    (self.namespace, self.resource_id, self.dimension):
                policy.delete_alarms(self.account_id, self.region_name)
                del backend.policies[key]
        if backend._scalable_target_exists(self.resource_id, self.dimension):
            backend.deregister_scalable_target(self.namespace, self.resource_id, self.dimension)


def _suspended(state: dict | None) -> dict | None:
    """The API's SuspendedState has the template's keys."""
    return dict(state) if state else None


class ScalingPolicy(Resource, CloudFormationModel):
    attributes = ("Arn",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ApplicationAutoScaling::ScalingPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        self = cls(account_id, region_name)
        self.put(cloudformation_json["Properties"])
        return self

    def put(self, props: dict) -> None:
        if props.get("ScalingTargetId"):
            self.resource_id, self.dimension, self.namespace = props["ScalingTargetId"].split("|")
        else:
            self.resource_id, self.dimension, self.namespace = (
                props.get("ResourceId"), props.get("ScalableDimension"), props.get("ServiceNamespace"))
        backend = _backend(self.account_id, self.region_name)
        if not backend._scalable_target_exists(self.resource_id, self.dimension):
            # PutScalingPolicy's ObjectNotFoundException: a policy needs its registered target.
            raise InvalidParameter(f"No scalable target registered for service namespace: {self.namespace}, resource "
                                   f"ID: {self.resource_id}, scalable dimension: {self.dimension}")
        self.name = props["PolicyName"]
        kind = props["PolicyType"]
        body = props.get("TargetTrackingScalingPolicyConfiguration") if kind == "TargetTrackingScaling" \
            else props.get("StepScalingPolicyConfiguration")
        policy = backend.put_scaling_policy(self.name, self.namespace, self.resource_id, self.dimension,
                                            _numbers(body or {}), kind)
        self.id = self.arn = policy.policy_arn

    def remove(self) -> None:
        backend = _backend(self.account_id, self.region_name)
        # Gone already when its target was deleted first (a deregistered target takes its policies along).
        if any(self._is(policy) for policy in backend.policies.values()):
            backend.delete_scaling_policy(self.name, self.namespace, self.resource_id, self.dimension)

    def _is(self, policy: Any) -> bool:
        return (policy.policy_name, policy.service_namespace, policy.resource_id, policy.scalable_dimension) == \
            (self.name, self.namespace, self.resource_id, self.dimension)


# Numbers the API answers as numbers, which CloudFormation may hand over as strings.
NUMBERS = {"TargetValue": float, "ScaleInCooldown": int, "ScaleOutCooldown": int}


def _numbers(body: dict) -> dict:
    return {key: NUMBERS[key](value) if key in NUMBERS else value for key, value in body.items()}


# --- updates reach the API --------------------------------------------------------------------------

def _modify_target(original: ScalableTarget, properties: dict, account_id: str, region_name: str) -> ScalableTarget:
    original.register(properties)
    return original


def _modify_policy(original: ScalingPolicy, properties: dict, account_id: str, region_name: str) -> ScalingPolicy:
    original.put(properties)
    return original


updates.MODIFIERS["AWS::ApplicationAutoScaling::ScalableTarget"] = _modify_target
updates.MODIFIERS["AWS::ApplicationAutoScaling::ScalingPolicy"] = _modify_policy


# --- the load balancer attributes a request-count label is made of --------------------------------

def _last_part(arn: str, kind: str) -> str:
    """app/<name>/<id> of a load balancer ARN, targetgroup/<name>/<id> of a target group's."""
    return arn[arn.index(f":{kind}/") + 1:] if kind == "targetgroup" else arn.split(":loadbalancer/", 1)[1]


_balancer_attribute = elbv2.FakeLoadBalancer.get_cfn_attribute


def _load_balancer_attribute(self, attribute_name: str) -> Any:
    if attribute_name == "LoadBalancerFullName":
        return _last_part(self.arn, "loadbalancer")
    return _balancer_attribute(self, attribute_name)


elbv2.FakeLoadBalancer.get_cfn_attribute = _load_balancer_attribute

_group_has = elbv2.FakeTargetGroup.has_cfn_attr
_group_attribute = getattr(elbv2.FakeTargetGroup, "get_cfn_attribute", None)


def _target_group_attribute(self, attribute_name: str) -> Any:
    if attribute_name == "TargetGroupFullName":
        return _last_part(self.arn, "targetgroup")
    if _group_attribute is None:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()
    return _group_attribute(self, attribute_name)


elbv2.FakeTargetGroup.has_cfn_attr = classmethod(
    lambda cls, attribute: attribute == "TargetGroupFullName" or _group_has.__func__(cls, attribute))
elbv2.FakeTargetGroup.get_cfn_attribute = _target_group_attribute
