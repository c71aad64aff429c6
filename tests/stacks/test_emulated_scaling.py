"""Service auto scaling deployed into the emulator: the scalable targets and policies exist with the configured
range and targets, ServicesRunning false takes the range to 0 and true back, and the delete leaves nothing."""
from __future__ import annotations

import inventory
import stacks
import test_emulated_deploy as emulated
from helpers import app_from, service, write_build
from test_scaling import API, UI, scaled, scaled_data

BUCKET, PREFIX, ROOT = "scaled-templates", "scaled/", "scaled"


def _targets(aws) -> dict[str, dict]:
    found = aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    return {t["ResourceId"].rsplit("/", 1)[1]: t for t in found}


def _policies(aws) -> dict[str, dict]:
    found = aws.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    return {p["PolicyName"]: p for p in found}


def _desired(aws, cluster: str) -> dict[str, int]:
    ecs = aws.client("ecs")
    names = ecs.list_services(cluster=cluster)["serviceArns"]
    return {s["serviceName"]: s["desiredCount"] for s in ecs.describe_services(cluster=cluster, services=names)[
        "services"] if s["status"] == "ACTIVE"}


def _running(aws, cluster: str) -> dict[str, int]:
    ecs = aws.client("ecs")
    return {name: len(ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING")["taskArns"])
            for name in _desired(aws, cluster)}


def test_an_emulated_deploy_registers_the_targets_and_policies_and_the_delete_takes_them(aws, tmp_path):
    build = write_build(scaled(), tmp_path / "build")
    before = inventory.take(aws)
    stacks.upload(aws, BUCKET, PREFIX, build)
    registry = stacks.create(aws, f"{ROOT}-registry", stacks.template_url(aws, BUCKET, f"{PREFIX}registry.yaml"))
    assert registry["StackStatus"] == "CREATE_COMPLETE"
    root = stacks.create(aws, ROOT, stacks.template_url(aws, BUCKET, f"{PREFIX}main.yaml"),
                         {"QSS3BucketName": BUCKET, "QSS3KeyPrefix": PREFIX})
    assert root["StackStatus"] == "CREATE_COMPLETE", emulated.failure_events(aws, ROOT)
    cluster = stacks.outputs(root)["ClusterName"]

    targets = _targets(aws)
    assert set(targets) == {"dks-api", "dks-ui"}
    for name, want in (("dks-api", API), ("dks-ui", UI)):
        target = targets[name]
        assert target["ResourceId"] == f"service/{cluster}/{name}"
        assert target["ScalableDimension"] == "ecs:service:DesiredCount"
        assert (target["MinCapacity"], target["MaxCapacity"]) == (want["min"], want["max"])

    policies = _policies(aws)
    assert set(policies) == {"dks-api-cpu", "dks-api-requests", "dks-ui-cpu"}
    tracked = {name: (p["ResourceId"].rsplit("/", 1)[1], p["PolicyType"],
                      p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
                          "PredefinedMetricType"], p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
               for name, p in policies.items()}
    assert tracked == {"dks-api-cpu": ("dks-api", "TargetTrackingScaling", "ECSServiceAverageCPUUtilization", 60.0),
                       "dks-api-requests": ("dks-api", "TargetTrackingScaling", "ALBRequestCountPerTarget", 500.0),
                       "dks-ui-cpu": ("dks-ui", "TargetTrackingScaling", "ECSServiceAverageCPUUtilization", 50.0)}
    # The label is the load balancer's and the target group's last ARN parts, as the metric is dimensioned.
    elb = aws.client("elbv2")
    (balancer,) = elb.describe_load_balancers()["LoadBalancers"]
    (group,) = [g for g in elb.describe_target_groups()["TargetGroups"] if g["Port"] == 8080]
    label = policies["dks-api-requests"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
        "ResourceLabel"]
    assert label == (balancer["LoadBalancerArn"].split(":loadbalancer/")[1] + "/"
                     + group["TargetGroupArn"].split(":", 5)[5])
    assert label.startswith("app/") and "/targetgroup/" in label
    assert _desired(aws, cluster) == {"dks-db": 1, "dks-api": 1, "dks-ui": 1}

    stacks.delete(aws, ROOT)
    stacks.delete(aws, f"{ROOT}-registry")
    stacks.empty_bucket(aws, BUCKET)
    stacks.drop_retained(aws, before)
    assert _targets(aws) == {} and _policies(aws) == {}
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_services_running_false_takes_the_range_to_0_and_true_brings_min_back(aws, tmp_path):
    data = scaled_data()
    service(data, "dks-api")["scaling"]["min"] = service(data, "dks-api")["desired_count"] = 2
    build = write_build(app_from(data), tmp_path / "build")
    stacks.upload(aws, BUCKET, PREFIX, build)
    stacks.create(aws, f"{ROOT}-registry", stacks.template_url(aws, BUCKET, f"{PREFIX}registry.yaml"))
    url = stacks.template_url(aws, BUCKET, f"{PREFIX}main.yaml")
    root = stacks.create(aws, ROOT, url, {"QSS3BucketName": BUCKET, "QSS3KeyPrefix": PREFIX,
                                         "ServicesRunning": "false"})
    assert root["StackStatus"] == "CREATE_COMPLETE", emulated.failure_events(aws, ROOT)
    cluster = stacks.outputs(root)["ClusterName"]
    assert {n: (t["MinCapacity"], t["MaxCapacity"]) for n, t in _targets(aws).items()} == {
        "dks-api": (0, 0), "dks-ui": (0, 0)}
    assert _desired(aws, cluster) == {"dks-db": 0, "dks-api": 0, "dks-ui": 0}

    cfn = aws.client("cloudformation")
    cfn.update_stack(StackName=ROOT, TemplateURL=url, Parameters=[
        {"ParameterKey": "QSS3BucketName", "ParameterValue": BUCKET},
        {"ParameterKey": "QSS3KeyPrefix", "ParameterValue": PREFIX},
        {"ParameterKey": "ServicesRunning", "ParameterValue": "true"}], Capabilities=["CAPABILITY_IAM"])
    cfn.get_waiter("stack_update_complete").wait(StackName=ROOT, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert {n: (t["MinCapacity"], t["MaxCapacity"]) for n, t in _targets(aws).items()} == {
        "dks-api": (2, API["max"]), "dks-ui": (UI["min"], UI["max"])}
    # DesiredCount is left out for a scaled service: registering the target's new range lifted it to min.
    assert _desired(aws, cluster) == {"dks-db": 1, "dks-api": 2, "dks-ui": UI["min"]}
    assert _running(aws, cluster) == {"dks-db": 1, "dks-api": 2, "dks-ui": UI["min"]}, "the scheduler followed"

    stacks.delete(aws, ROOT)
    assert _targets(aws) == {} and _policies(aws) == {}
