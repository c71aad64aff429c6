"""alarms.yaml: CloudWatch alarms on the app, the SNS topic that mails them, and one dashboard.

What fires (each alarm named `${EnvironmentName}-<what>`, names.alarm):
- per public service: its target group's 5xx answers (`<svc>-target-5xx`) and unhealthy targets
  (`<svc>-unhealthy`); these two are the service's deployment alarms: ECS fails a deployment during which
  either goes into ALARM and rolls it back (services.py);
- per load balancer: the 5xx it answers itself (`alb-5xx`: no healthy target, a timeout), and per Network
  Load Balancer port its unhealthy targets (`<svc>-<port>-unhealthy`);
- per service: fewer tasks running than desired (`<svc>-tasks`), CPU and memory high (`<svc>-cpu`,
  `<svc>-memory`);
- the hosts' Auto Scaling group at its maximum (`hosts-at-max`): managed scaling cannot add a host for a
  task that waits for one.

Every alarm notifies the topic when it goes into ALARM and back to OK. The topic is encrypted with the app's
key, whose policy lets CloudWatch use it for this deployment's alarms (secrets.py), and its policy lets
CloudWatch publish for them only. An address is subscribed when AlarmEmail is given (the config's
alarms.email by default): SNS mails it a confirmation link, and nothing is delivered until someone follows it.

The stack comes before the services stacks (they consume the deployment alarms' names), so an alarm's
dimensions name what the services will be: the cluster, the ECS service names (fixed: svc.name) and the
target groups, all known before any service exists.
"""
from __future__ import annotations

import json
import math

from awacs import sns as sns_actions
from awacs.aws import Allow, ArnLike, Condition, PolicyDocument, Principal, Statement, StringEquals
from troposphere import Equals, Not, Ref, Sub
from troposphere.cloudwatch import Alarm, Dashboard, MetricDataQuery, MetricDimension, MetricStat
from troposphere.cloudwatch import Metric as CwMetric
from troposphere.sns import SubscriptionResource, Topic, TopicPolicy

from templates_src.app import names
from templates_src.stacks import links
from templates_src.app.config import App, Published, Service, logical_id
from templates_src.stacks.wiring import Stack

EMAIL = "AlarmEmailGiven"  # condition: AlarmEmail is not empty
MINUTE = 60
# CloudWatch's recommendation for ECS CPU and memory: 5 one-minute datapoints out of 5
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Best_Practice_Recommended_Alarms_AWS_Services.html).
SUSTAINED = 5
# The hosts may sit at MaxSize for the length of a deployment (the rolling surge): only longer is a problem.
HOSTS_AT_MAX_MINUTES = 15


def build(app: App) -> Stack:
    stack = Stack("alarms", app, f"{app.name}: CloudWatch alarms, their SNS topic and a dashboard")
    stack.use(links.ENVIRONMENT_NAME)
    topic = _topic(stack)
    notify = {"AlarmActions": [Ref(topic)], "OKActions": [Ref(topic)]}
    errors, unhealthy = {}, {}
    if app.public_services:
        for svc in app.public_services:
            errors[svc.name] = _target_errors(stack, svc, notify)
            unhealthy[svc.name] = _unhealthy_targets(stack, svc, notify)
        _balancer_errors(stack, notify)
        for link in links.grouped_all(links.TARGET_ERROR_ALARMS, app):
            stack.publish_members(link, {name: Ref(errors[name]) for name in link.members(app)})
        for link in links.grouped_all(links.UNHEALTHY_ALARMS, app):
            stack.publish_members(link, {name: Ref(unhealthy[name]) for name in link.members(app)})
    for svc, pub in app.nlb_listeners:
        _nlb_unhealthy(stack, svc, pub, notify)
    for svc in app.services:
        _tasks_missing(stack, svc, notify)
        _utilization(stack, svc, "CPUUtilization", "cpu", app.alarms.cpu_percent, notify)
        _utilization(stack, svc, "MemoryUtilization", "memory", app.alarms.memory_percent, notify)
    _hosts_at_max(stack, notify)
    _dashboard(stack)
    return stack


def alarm_metrics(app: App) -> tuple[int, int]:
    """The alarms the stack makes and the metrics they read, which CloudWatch bills each
    (https://aws.amazon.com/cloudwatch/pricing/: a metric-math alarm costs one alarm metric per metric)."""
    made = [r for r in build(app).template.resources.values() if isinstance(r, Alarm)]
    metrics = [sum(1 for q in alarm.properties["Metrics"] if "MetricStat" in q.properties)
               if "Metrics" in alarm.properties else 1 for alarm in made]
    return len(made), sum(metrics)


