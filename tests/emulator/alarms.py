"""CloudWatch alarms, SNS topic policies and subscriptions in CloudFormation, which stock moto 5.2.5 skips,
and the load balancer attributes that name an alarm's dimensions.

Each type is made through the backend the service's own API uses (PutMetricAlarm, SetTopicAttributes,
Subscribe), so describe-alarms, get-topic-attributes and list-subscriptions see it, and deleted again;
an Auto Scaling group's MetricsCollection is enabled as EnableMetricsCollection would.
A load balancer's or target group's full name is what CloudWatch calls it: the end of its ARN after
`loadbalancer/` (app/<name>/<id>, net/<name>/<id>) or after the last colon (targetgroup/<name>/<id>):
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
"""
from __future__ import annotations

import json
from typing import Any

from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.autoscaling import models as autoscaling
from moto.elbv2 import models as elbv2
from moto.sns.models import sns_backends

from .fixes import FIXES, replace_classmethod
from .resources import Resource


def _queries(metrics: list[dict] | None) -> list[MetricDataQuery] | None:
    if not metrics:
        return None
    queries = []
    for query in metrics:
        stat = None
        if "MetricStat" in query:
            given = query["MetricStat"]
            metric = Metric(given["Metric"]["MetricName"], given["Metric"]["Namespace"],
                            [Dimension(d["Name"], d["Value"]) for d in given["Metric"].get("Dimensions", [])])
            stat = MetricStat(metric, str(given["Period"]), given["Stat"], given.get("Unit"))
        queries.append(MetricDataQuery(query["Id"], query.get("Label"), query.get("Period"),
                                       str(query.get("ReturnData", True)).lower(), query.get("Expression"), stat))
    return queries


class MetricAlarm(Resource, CloudFormationModel):
    """A metric alarm as PutMetricAlarm makes it; Ref answers its name."""

    attributes = ("Arn",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        self = cls(account_id, region_name)
        name = props.get("AlarmName") or resource_name
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name, namespace=props.get("Namespace"), metric_name=props.get("MetricName"),
            metric_data_queries=_queries(props.get("Metrics")),
            comparison_operator=props["ComparisonOperator"], evaluation_periods=int(props["EvaluationPeriods"]),
            datapoints_to_alarm=int(props["DatapointsToAlarm"]) if "DatapointsToAlarm" in props else None,
            period=int(props["Period"]) if "Period" in props else None, threshold=float(props["Threshold"]),
            statistic=props.get("Statistic"), extended_statistic=props.get("ExtendedStatistic"),
            description=props.get("AlarmDescription", ""), dimensions=props.get("Dimensions", []),
            alarm_actions=props.get("AlarmActions", []), ok_actions=props.get("OKActions"),
            insufficient_data_actions=props.get("InsufficientDataActions"), unit=props.get("Unit"),
            actions_enabled=props.get("ActionsEnabled", True), treat_missing_data=props.get("TreatMissingData"),
            threshold_metric_id=props.get("ThresholdMetricId"))
        self.id, self.arn = name, alarm.alarm_arn
        return self

    def remove(self) -> None:
        cloudwatch_backends[self.account_id][self.region_name].delete_alarms([self.id])


class TopicPolicy(Resource, CloudFormationModel):
    """The topics' access policy; deleting it gives each topic SNS's default policy back."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::TopicPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        self = cls(account_id, region_name)
        self.topics = list(props["Topics"])
        backend = sns_backends[account_id][region_name]
        for arn in self.topics:
            # the attribute's name as SetTopicAttributes passes it to the backend
            backend.set_topic_attribute(arn, "policy", json.dumps(props["PolicyDocument"]))
        self.id = f"{resource_name}-{'-'.join(arn.rsplit(':', 1)[-1] for arn in self.topics)}"
        return self

    def remove(self) -> None:
        backend = sns_backends[self.account_id][self.region_name]
        for arn in self.topics:
            topic = backend.topics.get(arn)
            if topic is not None:
                topic._policy_json = topic._create_default_topic_policy(self.region_name, self.account_id,
                                                                        topic.name)


class TopicSubscription(Resource, CloudFormationModel):
    """A subscription as Subscribe makes it (an email one stays pending confirmation); Ref answers its ARN."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        self = cls(account_id, region_name)
        subscription = sns_backends[account_id][region_name].subscribe(props["TopicArn"], props["Endpoint"],
                                                                       props["Protocol"])
        self.id = subscription.arn
        return self

    def remove(self) -> None:
        sns_backends[self.account_id][self.region_name].unsubscribe(self.id)


def _full_name(arn: str, kind: str) -> str:
    return arn.split(f":{kind}/", 1)[1] if kind == "loadbalancer" else arn.rsplit(":", 1)[1]


_balancer_attribute = elbv2.FakeLoadBalancer.get_cfn_attribute


def _load_balancer_attribute(self, attribute_name: str) -> Any:
    if attribute_name == "LoadBalancerFullName":
        return _full_name(self.arn, "loadbalancer")
    return _balancer_attribute(self, attribute_name)


elbv2.FakeLoadBalancer.get_cfn_attribute = _load_balancer_attribute
FIXES.append("FakeLoadBalancer.get_cfn_attribute (LoadBalancerFullName)")

_group_has = elbv2.FakeTargetGroup.has_cfn_attr


def _target_group_attribute(self, attribute_name: str) -> Any:
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    if attribute_name == "TargetGroupFullName":
        return _full_name(self.arn, "targetgroup")
    raise UnformattedGetAttTemplateException()


elbv2.FakeTargetGroup.get_cfn_attribute = _target_group_attribute
elbv2.FakeTargetGroup.has_cfn_attr = classmethod(
    lambda cls, attr: attr == "TargetGroupFullName" or _group_has.__func__(cls, attr))
FIXES.append("FakeTargetGroup.get_cfn_attribute (TargetGroupFullName)")


# An Auto Scaling group's MetricsCollection, as EnableMetricsCollection sets it (moto's CloudFormation
# model leaves it out), so describe-auto-scaling-groups shows EnabledMetrics:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-as-metricscollection.html
@replace_classmethod(autoscaling.FakeAutoScalingGroup, "create_from_cloudformation_json")
def _group_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    group = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    collected = cloudformation_json["Properties"].get("MetricsCollection") or []
    group.enable_metrics_collection([metric for each in collected for metric in each.get("Metrics", [])])
    return group
