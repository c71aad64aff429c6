"""DKS with an alarm address, deployed on the emulator: the alarms exist with dimensions that name the
deployed load balancer, target groups, cluster, services and Auto Scaling group; the dashboard exists;
the public services' deployments name their alarms; the email is subscribed, pending confirmation;
the delete leaves nothing behind.

What the emulator cannot show: an alarm stopping a rollout. Its scheduler finishes a deployment within
the call that starts it (tests/emulator/scheduler.py), so no alarm can change state midway. In AWS, ECS
watches the alarms from the moment a task of the new deployment runs until the bake time after the
old tasks are gone; an alarm in ALARM then sets the deployment FAILED and, with Rollback, starts a new
deployment of the last completed task definition
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html). What is
shown here is the half this project controls: each public service's deployment configuration names
existing alarms with Enable and Rollback on.
"""
from __future__ import annotations

import inventory
import stacks
import test_emulated_deploy as emulated

EMAIL = "ops@example.com"


def _suffix(arn: str, marker: str) -> str:
    return arn.split(marker, 1)[1]


def test_alarms_watch_the_deployed_resources_and_the_deployments_name_them(aws):
    before = inventory.take(aws)
    d = emulated.deploy(aws, {"AlarmEmail": EMAIL})
    emulated.CHECKS["AWS::SNS::Subscription"](d, d.of_type("AWS::SNS::Subscription"))
    topic = d.one("alarms.yaml", "AlarmTopic").physical_id
    (subscription,) = aws.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert subscription["Endpoint"] == EMAIL

    cloudwatch = aws.client("cloudwatch")
    env = d.environment
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNamePrefix=f"{env}-")["MetricAlarms"]}
    assert len(alarms) == len(d.of_type("AWS::CloudWatch::Alarm")) == 15

    elbv2 = aws.client("elbv2")
    balancer = d.one("loadbalancer.yaml", "LoadBalancer").physical_id
    balancer_name = _suffix(balancer, ":loadbalancer/")
    assert balancer_name.startswith(f"app/{env}-alb/")
    for svc in ("dks-api", "dks-ui"):
        (group,) = elbv2.describe_target_groups(Names=[f"{env}-{svc}"])["TargetGroups"]
        group_name = group["TargetGroupArn"].rsplit(":", 1)[1]
        for what in ("target-5xx", "unhealthy"):
            dims = {x["Name"]: x["Value"] for x in alarms[f"{env}-{svc}-{what}"]["Dimensions"]}
            assert dims == {"LoadBalancer": balancer_name, "TargetGroup": group_name}, what
    assert {x["Name"]: x["Value"] for x in alarms[f"{env}-alb-5xx"]["Dimensions"]} == {"LoadBalancer": balancer_name}

    cluster = d.output("main.yaml", "ClusterName")
    ecs = aws.client("ecs")
    described = {s["serviceName"]: s for s in ecs.describe_services(
        cluster=cluster, services=["dks-db", "dks-api", "dks-ui"])["services"]}
    assert set(described) == {"dks-db", "dks-api", "dks-ui"}
    for svc in described:
        for what in ("cpu", "memory"):
            dims = {x["Name"]: x["Value"] for x in alarms[f"{env}-{svc}-{what}"]["Dimensions"]}
            assert dims == {"ClusterName": cluster, "ServiceName": svc}
        queries = {q["Id"]: q for q in alarms[f"{env}-{svc}-tasks"]["Metrics"]}
        assert queries["missing"]["Expression"] == "desired - running"
        for query in ("running", "desired"):
            dims = {x["Name"]: x["Value"] for x in queries[query]["MetricStat"]["Metric"]["Dimensions"]}
            assert dims == {"ClusterName": cluster, "ServiceName": svc}

    (group,) = aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[d.one("cluster.yaml", "HostGroup").physical_id])["AutoScalingGroups"]
    hosts = {q["Id"]: q for q in alarms[f"{env}-hosts-at-max"]["Metrics"]}
    assert {x["Value"] for q in ("hosts", "most") for x in hosts[q]["MetricStat"]["Metric"]["Dimensions"]} == {
        group["AutoScalingGroupName"]}
    assert {m["Metric"] for m in group.get("EnabledMetrics", [])} == {"GroupInServiceInstances", "GroupMaxSize"}

    for svc, named in (("dks-api", True), ("dks-ui", True), ("dks-db", False)):
        configuration = described[svc]["deploymentConfiguration"]
        assert configuration["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        if named:
            assert configuration["alarms"] == {"alarmNames": [f"{env}-{svc}-target-5xx", f"{env}-{svc}-unhealthy"],
                                               "enable": True, "rollback": True}
            assert all(name in alarms for name in configuration["alarms"]["alarmNames"])
        else:
            assert "alarms" not in configuration

    dashboard = cloudwatch.get_dashboard(DashboardName=env)
    assert balancer_name in dashboard["DashboardBody"] and cluster in dashboard["DashboardBody"]

    stacks.delete(aws, emulated.ROOT)
    stacks.delete(aws, emulated.REGISTRY)
    stacks.empty_bucket(aws, emulated.BUCKET)
    assert stacks.drop_retained(aws, before) == stacks.KEPT
    assert inventory.difference(before, inventory.take(aws)) == {}
