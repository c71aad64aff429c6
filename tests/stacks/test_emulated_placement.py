"""The DKS deploy on the emulator places its tasks: Cloud Map instances and targets for each, shown by
make status and checked by make verify as emulated; too few hosts leave a task waiting, and both say why."""
from __future__ import annotations

import ipaddress

from test_emulated_deploy import ROOT, deploy
from test_lifecycle import run


def test_dks_tasks_are_placed_registered_and_shown_then_stuck_when_hosts_run_out(aws):
    deploy(aws)
    ecs, ec2 = aws.client("ecs"), aws.client("ec2")
    services = {s["serviceName"]: s for s in ecs.describe_services(
        cluster=ROOT, services=["dks-db", "dks-api", "dks-ui"])["services"]}
    assert {name: (s["runningCount"], s["pendingCount"]) for name, s in services.items()} == {
        "dks-db": (1, 0), "dks-api": (1, 0), "dks-ui": (1, 0)}
    arns = ecs.list_tasks(cluster=ROOT)["taskArns"]
    tasks = {t["group"].removeprefix("service:"): t for t in ecs.describe_tasks(cluster=ROOT, tasks=arns)["tasks"]}
    assert all(t["lastStatus"] == "RUNNING" and t["healthStatus"] == "UNKNOWN" for t in tasks.values())

    subnets = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets()["Subnets"]}
    addresses = {}
    for name in ("dks-db", "dks-api"):  # awsvpc: an interface and an address of their own, in their subnet
        details = {d["name"]: d["value"] for d in tasks[name]["attachments"][0]["details"]}
        ip = details["privateIPv4Address"]
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(subnets[details["subnetId"]])
        addresses[name] = ip
    assert tasks["dks-ui"]["attachments"] == [], "bridge: the host's interface"

    sd = aws.client("servicediscovery")
    for name in ("dks-db", "dks-api"):
        (ref,) = services[name]["serviceRegistries"]
        (instance,) = sd.list_instances(ServiceId=ref["registryArn"].rsplit("/", 1)[-1])["Instances"]
        assert instance["Id"] == tasks[name]["taskArn"].rsplit("/", 1)[-1]
        assert instance["Attributes"]["AWS_INSTANCE_IPV4"] == addresses[name]
    elb = aws.client("elbv2")
    (api_lb,) = services["dks-api"]["loadBalancers"]
    (api_target,) = elb.describe_target_health(TargetGroupArn=api_lb["targetGroupArn"])["TargetHealthDescriptions"]
    assert api_target["Target"] == {"Id": addresses["dks-api"], "Port": 8080}
    assert api_target["TargetHealth"]["State"] == "initial", "no health check runs, so none passes"
    (ui_lb,) = services["dks-ui"]["loadBalancers"]
    (ui_target,) = elb.describe_target_health(TargetGroupArn=ui_lb["targetGroupArn"])["TargetHealthDescriptions"]
    host = ecs.describe_container_instances(cluster=ROOT, containerInstances=[tasks["dks-ui"]["containerInstanceArn"]])
    assert ui_target["Target"]["Id"] == host["containerInstances"][0]["ec2InstanceId"]
    assert 32768 <= ui_target["Target"]["Port"] <= 60999, "a dynamic host port"

    # Fewer hosts than the tasks need (MaxSize lowered by hand past the build's fit check): a second API
    # task finds no interface on the one host (the database and the API hold both) and waits.
    scaling = aws.client("autoscaling")
    (group,) = scaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    scaling.update_auto_scaling_group(AutoScalingGroupName=group["AutoScalingGroupName"], MaxSize=1)
    ecs.update_service(cluster=ROOT, service="dks-api", desiredCount=2)
    (api,) = ecs.describe_services(cluster=ROOT, services=["dks-api"])["services"]
    assert (api["runningCount"], api["pendingCount"]) == (1, 1)
    reason = api["events"][0]["message"]
    assert reason.startswith("service dks-api was unable to place a task") and '"RESOURCE:ENI"' in reason

    status = run("status", STACK=ROOT)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    (host_line,) = [line for line in lines if line.split()[:1] == ["host"]]
    assert "3 tasks" in host_line and "2/2 awsvpc interfaces" in host_line
    assert any(line.split()[:3] == ["task", "dks-api", "RUNNING"] and addresses["dks-api"] in line for line in lines)
    assert any(line.split()[:3] == ["task", "dks-api", "PROVISIONING"] and "no host" in line for line in lines)
    assert any(line.split()[:4] == ["cloud", "map", "dks-db", "1"] and addresses["dks-db"] in line for line in lines)
    (waiting,) = [line for line in lines if line.startswith("waiting")]
    assert "dks-api" in waiting and reason in waiting
    assert "emulated ECS scheduler" in status.stdout

    verify = run("verify", STACK=ROOT)
    assert verify.returncode == 1, verify.stdout
    checks = verify.stdout.splitlines()
    for fact in ("container instances registered", "targets registered", "Cloud Map instances registered"):
        (line,) = [line for line in checks if fact in line]
        assert line.startswith("PASS") and "emulated" in line, verify.stdout
    (health,) = [line for line in checks if "targets healthy" in line]
    assert health.startswith("NOT OBSERVABLE HERE"), health
    (steady,) = [line for line in checks if "services steady" in line]
    assert steady.startswith("FAIL") and "dks-api: running 1 of 2" in steady and '"RESOURCE:ENI"' in steady