def alarm_name(what: str) -> Sub:
    return names.alarm(what).sub()


def _topic(stack: Stack) -> Topic:
    t = stack.template
    t.add_condition(EMAIL, Not(Equals(stack.use(links.ALARM_EMAIL), "")))
    topic = stack.add(Topic("AlarmTopic", DisplayName=Sub(f"${{{links.ENVIRONMENT_NAME.name}}} alarms"),
                            KmsMasterKeyId=stack.use(links.KEY_ARN)))
    # Only CloudWatch, only for this account's alarms of this deployment (the confused-deputy guard):
    # https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
    stack.add(TopicPolicy("AlarmTopicPolicy", Topics=[Ref(topic)], PolicyDocument=PolicyDocument(
        Version="2012-10-17", Statement=[Statement(
            Sid="CloudWatchPublishesOwnAlarms", Effect=Allow,
            Principal=Principal("Service", "cloudwatch.amazonaws.com"),
            Action=[sns_actions.Publish], Resource=[Ref(topic)],
            Condition=Condition([StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
                                 ArnLike("aws:SourceArn", Sub(f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:"
                                                              f"${{AWS::AccountId}}:alarm:{names.ALARM_PREFIX}*"))]),
        )])))
    # An email subscription stays "pending confirmation" until the address follows SNS's link:
    # https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html
    stack.add(SubscriptionResource("AlarmEmailSubscription", Condition=EMAIL, TopicArn=Ref(topic), Protocol="email",
                           Endpoint=Ref(links.ALARM_EMAIL.name)))
    return topic


def _dimensions(**pairs) -> list[MetricDimension]:
    return [MetricDimension(Name=key, Value=value) for key, value in pairs.items()]


def _service(stack: Stack, svc: Service) -> list[MetricDimension]:
    # ECS and Container Insights name a service's metrics by ClusterName and ServiceName:
    # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html,
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Container-Insights-metrics-ECS.html
    return _dimensions(ClusterName=stack.use(links.CLUSTER_NAME), ServiceName=svc.name)


def _target_group(stack: Stack, svc: Service) -> list[MetricDimension]:
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
    return _dimensions(LoadBalancer=stack.use(links.LOAD_BALANCER_FULL_NAME),
                       TargetGroup=stack.member(links.TARGET_GROUP_FULL_NAMES, svc.name))


def _target_errors(stack: Stack, svc: Service, notify: dict) -> Alarm:
    limit = stack.app.alarms.errors_per_minute
    return stack.add(Alarm(
        f"{logical_id(svc.name)}TargetErrorsAlarm", AlarmName=alarm_name(f"{svc.name}-target-5xx"),
        AlarmDescription=f"{svc.name} answered more than {limit} 5xx a minute, 3 minutes out of 5",
        Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count", Dimensions=_target_group(stack, svc),
        Statistic="Sum", Period=MINUTE, EvaluationPeriods=5, DatapointsToAlarm=3, Threshold=limit,
        ComparisonOperator="GreaterThanThreshold",
        # The load balancer reports a count only for a minute that had one: no data is no error.
        TreatMissingData="notBreaching", **notify))


def unhealthy_minutes(svc: Service) -> int:
    """Minutes a target may stay unhealthy before the alarm fires: longer than the grace period ECS gives the
    service's new tasks to pass their health checks (the load balancer checks them and counts them unhealthy
    meanwhile), so a slow start fails no deployment that ECS itself would let finish."""
    return max(3, math.ceil(svc.health_check.grace_period / MINUTE) + 2)


def _unhealthy_targets(stack: Stack, svc: Service, notify: dict) -> Alarm:
    minutes = unhealthy_minutes(svc)
    return stack.add(Alarm(
        f"{logical_id(svc.name)}UnhealthyAlarm", AlarmName=alarm_name(f"{svc.name}-unhealthy"),
        AlarmDescription=f"{svc.name} had an unhealthy target for {minutes} minutes in a row",
        Namespace="AWS/ApplicationELB", MetricName="UnHealthyHostCount", Dimensions=_target_group(stack, svc),
        Statistic="Maximum", Period=MINUTE, EvaluationPeriods=minutes, Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        # Reported every minute while the group is in use; a gap says nothing about the targets.
        TreatMissingData="notBreaching", **notify))


