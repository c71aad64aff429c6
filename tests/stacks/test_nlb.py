"""Ports that are not HTTP: a Network Load Balancer listener each, never an HTTP listener.

A game server on TCP 25565 and a DNS server on UDP 53 (with its web UI on HTTP 80) are built into
templates whose properties are asserted (listeners, TCP health checks, security groups, ECS port
mappings and target groups), refused where AWS or ECS would refuse them, priced by the plan, and
deployed on the emulator and deleted with nothing left.
"""
from __future__ import annotations

import copy

import pytest

import inventory
import stacks
import test_emulated_deploy as emulated
from helpers import cfn_lint, resources, templates, write_build
from templates_src import plan
from templates_src.app import checks, config, loading

GAMES = {
    "name": "games",
    "cluster": {"instance_type": "t3.large", "max_size": 4},
    "services": [
        {"name": "minecraft", "image": "itzg/minecraft-server:2024.10.0", "port": 25565, "cpu": 512, "memory": 1024,
         "read_only": False, "published": [{"port": 25565}]},
        {"name": "pihole", "image": "pihole/pihole:2024.07.0", "port": 80, "cpu": 256, "memory": 512,
         "read_only": False, "public": {"port": 80}, "published": [{"port": 53, "protocol": "UDP"}]},
    ],
}


def games(change=None) -> config.App:
    data = copy.deepcopy(GAMES)
    if change:
        change(data)
    app = config.parse(data)
    checks.validate(app)
    return app


def problems(change) -> list[str]:
    with pytest.raises(config.ConfigError) as refused:
        games(change)
    return [f"{path}: {reason}" for path, reason in refused.value.problems]


def ref(value) -> str:
    return value["Ref"]


@pytest.fixture(scope="module")
def tpls() -> dict[str, dict]:
    return templates(games())


def test_the_dks_app_has_no_network_load_balancer():
    assert "nlb.yaml" not in templates(loading.load(config.DEFAULT_CONFIG))


