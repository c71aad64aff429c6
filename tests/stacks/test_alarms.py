"""Alarms (alarms.yaml): which alarm watches what, with dimensions that name the real resources; the
services' deployment alarms name alarms that exist; the topic and the key admit only this deployment's
alarms; no subscription without an address; the config's checks; what `make plan` charges for them.
"""
from __future__ import annotations

import dataclasses
import json

import pytest

from helpers import ROOT, app_from, dks_data, resources, templates
from templates_src import plan
from templates_src.app import config, loading
from templates_src.stacks import alarms

ALARM = "AWS::CloudWatch::Alarm"


def by_name(template: dict) -> dict[str, dict]:
    """The stack's alarms by name, with ${EnvironmentName}- taken off."""
    found = {}
    for alarm in resources(template, ALARM).values():
        name = alarm["Properties"]["AlarmName"]["Fn::Sub"]
        assert name.startswith("${EnvironmentName}-")
        found[name.removeprefix("${EnvironmentName}-")] = alarm["Properties"]
    return found


def dimensions(props: dict) -> dict:
    return {d["Name"]: d["Value"] for d in props["Dimensions"]}


def test_dks_alarms_are_per_service_per_public_service_and_per_group(dks_templates):
    assert set(by_name(dks_templates["alarms.yaml"])) == {
        "dks-api-target-5xx", "dks-api-unhealthy", "dks-ui-target-5xx", "dks-ui-unhealthy", "alb-5xx",
        *(f"{svc}-{what}" for svc in ("dks-db", "dks-api", "dks-ui") for what in ("tasks", "cpu", "memory")),
        "hosts-at-max"}


def test_target_group_alarms_name_the_load_balancer_and_the_services_own_target_group(dks_templates):
    alarmed = by_name(dks_templates["alarms.yaml"])
    balancer = dks_templates["loadbalancer.yaml"]
    outputs = balancer["Outputs"]
    assert outputs["LoadBalancerFullName"]["Value"] == {"Fn::GetAtt": ["LoadBalancer", "LoadBalancerFullName"]}
    full_names = outputs["TargetGroupFullNames"]["Value"]["Fn::Join"][1]
    order = ["dks-api", "dks-ui"]  # the ListLink's members, in the parameter's description
    assert "(in this order: dks-api, dks-ui)" in dks_templates["alarms.yaml"]["Parameters"]["TargetGroupFullNames"][
        "Description"]
    for index, svc in enumerate(order):
        assert full_names[index] == {"Fn::GetAtt": [f"{config.logical_id(svc)}TargetGroup", "TargetGroupFullName"]}
        for what, metric in (("target-5xx", "HTTPCode_Target_5XX_Count"), ("unhealthy", "UnHealthyHostCount")):
            props = alarmed[f"{svc}-{what}"]
            assert (props["Namespace"], props["MetricName"]) == ("AWS/ApplicationELB", metric)
            assert dimensions(props) == {"LoadBalancer": {"Ref": "LoadBalancerFullName"},
                                         "TargetGroup": {"Fn::Select": [index, {"Ref": "TargetGroupFullNames"}]}}
    assert dimensions(alarmed["alb-5xx"]) == {"LoadBalancer": {"Ref": "LoadBalancerFullName"}}
    assert alarmed["alb-5xx"]["MetricName"] == "HTTPCode_ELB_5XX_Count"


def test_service_alarms_name_the_cluster_and_the_ecs_service_names(dks_templates):
    alarmed = by_name(dks_templates["alarms.yaml"])
    services = {r["Properties"]["ServiceName"] for r in resources(dks_templates["services.yaml"],
                                                                  "AWS::ECS::Service").values()}
    assert services == {"dks-db", "dks-api", "dks-ui"}
    assert dks_templates["cluster.yaml"]["Outputs"]["ClusterName"]["Value"] == {"Ref": "Cluster"}
    for svc in services:
        for what, metric in (("cpu", "CPUUtilization"), ("memory", "MemoryUtilization")):
            props = alarmed[f"{svc}-{what}"]
            assert (props["Namespace"], props["MetricName"], props["Threshold"]) == ("AWS/ECS", metric, 80)
            assert dimensions(props) == {"ClusterName": {"Ref": "ClusterName"}, "ServiceName": svc}
        queries = {q["Id"]: q for q in alarmed[f"{svc}-tasks"]["Metrics"]}
        assert queries["missing"] == {"Id": "missing", "Expression": "desired - running", "Label": "tasks missing",
                                      "ReturnData": True}
        for query, metric in (("running", "RunningTaskCount"), ("desired", "DesiredTaskCount")):
            stat = queries[query]["MetricStat"]["Metric"]
            assert (stat["Namespace"], stat["MetricName"]) == ("ECS/ContainerInsights", metric)
            assert dimensions(stat) == {"ClusterName": {"Ref": "ClusterName"}, "ServiceName": svc}
            assert queries[query]["ReturnData"] is False  # only the expression is alarmed on


