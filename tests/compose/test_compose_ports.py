"""The Compose import puts each published port behind the load balancer that speaks its protocol.

Shapes from official Compose files (itzg/docker-minecraft-server, temporalio/docker-compose,
pi-hole/docker-pi-hole, chirpstack/chirpstack-docker, docker-mailserver, stilliard/pure-ftpd): an
HTTP port goes to the ALB, whose `GET` health check must be able to pass; a game server, gRPC,
MQTT, SMTP/IMAP, FTP or DNS port becomes a Network Load Balancer listener; what neither can carry
(a UDP port with no TCP port to check, a range past ECS's five target groups) is warned, never
silently dropped and never given an HTTP listener.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import resources
from templates_src import render  # noqa: E402
from templates_src.compose import command, context, networks, services as compose_services  # noqa: E402
from templates_src.app import checks, config

MINECRAFT = {"mc": {"image": "itzg/minecraft-server", "tty": True, "stdin_open": True, "ports": ["25565:25565"],
                    "environment": {"EULA": "TRUE"}}}
TEMPORAL = {
    "postgresql": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "temporal"}, "ports": ["5432:5432"]},
    "temporal": {"image": "temporalio/auto-setup:1.25", "depends_on": ["postgresql"], "ports": ["7233:7233"],
                 "environment": {"DB": "postgres12", "POSTGRES_SEEDS": "postgresql"}},
    "temporal-ui": {"image": "temporalio/ui:2.31", "depends_on": ["temporal"], "ports": ["8080:8080"],
                    "environment": {"TEMPORAL_ADDRESS": "temporal:7233"}},
}
PIHOLE = {"pihole": {"image": "pihole/pihole:latest",
                     "ports": ["53:53/tcp", "53:53/udp", "8081:80/tcp"], "environment": {"TZ": "Europe/London"}}}
GATEWAY_BRIDGE = {"chirpstack-gateway-bridge": {"image": "chirpstack/chirpstack-gateway-bridge:4",
                                                "ports": ["1700:1700/udp"]},
                  "mosquitto": {"image": "eclipse-mosquitto:2", "ports": ["1883:1883"]}}
MAILSERVER = {"mailserver": {"image": "ghcr.io/docker-mailserver/docker-mailserver:latest",
                             "hostname": "mail.example.com",
                             "ports": ["25:25", "143:143", "465:465", "587:587", "993:993"]}}
FTP = {"ftpd_server": {"image": "stilliard/pure-ftpd", "ports": ["21:21", "30000-30009:30000-30009"]}}
APPS = {"minecraft": MINECRAFT, "temporal": TEMPORAL, "pihole": PIHOLE, "gateway": GATEWAY_BRIDGE,
        "mailserver": MAILSERVER, "ftp": FTP}


def imported(services: dict, tmp_path: Path) -> context.Imported:
    return compose_services.convert({"services": services}, tmp_path, tmp_path, {})


def built(result: context.Imported, tmp_path: Path) -> tuple[config.App, dict[str, dict]]:
    data, _ = command.size_cluster(result.data, tmp_path, result.file_contents)
    app = config.parse(data, base_dir=tmp_path, file_contents=result.file_contents)
    checks.validate(app)
    return app, render.stacks(app)


def service(result: context.Imported, key: str) -> dict:
    """The imported service of Compose service `key` (the config renames it to a DNS label)."""
    return next(s for s in result.data["services"] if s["name"] == result.names[key])


def warnings(result: context.Imported, name: str) -> str:
    return " ".join(f.message for f in result.warnings if f.service == name)


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_http_listener_targets_an_http_port_and_every_other_published_port_is_carried_or_warned(name, tmp_path):
    services = APPS[name]
    result = imported(services, tmp_path)
    app, tpls = built(result, tmp_path)
    by_name = {result.names[key]: svc for key, svc in services.items()}
    # The ALB's target groups (HTTP health checks) point only at ports Compose or the image say are HTTP.
    for group in resources(tpls.get("loadbalancer.yaml", {"Resources": {}}), "AWS::ElasticLoadBalancingV2::TargetGroup"
                           ).values():
        owner = next(s for s in app.public_services if s.port == group["Properties"]["Port"])
        assert networks._is_http(by_name[owner.name], owner.port), (owner.name, owner.port)
    # Every published port reaches a listener or is named in a warning.
    for key, svc in services.items():
        carried = {(p.container_port, p.protocol.lower()) for p in app.service(result.names[key]).published}
        public = app.service(result.names[key]).public
        for entry in svc["ports"]:
            for port in networks.parse_ports(entry):
                on_alb = public is not None and port.protocol == "tcp" and port.target == app.service(
                    result.names[key]).port
                assert on_alb or (port.target, port.protocol) in carried or str(port.target) in warnings(
                    result, key) or f"'{entry}'" in warnings(result, key), (key, entry)


def test_a_game_server_gets_a_tcp_listener_and_no_http_one(tmp_path):
    result = imported(MINECRAFT, tmp_path)
    mc = service(result, "mc")
    assert mc["published"] == [{"port": 25565}] and "public" not in mc
    app, tpls = built(result, tmp_path)
    assert "loadbalancer.yaml" not in tpls, "no HTTP port: no ALB to pay for"
    (listener,) = resources(tpls["nlb.yaml"], "AWS::ElasticLoadBalancingV2::Listener").values()
    assert (listener["Properties"]["Port"], listener["Properties"]["Protocol"]) == (25565, "TCP")


def test_grpc_goes_to_the_network_load_balancer_and_the_web_ui_to_the_alb(tmp_path):
    result = imported(TEMPORAL, tmp_path)
    assert service(result, "temporal")["published"] == [{"port": 7233}] and "public" not in service(result, "temporal")
    assert service(result, "temporal-ui")["public"] == {"port": 80}
    assert "published" not in service(result, "postgresql"), "a database is not put on the internet"


def test_a_dns_server_keeps_its_http_port_on_the_alb_and_udp_53_on_the_network_load_balancer(tmp_path):
    result = imported(PIHOLE, tmp_path)
    pihole = service(result, "pihole")
    assert pihole["port"] == 80 and pihole["public"] == {"port": 80}
    assert pihole["published"] == [{"port": 53, "protocol": "UDP"}]
    assert "UDP is carried over, TCP not" in warnings(result, "pihole")
    app, tpls = built(result, tmp_path)
    (group,) = resources(tpls["nlb.yaml"], "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["Properties"]["HealthCheckPort"] == "80", "UDP is checked over TCP on the web port"


def test_a_udp_only_service_is_refused_with_the_reason_and_its_neighbour_still_gets_its_listener(tmp_path):
    result = imported(GATEWAY_BRIDGE, tmp_path)
    assert "published" not in service(result, "chirpstack-gateway-bridge")
    assert "1700/udp is not made public" in warnings(result, "chirpstack-gateway-bridge")
    assert "health over TCP" in warnings(result, "chirpstack-gateway-bridge")
    assert service(result, "mosquitto")["published"] == [{"port": 1883}]
    built(result, tmp_path)


def test_every_mail_port_is_a_listener(tmp_path):
    result = imported(MAILSERVER, tmp_path)
    assert [e["port"] for e in service(result, "mailserver")["published"]] == [25, 143, 465, 587, 993]
    assert "one port per service" not in warnings(result, "mailserver")


def test_a_range_within_five_target_groups_is_carried_and_a_wider_one_refused(tmp_path):
    result = imported(FTP, tmp_path)
    assert service(result, "ftpd_server")["published"] == [{"port": 21}]
    assert "port range '30000-30009:30000-30009' (10 ports) is not carried over" in warnings(result, "ftpd_server")
    narrow = imported({"ftp": {"image": "stilliard/pure-ftpd", "ports": ["21:21", "30000-30003:30000-30003"]}},
                      tmp_path)
    assert [e["port"] for e in service(narrow, "ftp")["published"]] == [21, 30000, 30001, 30002, 30003]
    built(narrow, tmp_path)


def test_a_port_the_health_check_calls_over_http_is_http(tmp_path):
    result = imported({"api": {"image": "acme/api", "ports": ["7000:7000", "7001:7001"],
                               "healthcheck": {"test": ["CMD", "curl", "-f", "http://localhost:7001/health"]}}},
                      tmp_path)
    api = service(result, "api")
    assert api["port"] == 7001 and api["public"] == {"port": 80}
    assert api["published"] == [{"port": 7000}]
    assert api["health_check"]["path"] == "/health"


def test_two_services_publishing_one_port_get_distinct_listeners(tmp_path):
    result = imported({"a": {"image": "acme/a", "ports": ["7777:7777"]}, "b": {"image": "acme/b", "ports": ["7777"]}},
                      tmp_path)
    assert service(result, "a")["published"] == [{"port": 7777}]
    (entry,) = service(result, "b")["published"]
    assert entry["port"] != 7777 and entry["target"] == 7777
    built(result, tmp_path)


@pytest.mark.parametrize("entry, words", [
    ("1-65535:1-65535", "(65535 ports) is not carried over"),
    ("7000-6000:7000-6000", "is not a port mapping"),
    ("1-9999999999", "is not a port mapping"),
    ("8000-8001:7000-7002", "2 host ports for 3 container ports"),
])
def test_a_range_ecs_cannot_carry_or_that_is_no_range_is_warned_at_once(entry, words, tmp_path):
    result = imported({"app": {"image": "acme/app", "ports": ["8080:8080", entry]}}, tmp_path)
    assert words in warnings(result, "app")
    assert "published" not in service(result, "app")