def test_each_port_is_a_tcp_or_udp_listener_of_one_network_load_balancer(tpls):
    nlb = tpls["nlb.yaml"]
    (balancer,) = resources(nlb, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert balancer["Properties"]["Type"] == "network" and balancer["Properties"]["Scheme"] == "internet-facing"
    assert balancer["Properties"]["SecurityGroups"] == [{"Ref": "NetworkLoadBalancerSecurityGroupId"}]
    listeners = {r["Properties"]["Port"]: r["Properties"] for r in
                 resources(nlb, "AWS::ElasticLoadBalancingV2::Listener").values()}
    assert {port: item["Protocol"] for port, item in listeners.items()} == {53: "UDP", 25565: "TCP"}
    groups = resources(nlb, "AWS::ElasticLoadBalancingV2::TargetGroup")
    for port, listener in listeners.items():
        (action,) = listener["DefaultActions"]
        group = groups[ref(action["TargetGroupArn"])]["Properties"]
        assert group["Protocol"] == listener["Protocol"] and group["HealthCheckProtocol"] == "TCP"
        assert group["TargetType"] == "ip"
    # The HTTP port stays on the ALB, and only there.
    alb_listeners = resources(tpls["loadbalancer.yaml"], "AWS::ElasticLoadBalancingV2::Listener")
    assert {r["Properties"]["Port"] for r in alb_listeners.values()} == {80, 443}, "443: HTTPS with a certificate"


def test_a_udp_port_is_checked_over_tcp_on_the_service_port_and_a_tcp_port_on_itself(tpls):
    groups = {r["Properties"]["Port"]: r["Properties"] for r in
              resources(tpls["nlb.yaml"], "AWS::ElasticLoadBalancingV2::TargetGroup").values()}
    assert groups[53]["HealthCheckPort"] == "80"
    assert groups[25565]["HealthCheckPort"] == "traffic-port"


def test_the_tasks_map_each_port_with_its_protocol_and_register_with_each_target_group(tpls):
    services = tpls["services.yaml"]
    tasks = resources(services, "AWS::ECS::TaskDefinition")
    (pihole,) = tasks["PiholeTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert {(m["ContainerPort"], m["Protocol"]) for m in pihole["PortMappings"]} == {(80, "tcp"), (53, "udp")}
    ecs = resources(services, "AWS::ECS::Service")
    balanced = ecs["PiholeService"]["Properties"]["LoadBalancers"]
    assert sorted(item["ContainerPort"] for item in balanced) == [53, 80]
    (minecraft,) = ecs["MinecraftService"]["Properties"]["LoadBalancers"]
    assert minecraft["ContainerPort"] == 25565
    assert "HealthCheckGracePeriodSeconds" in ecs["MinecraftService"]["Properties"]


def test_the_load_balancers_group_admits_the_allowed_cidr_and_reaches_only_the_published_and_checked_ports(tpls):
    network = tpls["network.yaml"]
    groups = resources(network, "AWS::EC2::SecurityGroup")
    nlb = groups["NetworkLoadBalancerSecurityGroup"]["Properties"]
    assert {(r["IpProtocol"], r["FromPort"], ref(r["CidrIp"])) for r in nlb["SecurityGroupIngress"]} == {
        ("udp", 53, "AllowedIngressCidr"), ("tcp", 25565, "AllowedIngressCidr")}
    egress = nlb["SecurityGroupEgress"]
    assert {(r["IpProtocol"], r["FromPort"], ref(r["DestinationSecurityGroupId"])) for r in egress} == {
        ("udp", 53, "PiholeSecurityGroup"), ("tcp", 80, "PiholeSecurityGroup"),
        ("tcp", 25565, "MinecraftSecurityGroup")}
    ingress = [r["Properties"] for r in resources(network, "AWS::EC2::SecurityGroupIngress").values()
               if r["Properties"].get("SourceSecurityGroupId") == {"Ref": "NetworkLoadBalancerSecurityGroup"}]
    assert {(r["IpProtocol"], r["FromPort"], ref(r["GroupId"])) for r in ingress} == {
        ("udp", 53, "PiholeSecurityGroup"), ("tcp", 80, "PiholeSecurityGroup"),
        ("tcp", 25565, "MinecraftSecurityGroup")}


def test_the_root_outputs_the_network_load_balancers_name_with_what_it_serves(tpls):
    output = tpls["main.yaml"]["Outputs"]["NetworkLoadBalancerDnsName"]
    assert output["Value"] == {"Fn::GetAtt": ["NlbStack", "Outputs.NetworkLoadBalancerDnsName"]}
    assert "minecraft on 25565/TCP" in output["Description"] and "pihole on 53/UDP" in output["Description"]


def test_the_templates_pass_cfn_lint(tmp_path):
    app = games()
    result = cfn_lint(sorted(write_build(app, tmp_path / "build").glob("*.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr
    local = sorted(write_build(app, tmp_path / "local", local_urls=True).glob("*.yaml"))
    result = cfn_lint(local, "W3002")
    assert result.returncode == 0, result.stdout + result.stderr


def _set(service: int, **values):
    def change(data):
        data["services"][service].update(values)
    return change


def _publish(service: int, *ports):
    return _set(service, published=list(ports))


@pytest.mark.parametrize("change, words", [
    # The only port is UDP: nothing answers a TCP health check.
    (_set(1, port=53, public=None, published=[{"port": 53, "protocol": "UDP"}]), "services[1].published[0]"),
    (_publish(1, {"port": 53, "protocol": "UDP", "health_port": 8053}),
     "services[1].published[0].health_port: 8053 is not a TCP port of the container"),
    (_publish(0, {"port": 25565}, {"port": 25566, "target": 25565, "protocol": "UDP"}),
     "services[0].published[1].protocol: container port 25565 is mapped over TCP already"),
    (_publish(0, {"port": 53}), "services[1].published[0].port: port conflict: 'minecraft' takes Network Load "
                                "Balancer port 53"),
    (_publish(0, {"port": 25565, "health_port": 80}), "services[0].published[0].health_port: only a UDP port"),
    (_publish(0, {"port": 25565, "protocol": "TCP_UDP"}), "services[0].published[0].protocol: must be one of TCP, UDP"),
    (_publish(0, *({"port": p} for p in range(25565, 25571))), "services[0].published: 6 target groups"),
    (_publish(0, {"port": 70000}), "services[0].published[0].port: 70000 is not a port"),
    (_set(1, network_mode="bridge"), "services[1].published[0].protocol: UDP needs network_mode awsvpc"),
])
def test_a_port_the_load_balancer_or_ecs_could_not_serve_is_refused_naming_the_field(change, words):
    found = problems(change)
    assert any(words in problem for problem in found), found


def test_the_plan_prices_the_network_load_balancer_only_when_there_is_one():
    made = plan.make(games())
    with_nlb = made.public
    assert with_nlb.line("nlb_hour").quantity == 1 and with_nlb.line("nlb_lcu").quantity == 1
    prices = plan.load_prices()["items"]
    assert with_nlb.line("nlb_hour").monthly == round(prices["nlb_hour"]["prices"]["us-east-1"] * 730, 2)
    azs = games().network.availability_zones
    assert with_nlb.line("public_ipv4").quantity == made.hosts + 2 * azs, "the ALB's and the NLB's addresses"
    dks = plan.make(loading.load(config.DEFAULT_CONFIG))
    assert not {"nlb_hour", "nlb_lcu"} & {line.item for line in dks.public.lines + dks.nat.lines}
    assert "nlb_hour" not in dks.unconfirmed, "an item the app does not use is not listed as unconfirmed"


def test_an_emulated_deploy_makes_the_listeners_and_target_groups_and_the_delete_takes_them(aws, tmp_path):
    app = games()
    build = write_build(app, tmp_path / "build")
    before = inventory.take(aws)
    stacks.upload(aws, "games-templates", "games/", build)
    registry = stacks.create(aws, "games-registry", stacks.template_url(aws, "games-templates", "games/registry.yaml"))
    assert registry["StackStatus"] == "CREATE_COMPLETE"
    root = stacks.create(aws, "games", stacks.template_url(aws, "games-templates", "games/main.yaml"),
                         {"QSS3BucketName": "games-templates", "QSS3KeyPrefix": "games/"})
    assert root["StackStatus"] == "CREATE_COMPLETE", emulated.failure_events(aws, "games")
    elb = aws.client("elbv2")
    balancers = {b["Type"]: b for b in elb.describe_load_balancers()["LoadBalancers"]}
    assert set(balancers) == {"application", "network"}
    network = balancers["network"]
    assert stacks.outputs(root)["NetworkLoadBalancerDnsName"] == network["DNSName"]
    listeners = elb.describe_listeners(LoadBalancerArn=network["LoadBalancerArn"])["Listeners"]
    assert {(item["Port"], item["Protocol"]) for item in listeners} == {(53, "UDP"), (25565, "TCP")}
    groups = {g["Port"]: g for g in elb.describe_target_groups(LoadBalancerArn=network["LoadBalancerArn"])
              ["TargetGroups"]}
    assert {port: (g["Protocol"], g["HealthCheckProtocol"], g["HealthCheckPort"]) for port, g in groups.items()} == {
        53: ("UDP", "TCP", "80"), 25565: ("TCP", "TCP", "traffic-port")}
    (group,) = aws.client("ec2").describe_security_groups(GroupIds=network["SecurityGroups"])["SecurityGroups"]
    assert {(r["IpProtocol"], r["FromPort"]) for r in group["IpPermissions"]} == {("udp", 53), ("tcp", 25565)}

    stacks.delete(aws, "games")
    stacks.delete(aws, "games-registry")
    stacks.empty_bucket(aws, "games-templates")
    stacks.drop_retained(aws, before)
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert elb.describe_target_groups()["TargetGroups"] == []
    assert inventory.difference(before, inventory.take(aws)) == {}