def test_hosts_alarm_compares_the_groups_collected_metrics(dks_templates):
    (group,) = resources(dks_templates["cluster.yaml"], "AWS::AutoScaling::AutoScalingGroup").values()
    assert group["Properties"]["MetricsCollection"] == [
        {"Granularity": "1Minute", "Metrics": ["GroupInServiceInstances", "GroupMaxSize"]}]
    assert dks_templates["cluster.yaml"]["Outputs"]["HostGroupName"]["Value"] == {"Ref": "HostGroup"}
    props = by_name(dks_templates["alarms.yaml"])["hosts-at-max"]
    metrics = {q["MetricStat"]["Metric"]["MetricName"]: q["MetricStat"]["Metric"] for q in props["Metrics"]
               if "MetricStat" in q}
    assert set(metrics) == {"GroupInServiceInstances", "GroupMaxSize"}
    assert all(dimensions(m) == {"AutoScalingGroupName": {"Ref": "HostGroupName"}} for m in metrics.values())
    assert (props["ComparisonOperator"], props["Threshold"]) == ("LessThanOrEqualToThreshold", 0)


def test_every_alarm_notifies_the_topic_and_chooses_its_missing_data(dks_templates):
    for name, props in by_name(dks_templates["alarms.yaml"]).items():
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["TreatMissingData"] == "notBreaching", name


def test_unhealthy_alarms_wait_out_the_services_grace_period(dks, dks_templates):
    alarmed = by_name(dks_templates["alarms.yaml"])
    api = dks.service("dks-api")
    assert api.health_check.grace_period == 180
    # 180 s of grace, then two more minutes: a Spring Boot start that ECS lets finish fails no deployment.
    assert alarmed["dks-api-unhealthy"]["EvaluationPeriods"] == alarms.unhealthy_minutes(api) == 5


def test_public_services_deployments_roll_back_on_their_own_alarms_which_exist_first(dks_templates):
    made = dks_templates["alarms.yaml"]
    outputs = {key: [value["Ref"] for value in out["Value"]["Fn::Join"][1]] for key, out in made["Outputs"].items()}
    assert outputs == {"TargetErrorAlarmNames": ["DksApiTargetErrorsAlarm", "DksUiTargetErrorsAlarm"],
                       "UnhealthyTargetAlarmNames": ["DksApiUnhealthyAlarm", "DksUiUnhealthyAlarm"]}
    for ids in outputs.values():
        assert all(made["Resources"][i]["Type"] == ALARM for i in ids)
    services = resources(dks_templates["services.yaml"], "AWS::ECS::Service")
    for logical, index in (("DksApiService", 0), ("DksUiService", 1)):
        deployment = services[logical]["Properties"]["DeploymentConfiguration"]
        assert deployment["Alarms"] == {"AlarmNames": [
            {"Fn::Select": [index, {"Ref": "TargetErrorAlarmNames"}]},
            {"Fn::Select": [index, {"Ref": "UnhealthyTargetAlarmNames"}]}], "Enable": True, "Rollback": True}
        assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    # The database has no load balancer: nothing of its own tells a bad rollout from a normal one.
    assert "Alarms" not in services["DksDbService"]["Properties"]["DeploymentConfiguration"]
    # The root passes the names from the alarms stack, so CloudFormation makes the alarms first.
    root = dks_templates["main.yaml"]["Resources"]["ServicesStack"]["Properties"]["Parameters"]
    assert root["TargetErrorAlarmNames"] == {"Fn::GetAtt": ["AlarmsStack", "Outputs.TargetErrorAlarmNames"]}


