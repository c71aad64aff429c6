"""Service auto scaling: what the config refuses, what the templates make, what the fit check and the plan count.

The app scaled here is DKS with the API scaled on CPU and on requests per target and the UI on CPU only.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT, app_from, dks_data, resources, service, templates
from templates_src import plan
from templates_src.app import capacity, config, instance_types, loading
from test_config import write_config

API = {"min": 1, "max": 3, "cpu": 60, "requests_per_target": 500}
UI = {"min": 1, "max": 4, "cpu": 50}


def scaled_data() -> dict:
    data = dks_data()
    service(data, "dks-api")["scaling"] = dict(API)
    service(data, "dks-ui")["scaling"] = dict(UI)
    return data


def scaled() -> config.App:
    return app_from(scaled_data())


def build(data: dict, tmp_path) -> subprocess.CompletedProcess:
    path = write_config(data, tmp_path / "config")
    return subprocess.run([sys.executable, "-m", "templates_src", "build", "--config", str(path), "--out",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


# --- the config ------------------------------------------------------------------------------------


def _with(name: str, **fields):
    def change(data: dict) -> None:
        svc = service(data, name)
        for key, value in fields.items():
            svc[key] = value
    return change


def _scaling(name: str, **fields):
    def change(data: dict) -> None:
        service(data, name).setdefault("scaling", {"min": 1, "max": 2, "cpu": 50}).update(fields)
    return change


@pytest.mark.parametrize("change, field, words", [
    (_scaling("dks-db"), "services[0] (dks-db).scaling", "a service with data cannot scale"),
    (_scaling("dks-api", min=0), "services[1] (dks-api).scaling.min", "between 1 and 1000"),
    (_scaling("dks-api", max=1001), "services[1] (dks-api).scaling.max", "between 1 and 1000"),
    (_scaling("dks-api", min=3, max=2), "services[1] (dks-api).scaling.max", "2 is below min 3"),
    (_scaling("dks-api", min=2, max=3), "services[1] (dks-api).desired_count", "1 is outside scaling.min..max (2..3)"),
    (_scaling("dks-api", cpu=None), "services[1] (dks-api).scaling", "name at least one target"),
    (_scaling("dks-api", cpu=0), "services[1] (dks-api).scaling.cpu", "not a CPU percent from 1 to 100"),
    (_scaling("dks-api", cpu=101), "services[1] (dks-api).scaling.cpu", "not a CPU percent from 1 to 100"),
    (_scaling("dks-api", requests_per_target=0), "services[1] (dks-api).scaling.requests_per_target",
     "between 1 and 1,000,000"),
    (lambda data: (_scaling("dks-api", requests_per_target=100)(data), service(data, "dks-api").pop("public"),
                   service(data, "dks-api").pop("url_output"), service(data, "dks-ui")["environment"].clear()),
     "services[1] (dks-api).scaling.requests_per_target", "needs public"),
    (_scaling("dks-api", cpu="high"), "services[1] (dks-api).scaling.cpu", "expected an integer"),
    (_scaling("dks-api", target=50), "services[1] (dks-api).scaling.target", "unknown key"),
], ids=["data", "min", "max-bound", "max-below-min", "desired-outside", "no-target", "cpu-0", "cpu-101",
        "requests-0", "requests-not-public", "cpu-type", "unknown-key"])
def test_a_scaling_the_config_cannot_keep_exits_2_naming_the_field(tmp_path, change, field, words):
    data = dks_data()
    change(data)
    result = build(data, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    line = next((line for line in result.stderr.splitlines() if line.strip().startswith(field + ":")), None)
    assert line is not None and words in line, result.stderr
    assert not (tmp_path / "out").exists()


def test_the_data_refusal_says_why_two_tasks_cannot_share_it():
    data = dks_data()
    service(data, "dks-db")["scaling"] = {"min": 1, "max": 1, "cpu": 50}
    with pytest.raises(config.ConfigError) as refused:
        app_from(data)
    (reason,) = [r for path, r in refused.value.problems if path == "services[0].scaling"]
    assert "one directory for one task" in reason and "share it or race for it" in reason


# --- the templates ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict]:
    return templates(scaled())


def test_each_scaled_service_is_a_scalable_target_of_its_ecs_service_with_its_range(rendered):
    stack = rendered["services.yaml"]
    targets = resources(stack, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert set(targets) == {"DksApiScalableTarget", "DksUiScalableTarget"}
    for name, want in (("DksApi", API), ("DksUi", UI)):
        props = targets[f"{name}ScalableTarget"]["Properties"]
        assert props["ServiceNamespace"] == "ecs" and props["ScalableDimension"] == "ecs:service:DesiredCount"
        assert props["ResourceId"] == {"Fn::Join": ["/", ["service", {"Ref": "ClusterName"},
                                                          {"Fn::GetAtt": [f"{name}Service", "Name"]}]]}
        # ServicesRunning false: no task, and no policy can add one.
        assert props["MinCapacity"] == {"Fn::If": ["ServicesStopped", 0, want["min"]]}
        assert props["MaxCapacity"] == {"Fn::If": ["ServicesStopped", 0, want["max"]]}
        assert "RoleARN" not in props, "the service-linked role is made and used by Application Auto Scaling"


def test_the_policies_track_cpu_and_requests_per_target_with_cooldowns(rendered):
    stack = rendered["services.yaml"]
    policies = resources(stack, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert set(policies) == {"DksApiCpuScaling", "DksApiRequestsScaling", "DksUiCpuScaling"}
    found = {}
    for logical_id, policy in policies.items():
        props = policy["Properties"]
        assert props["PolicyType"] == "TargetTrackingScaling"
        config_ = props["TargetTrackingScalingPolicyConfiguration"]
        assert (config_["ScaleOutCooldown"], config_["ScaleInCooldown"]) == (60, 300)
        found[logical_id] = (props["ScalingTargetId"], config_["PredefinedMetricSpecification"]["PredefinedMetricType"],
                             config_["TargetValue"])
    assert found == {
        "DksApiCpuScaling": ({"Ref": "DksApiScalableTarget"}, "ECSServiceAverageCPUUtilization", 60.0),
        "DksApiRequestsScaling": ({"Ref": "DksApiScalableTarget"}, "ALBRequestCountPerTarget", 500.0),
        "DksUiCpuScaling": ({"Ref": "DksUiScalableTarget"}, "ECSServiceAverageCPUUtilization", 50.0)}
    label = policies["DksApiRequestsScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"][
        "PredefinedMetricSpecification"]["ResourceLabel"]
    assert label == {"Fn::Select": [0, {"Ref": "RequestCountLabels"}]}


def test_the_request_count_label_is_the_load_balancers_and_target_groups_full_names(rendered):
    output = rendered["loadbalancer.yaml"]["Outputs"]["RequestCountLabels"]["Value"]
    assert output == {"Fn::Join": [",", [{"Fn::Join": ["/", [
        {"Fn::GetAtt": ["LoadBalancer", "LoadBalancerFullName"]},
        {"Fn::GetAtt": ["DksApiTargetGroup", "TargetGroupFullName"]}]]}]]}
    nested = rendered["main.yaml"]["Resources"]["ServicesStack"]["Properties"]["Parameters"]
    assert nested["RequestCountLabels"] == {"Fn::GetAtt": ["LoadbalancerStack", "Outputs.RequestCountLabels"]}


def test_a_scaled_service_leaves_its_count_to_scaling_and_the_others_keep_theirs(rendered):
    services = resources(rendered["services.yaml"], "AWS::ECS::Service")
    no_value = {"Ref": "AWS::NoValue"}
    assert services["DksApiService"]["Properties"]["DesiredCount"] == {"Fn::If": ["ServicesStopped", 0, no_value]}
    assert services["DksUiService"]["Properties"]["DesiredCount"] == {"Fn::If": ["ServicesStopped", 0, no_value]}
    assert services["DksDbService"]["Properties"]["DesiredCount"] == {"Fn::If": ["ServicesStopped", 0, 1]}


def test_an_app_without_scaling_has_no_scaling_resources_or_labels(dks_templates):
    assert not resources(dks_templates["services.yaml"], "AWS::ApplicationAutoScaling::ScalableTarget")
    assert "RequestCountLabels" not in dks_templates["loadbalancer.yaml"].get("Outputs", {})


def test_the_scaled_templates_pass_cfn_lint(tmp_path):
    from helpers import cfn_lint, write_build

    out = write_build(scaled(), tmp_path / "build", local_urls=True)
    result = cfn_lint(sorted(out.glob("*.yaml")), "W3002")
    assert result.returncode == 0, result.stdout + result.stderr


# --- the fit check and the plan --------------------------------------------------------------------


def test_the_fit_check_counts_max_tasks_with_their_enis():
    app = scaled()
    at_max = capacity.peak_tasks(app)
    at_desired = capacity.peak_tasks(app, at_max=False)
    assert [t.service for t in at_max].count("dks-api") == 3 + 1  # max and the surge a deployment at max forces
    assert [t.service for t in at_desired].count("dks-api") == 1 + 1
    assert sum(t.eni for t in at_max) == 3 + 1 + 1  # the API's at max with its surge, the DB's; the UI is bridge


def test_a_config_that_fits_at_desired_but_not_at_max_is_refused_naming_max(tmp_path):
    data = scaled_data()
    data["cluster"]["max_size"] = 2
    app = config.parse(data, base_dir=config.DEFAULT_CONFIG.parent)
    assert capacity.place(capacity.peak_tasks(app, at_max=False),
                          capacity.host(instance_types.TYPES["t3.medium"], 256), 2) is not None, "fits at desired"
    result = build(data, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "cluster: the tasks do not fit on 2 x t3.medium (cluster.max_size): at the deployment peak with every " \
           "scaled service at its scaling.max 10 tasks (2 of them rolling-deployment surge) need 5 task ENIs" \
           in result.stderr
    assert "set cluster.max_size to 3" in result.stderr


def test_the_max_size_parameter_cannot_go_below_what_max_tasks_need(rendered):
    assert rendered["main.yaml"]["Parameters"]["MaxSize"]["MinValue"] == 3


def test_the_plan_shows_each_scaled_service_and_what_its_max_takes():
    app = scaled()
    made = plan.make(app)
    dks = plan.make(loading.load(config.DEFAULT_CONFIG))
    assert made.public.total == dks.public.total, "billed at desired: the same as the app that does not scale"
    assert (made.hosts, made.hosts_at_max, made.hosts_peak_at_max) == (1, 2, 3)
    host = made.public.line("ec2").monthly + made.public.line("ebs_gp3").monthly \
        + made.public.line("public_ipv4").price * made.hours_per_month
    assert made.total_at_max == round(made.public.total + host, 2)
    text = plan.text(made)
    assert "  dks-api  1..3                1    CPU 60%, 500 requests/min per task\n" in text
    assert "  dks-ui   1..4                1    CPU 50%\n" in text
    assert (f"  at max: 2 hosts (3 during a deployment), 1 more than billed (managed scaling adds them); "
            f"${made.total_at_max:,.2f} a month as built if it stayed there "
            f"(billed: ${made.public.total:,.2f})") in text
    data = json.loads(plan.to_json(made))["scaling"]
    assert data["services"][0] == {"service": "dks-api", "min": 1, "desired": 1, "max": 3, "cpu": 60,
                                   "requests_per_target": 500}
    assert (data["hosts_at_max"], data["hosts_peak_at_max"], data["public_total_at_max"]) == (2, 3, made.total_at_max)
    assert "Auto scaling" not in plan.text(dks)


def test_verify_accepts_a_scaled_count_within_the_range_and_names_one_outside_it():
    import types

    sys.path.insert(0, str(ROOT / "scripts"))
    from lifecycle import verify

    def state(api: int):
        counts = {"dks-db": 1, "dks-api": api, "dks-ui": 1}
        return types.SimpleNamespace(services=[{"serviceName": name, "status": "ACTIVE", "desiredCount": count}
                                              for name, count in counts.items()])

    app = scaled()
    assert verify._services_exist(state(3), app).result == verify.PASS
    check = verify._services_exist(state(4), app)
    assert check.result == verify.FAIL and check.detail == "dks-api: desired 4, config says 1..3"


def test_the_readme_shows_the_plan_lines_of_the_scaled_app():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Scaling"):readme.index("## From a Compose file")]
    made = plan.text(plan.make(scaled()))
    shown = section[section.index("Auto scaling (billed"):]
    shown = shown[:shown.index("```")].rstrip("\n")
    assert shown in made
    assert f"{{min: {UI['min']}, max: {UI['max']}, cpu: {UI['cpu']}}}" in section
    assert "{min: 1, max: 3, cpu: 60, requests_per_target: 500}" in section and API == {
        "min": 1, "max": 3, "cpu": 60, "requests_per_target": 500}


def test_a_scaled_app_over_two_services_stacks_gives_each_the_labels_of_its_own_services():
    from templates_src.app import quotas

    data = dks_data()
    data["services"] = [{"name": f"web-{i}", "image": "nginx:1.27", "port": 80, "cpu": 128, "memory": 128,
                         "public": {"port": 80, "path": f"/web-{i}/*"}, "network_mode": "bridge",
                         "scaling": {"min": 1, "max": 1, "cpu": 50, "requests_per_target": 100}}
                        for i in range(60)]
    data["cluster"] = {"instance_type": "r5.4xlarge", "max_size": 10}
    data.pop("secrets")
    app = app_from(data)
    groups = quotas.service_groups(app)
    assert len(groups) == 2
    rendered = templates(app)  # within every quota, or the render raises
    labels = rendered["loadbalancer.yaml"]["Outputs"]
    for group, names in enumerate(groups):
        suffix = "" if group == 0 else str(group + 1)
        stack = rendered[f"services{'' if group == 0 else f'-{group + 1}'}.yaml"]
        described = stack["Parameters"][f"RequestCountLabels{suffix}"]["Description"]
        assert f"(in this order: {', '.join(names)})" in described
        assert len(labels[f"RequestCountLabels{suffix}"]["Value"]["Fn::Join"][1]) == len(names)
        policies = resources(stack, "AWS::ApplicationAutoScaling::ScalingPolicy")
        assert {p["Properties"]["ScalingTargetId"]["Ref"] for p in policies.values()} == {
            f"{config.logical_id(name)}ScalableTarget" for name in names}