def _balancer_errors(stack: Stack, notify: dict) -> Alarm:
    limit = stack.app.alarms.errors_per_minute
    return stack.add(Alarm(
        "LoadBalancerErrorsAlarm", AlarmName=alarm_name("alb-5xx"),
        AlarmDescription=f"The load balancer itself answered more than {limit} 5xx a minute (no healthy target, "
                         "a target timing out or closing), 3 minutes out of 5",
        Namespace="AWS/ApplicationELB", MetricName="HTTPCode_ELB_5XX_Count",
        Dimensions=_dimensions(LoadBalancer=stack.use(links.LOAD_BALANCER_FULL_NAME)),
        Statistic="Sum", Period=MINUTE, EvaluationPeriods=5, DatapointsToAlarm=3, Threshold=limit,
        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching", **notify))


def _nlb_unhealthy(stack: Stack, svc: Service, pub: Published, notify: dict) -> Alarm:
    minutes = unhealthy_minutes(svc)
    key = links.listener_key(svc, pub)
    # https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-cloudwatch-metrics.html
    return stack.add(Alarm(
        f"{logical_id(svc.name)}Port{pub.port}UnhealthyAlarm", AlarmName=alarm_name(f"{key}-unhealthy"),
        AlarmDescription=f"{svc.name} on {pub.port}/{pub.protocol} had an unhealthy target for {minutes} minutes",
        Namespace="AWS/NetworkELB", MetricName="UnHealthyHostCount",
        Dimensions=_dimensions(LoadBalancer=stack.use(links.NLB_FULL_NAME),
                               TargetGroup=stack.member(links.NLB_TARGET_GROUP_FULL_NAMES, key)),
        Statistic="Maximum", Period=MINUTE, EvaluationPeriods=minutes, Threshold=0,
        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching", **notify))


def _stat(query_id: str, namespace: str, metric: str, dimensions: list[MetricDimension], stat: str) -> MetricDataQuery:
    return MetricDataQuery(Id=query_id, ReturnData=False, MetricStat=MetricStat(
        Metric=CwMetric(Namespace=namespace, MetricName=metric, Dimensions=dimensions), Period=MINUTE, Stat=stat))


def _tasks_missing(stack: Stack, svc: Service, notify: dict) -> Alarm:
    """Desired minus running, from Container Insights (on for the cluster: cluster.py). A rollout stops and starts
    tasks, so the alarm waits out the service's grace period and then some, as the unhealthy alarm does."""
    minutes = unhealthy_minutes(svc) + 2
    dims = _service(stack, svc)
    return stack.add(Alarm(
        f"{logical_id(svc.name)}TasksAlarm", AlarmName=alarm_name(f"{svc.name}-tasks"),
        AlarmDescription=f"{svc.name} ran fewer tasks than desired for {minutes} minutes in a row",
        Metrics=[_stat("running", "ECS/ContainerInsights", "RunningTaskCount", dims, "Minimum"),
                 _stat("desired", "ECS/ContainerInsights", "DesiredTaskCount", dims, "Maximum"),
                 MetricDataQuery(Id="missing", Expression="desired - running", Label="tasks missing",
                                 ReturnData=True)],
        EvaluationPeriods=minutes, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        # A service with no task to run (ServicesRunning false) may report nothing: that is no task missing.
        TreatMissingData="notBreaching", **notify))


def _utilization(stack: Stack, svc: Service, metric: str, what: str, percent: int, notify: dict) -> Alarm:
    return stack.add(Alarm(
        f"{logical_id(svc.name)}{what.capitalize()}Alarm", AlarmName=alarm_name(f"{svc.name}-{what}"),
        AlarmDescription=f"{svc.name} used more than {percent} % of its {what} for {SUSTAINED} minutes",
        Namespace="AWS/ECS", MetricName=metric, Dimensions=_service(stack, svc),
        Statistic="Average", Period=MINUTE, EvaluationPeriods=SUSTAINED, DatapointsToAlarm=SUSTAINED,
        Threshold=percent, ComparisonOperator="GreaterThanThreshold",
        # No task, no datapoint: the tasks alarm speaks for a service that runs nothing.
        TreatMissingData="notBreaching", **notify))


def _hosts_at_max(stack: Stack, notify: dict) -> Alarm:
    dims = _dimensions(AutoScalingGroupName=stack.use(links.HOST_GROUP_NAME))
    # https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-metrics.html (collection: cluster.py)
    return stack.add(Alarm(
        "HostsAtMaxAlarm", AlarmName=alarm_name("hosts-at-max"),
        AlarmDescription=f"The hosts' Auto Scaling group ran at MaxSize for {HOSTS_AT_MAX_MINUTES} minutes: managed "
                         "scaling cannot add a host for a task that needs one",
        Metrics=[_stat("hosts", "AWS/AutoScaling", "GroupInServiceInstances", dims, "Maximum"),
                 _stat("most", "AWS/AutoScaling", "GroupMaxSize", dims, "Maximum"),
                 MetricDataQuery(Id="spare", Expression="most - hosts", Label="hosts below MaxSize", ReturnData=True)],
        EvaluationPeriods=HOSTS_AT_MAX_MINUTES, Threshold=0, ComparisonOperator="LessThanOrEqualToThreshold",
        # Group metrics come every minute once collected; a gap is no evidence of a full group.
        TreatMissingData="notBreaching", **notify))


# --- the dashboard --------------------------------------------------------------------------------


def _graph(title: str, metrics: list, x: int, y: int, stat: str = "Average") -> dict:
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": {"title": title, "region": "${AWS::Region}", "stat": stat, "period": MINUTE,
                           "view": "timeSeries", "metrics": metrics}}


def dashboard_body(app: App) -> tuple[str, dict[str, str]]:
    """The dashboard's JSON as a Fn::Sub string, and the variables it names beyond parameters and pseudo
    parameters (each public service's target group: `TargetGroup<Service>`). Dashboard body structure:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html"""
    cluster = f"${{{links.CLUSTER_NAME.name}}}"
    # By name, not config order: reordering the config changes no resource.
    services = sorted(app.services, key=lambda s: s.name)
    public = [svc for svc in services if svc.public]

    def per_service(namespace: str, metric: str) -> list:
        return [[namespace, metric, "ClusterName", cluster, "ServiceName", svc.name] for svc in services]

    widgets = [
        _graph("CPU utilization (%)", per_service("AWS/ECS", "CPUUtilization"), 0, 0),
        _graph("Memory utilization (%)", per_service("AWS/ECS", "MemoryUtilization"), 12, 0),
        _graph("Running tasks", per_service("ECS/ContainerInsights", "RunningTaskCount"), 0, 6, "Minimum"),
    ]
    group = f"${{{links.HOST_GROUP_NAME.name}}}"
    widgets.append(_graph("Hosts", [["AWS/AutoScaling", name, "AutoScalingGroupName", group]
                                    for name in ("GroupInServiceInstances", "GroupMaxSize")], 12, 6, "Maximum"))
    variables = {}
    if public:
        balancer = f"${{{links.LOAD_BALANCER_FULL_NAME.name}}}"
        variables = {svc.name: f"TargetGroup{logical_id(svc.name)}" for svc in public}

        def per_target(metric: str) -> list:
            return [["AWS/ApplicationELB", metric, "LoadBalancer", balancer, "TargetGroup", f"${{{variables[s.name]}}}",
                     {"label": s.name}] for s in public]

        widgets += [
            _graph("Requests", per_target("RequestCount"), 0, 12, "Sum"),
            _graph("5xx answers", per_target("HTTPCode_Target_5XX_Count")
                   + [["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", balancer,
                       {"label": "load balancer"}]], 12, 12, "Sum"),
            _graph("Response time (s, p90)", per_target("TargetResponseTime"), 0, 18, "p90"),
        ]
    return json.dumps({"widgets": widgets}, sort_keys=True), variables


def _dashboard(stack: Stack) -> Dashboard:
    body, variables = dashboard_body(stack.app)
    stack.use(links.CLUSTER_NAME)
    stack.use(links.HOST_GROUP_NAME)
    if stack.app.public_services:
        stack.use(links.LOAD_BALANCER_FULL_NAME)
    values = {name: stack.member(links.TARGET_GROUP_FULL_NAMES, service) for service, name in sorted(variables.items())}
    return stack.add(Dashboard("Dashboard", DashboardName=names.dashboard().sub(),
                               DashboardBody=Sub(body, **values) if values else Sub(body)))