def test_email_subscription_only_with_an_address(dks_templates):
    made = dks_templates["alarms.yaml"]
    (subscription,) = resources(made, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == alarms.EMAIL
    assert made["Conditions"][alarms.EMAIL] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    parameter = dks_templates["main.yaml"]["Parameters"]["AlarmEmail"]
    assert parameter["Default"] == ""  # DKS names no address: each deployment gives its own
    with_email = templates(dataclasses.replace(loading.load(config.DEFAULT_CONFIG),
                                               alarms=config.Alarms(email="ops@example.com")))
    assert with_email["main.yaml"]["Parameters"]["AlarmEmail"]["Default"] == "ops@example.com"


def test_topic_is_encrypted_and_only_this_deployments_alarms_publish(dks_templates):
    made = dks_templates["alarms.yaml"]
    (topic,) = resources(made, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "KmsKeyArn"}
    (policy,) = resources(made, "AWS::SNS::TopicPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    scope = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
             "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:"
                                                      "${AWS::AccountId}:alarm:${EnvironmentName}-*"}}}
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == ["sns:Publish"] and statement["Condition"] == scope
    key = resources(dks_templates["secrets.yaml"], "AWS::KMS::Key")["Key"]["Properties"]["KeyPolicy"]
    (granted,) = [s for s in key["Statement"] if s.get("Sid") == "CloudWatchPublishesOwnAlarms"]
    assert granted["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and granted["Condition"] == scope


def test_without_alarms_nothing_changes():
    app = dataclasses.replace(loading.load(config.DEFAULT_CONFIG), alarms=None)
    built = templates(app)
    assert "alarms.yaml" not in built and "AlarmEmail" not in built["main.yaml"]["Parameters"]
    assert all("Alarms" not in s["Properties"]["DeploymentConfiguration"]
               for s in resources(built["services.yaml"], "AWS::ECS::Service").values())
    (group,) = resources(built["cluster.yaml"], "AWS::AutoScaling::AutoScalingGroup").values()
    assert "MetricsCollection" not in group["Properties"]
    key = resources(built["secrets.yaml"], "AWS::KMS::Key")["Key"]["Properties"]["KeyPolicy"]
    assert "CloudWatchPublishesOwnAlarms" not in [s.get("Sid") for s in key["Statement"]]
    assert "cloudwatch_alarm" not in {line.item for line in plan.make(app).public.lines}


def test_a_network_load_balancer_port_gets_an_unhealthy_alarm():
    data = dks_data()
    data["services"][2]["published"] = [{"port": 7777}]
    built = templates(app_from(data))
    props = by_name(built["alarms.yaml"])["dks-ui-7777-unhealthy"]
    assert (props["Namespace"], props["MetricName"]) == ("AWS/NetworkELB", "UnHealthyHostCount")
    assert dimensions(props) == {"LoadBalancer": {"Ref": "NetworkLoadBalancerFullName"},
                                 "TargetGroup": {"Fn::Select": [0, {"Ref": "NetworkTargetGroupFullNames"}]}}
    assert built["nlb.yaml"]["Outputs"]["NetworkTargetGroupFullNames"]["Value"]["Fn::Join"][1] == [
        {"Fn::GetAtt": ["DksUiPort7777TargetGroup", "TargetGroupFullName"]}]


def test_dashboard_shows_services_load_balancer_and_hosts(dks_templates):
    (dashboard,) = resources(dks_templates["alarms.yaml"], "AWS::CloudWatch::Dashboard").values()
    body, variables = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert variables == {"TargetGroupDksApi": {"Fn::Select": [0, {"Ref": "TargetGroupFullNames"}]},
                         "TargetGroupDksUi": {"Fn::Select": [1, {"Ref": "TargetGroupFullNames"}]}}
    widgets = {w["properties"]["title"]: w["properties"] for w in json.loads(body)["widgets"]}
    assert set(widgets) == {"CPU utilization (%)", "Memory utilization (%)", "Running tasks", "Hosts", "Requests",
                            "5xx answers", "Response time (s, p90)"}
    assert {w["region"] for w in widgets.values()} == {"${AWS::Region}"}
    assert [m[5] for m in widgets["Running tasks"]["metrics"]] == ["dks-api", "dks-db", "dks-ui"]
    assert dashboard["Properties"]["DashboardName"] == {"Fn::Sub": "${EnvironmentName}"}


@pytest.mark.parametrize("alarms_data, field", [
    ({"email": "not an address"}, "alarms.email"),
    ({"email": "ops@localhost"}, "alarms.email"),
    ({"cpu_percent": 0}, "alarms.cpu_percent"),
    ({"memory_percent": 101}, "alarms.memory_percent"),
    ({"errors_per_minute": 0}, "alarms.errors_per_minute"),
    ({"emial": "ops@example.com"}, "alarms.emial"),
])
def test_config_refuses_bad_alarms(alarms_data, field):
    data = dks_data()
    data["alarms"] = alarms_data
    with pytest.raises(config.ConfigError) as caught:
        app_from(data)
    assert field in [path for path, _ in caught.value.problems]


def test_the_plan_charges_each_alarm_metric_and_the_dashboard(dks, dks_templates):
    made = resources(dks_templates["alarms.yaml"], ALARM).values()
    metrics = sum(len([q for q in a["Properties"].get("Metrics", []) if "MetricStat" in q]) or 1 for a in made)
    assert (len(made), metrics) == alarms.alarm_metrics(dks) == (15, 19)
    public = plan.make(dks).public
    alarm_line, dashboard_line = public.line("cloudwatch_alarm"), public.line("cloudwatch_dashboard")
    prices = plan.load_prices()["items"]
    assert alarm_line.quantity == 19 and alarm_line.price == prices["cloudwatch_alarm"]["prices"]["us-east-1"]
    assert alarm_line.monthly == round(19 * alarm_line.price, 2)
    dashboard_price = prices["cloudwatch_dashboard"]["prices"]["us-east-1"]
    assert (dashboard_line.quantity, dashboard_line.monthly) == (1, dashboard_price)
    shown = plan.text(plan.make(dks))
    assert "15 alarms reading 19 metrics" in shown and "SNS mails the first 1,000 a month free" in shown


def test_the_readme_quotes_the_alarm_figures(dks):
    readme = (ROOT / "README.md").read_text()
    count, metrics = alarms.alarm_metrics(dks)
    line = plan.make(dks).public.line("cloudwatch_alarm")
    assert f"{metrics} alarm metrics for DKS at ${line.price:.2f} each (${line.monthly:.2f} a month" in readme
    dashboard = plan.make(dks).public.line("cloudwatch_dashboard")
    assert f"the dashboard at ${dashboard.monthly:.2f}" in readme
    assert f"(at least 3; {alarms.unhealthy_minutes(dks.service('dks-api'))} for the API)" in readme
    assert f"for {alarms.HOSTS_AT_MAX_MINUTES} minutes: managed scaling" in readme
    defaults = config.Alarms()
    assert f"`errors_per_minute` ({defaults.errors_per_minute})" in readme
    assert f"`cpu_percent` / `memory_percent` ({defaults.cpu_percent}," in readme


def test_a_bare_alarms_key_turns_them_on_with_the_defaults():
    data = dks_data()
    data["alarms"] = None  # `alarms:` with nothing after it
    assert app_from(data).alarms == config.Alarms()
    del data["alarms"]
    assert app_from(data).alarms is None


def test_an_app_without_load_balancers_alarms_on_its_services_and_hosts_only():
    data = dks_data()
    for svc in data["services"]:
        svc.pop("public", None)
        svc.pop("url_output", None)
        svc.get("environment", {}).pop("KNOWLEDGE_SHARE_API", None)
    built = templates(app_from(data))
    assert "loadbalancer.yaml" not in built
    assert set(by_name(built["alarms.yaml"])) == {
        *(f"{svc}-{what}" for svc in ("dks-db", "dks-api", "dks-ui") for what in ("tasks", "cpu", "memory")),
        "hosts-at-max"}
    assert "Outputs" not in built["alarms.yaml"] or not built["alarms.yaml"]["Outputs"]
    assert all("Alarms" not in s["Properties"]["DeploymentConfiguration"]
               for s in resources(built["services.yaml"], "AWS::ECS::Service").values())
