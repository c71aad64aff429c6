"""Services reach each other as Compose lets them: followed through the security groups of the rendered templates.

Compose puts every service on the project's default network unless it names networks, and a service reaches
every other on a network they share, on any port. The import writes that as `reaches` (beyond `depends_on`)
and a target's other ports as `ports`; network.py turns both into security group rules. Each check here
evaluates a connection the way EC2 does (tests/stacks/test_packets.py): the client's group must let it out to the
target's group on the port, and the target's group must let it in from the client's.
"""
from __future__ import annotations

import pytest
from helpers import app_from, dks_data, resources, service, templates
from test_packets import Interface, Network
from test_templates import ecs_services, props, ref_target, task_definitions

from templates_src.compose import command, context, services as conversion
from templates_src.app import checks, config


def imported_app(compose_services: dict, tmp_path, **top) -> tuple[config.App, context.Imported]:
    """A Compose document imported, sized and validated as `import-compose` does."""
    result = conversion.convert({"services": compose_services, **top}, tmp_path, tmp_path, {})
    data, _ = command.size_cluster(result.data, tmp_path, result.file_contents)
    app = config.parse(data, base_dir=tmp_path, file_contents=result.file_contents)
    checks.validate(app)
    return app, result


def interfaces(tpls: dict) -> dict[str, Interface]:
    """Each ECS service's interface: its task's groups (awsvpc), or its host's (bridge)."""
    host = Interface({"HostSecurityGroup"}, "10.20.0.10", "PublicSubnetA")
    places = {}
    for number, (name, (_, svc)) in enumerate(sorted(ecs_services(tpls["services.yaml"]).items()), start=20):
        if task_definitions(tpls["services.yaml"])[name]["NetworkMode"] == "bridge":
            places[name] = host
            continue
        groups = props(svc)["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
        places[name] = Interface({ref_target(tpls, "services.yaml", group)[1] for group in groups},
                                 f"10.20.1.{number}", "PublicSubnetB")
    return places


def connects(tpls: dict, client: str, target: str, port: int) -> bool:
    """Whether a TCP connection from `client`'s task to `target`'s task on `port` passes both groups."""
    net = Network(tpls, {"AllowedIngressCidr": "0.0.0.0/0"})
    places = interfaces(tpls)
    source, destination = places[client], places[target]
    return bool(net.allows("Egress", source, port, destination.private, destination)
                and net.allows("Ingress", destination, port, source.private, source))


def test_pgadmin_reaches_postgres_it_neither_waits_for_nor_names(tmp_path):
    # postgresql-pgadmin (docker/awesome-compose): the server's address is typed into pgadmin's web UI.
    app, _ = imported_app({
        "postgres": {"image": "postgres:16", "ports": ["5432:5432"], "environment": {"POSTGRES_PASSWORD": "x"}},
        "pgadmin": {"image": "dpage/pgadmin4", "ports": ["5050:80"]},
    }, tmp_path)
    assert app.service("pgadmin").reaches == ("postgres",)
    tpls = templates(app)
    assert connects(tpls, "pgadmin", "postgres", 5432)
    assert connects(tpls, "postgres", "pgadmin", 80), "the default network is all-to-all"
    assert not connects(tpls, "pgadmin", "postgres", 5433), "only the ports the target listens on"


def test_web_reaches_redis_named_only_in_its_source_code(tmp_path):
    # flask-redis shape: Redis(host="redis") lives in app.py, not in the Compose file.
    app, _ = imported_app({
        "web": {"build": ".", "ports": ["8000:5000"]},
        "redis": {"image": "redis:alpine"},
    }, tmp_path)
    tpls = templates(app)
    assert connects(tpls, "web", "redis", 6379)


def test_the_n8n_runner_reaches_the_broker_port_no_compose_key_declares(tmp_path):
    # n8n-io/n8n-hosting withPostgresAndWorker: the runner calls http://n8n:5679, n8n publishes only 5678.
    app, result = imported_app({
        "n8n": {"image": "docker.n8n.io/n8nio/n8n", "ports": ["5678:5678"],
                "environment": {"N8N_RUNNERS_MODE": "external", "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "0.0.0.0"}},
        "n8n-runner": {"image": "n8nio/runners", "depends_on": ["n8n"],
                       "environment": {"N8N_RUNNERS_TASK_BROKER_URI": "http://n8n:5679"}},
    }, tmp_path)
    n8n = app.service("n8n")
    assert (n8n.port, n8n.ports) == (5678, (5679,))
    assert app.service("n8n-runner").environment["N8N_RUNNERS_TASK_BROKER_URI"] == "http://n8n:5679"
    tpls = templates(app)
    assert connects(tpls, "n8n-runner", "n8n", 5679) and connects(tpls, "n8n-runner", "n8n", 5678)
    assert not connects(tpls, "n8n-runner", "n8n", 5680)
    assert any(f.service == "n8n" and f.key == "ports" and "5679" in f.message for f in result.notes)


def test_a_service_with_no_port_in_compose_takes_the_one_it_is_addressed_on(tmp_path):
    # paperless-ngx: gotenberg declares no port; the webserver calls http://gotenberg:3000.
    app, result = imported_app({
        "webserver": {"image": "paperless", "ports": ["8000:8000"],
                      "environment": {"PAPERLESS_TIKA_GOTENBERG_ENDPOINT": "http://gotenberg:3000"}},
        "gotenberg": {"image": "docker.io/gotenberg/gotenberg:8.20"},
    }, tmp_path)
    assert (app.service("gotenberg").port, app.service("gotenberg").ports) == (3000, ())
    assert not [f for f in result.warnings if f.service == "gotenberg" and "placeholder" in f.message]
    assert connects(templates(app), "webserver", "gotenberg", 3000)


SEGMENTED = {
    "front": {"image": "nginx:1.27", "ports": ["80:80"], "networks": ["frontnet"]},
    "backend": {"build": "backend", "expose": ["8000"], "networks": ["frontnet", "backnet"]},
    "db": {"image": "postgres:16", "networks": ["backnet"], "environment": {"POSTGRES_PASSWORD": "x"}},
}


def test_two_segments_keep_the_front_away_from_the_database(tmp_path):
    app, result = imported_app(SEGMENTED, tmp_path, networks={"frontnet": {}, "backnet": {}})
    assert app.service("front").reaches == ("backend",)
    assert app.service("db").reaches == ("backend",)
    tpls = templates(app)
    assert connects(tpls, "front", "backend", 8000) and connects(tpls, "backend", "db", 5432)
    assert connects(tpls, "backend", "front", 80) and connects(tpls, "db", "backend", 8000)
    assert not connects(tpls, "front", "db", 5432)
    assert not connects(tpls, "db", "front", 80)
    # the header says what each service reaches
    said = {f.service: f.message for f in result.notes if f.key == "networks"}
    assert said["front"] == "on frontnet: reaches backend by name, on every port each listens on"
    assert said["backend"] == "on backnet, frontnet: reaches db, front by name, on every port each listens on"


def test_a_name_across_segments_is_warned_not_opened(tmp_path):
    services = {**SEGMENTED, "front": {**SEGMENTED["front"], "environment": {"DB_HOST": "db"}}}
    app, result = imported_app(services, tmp_path, networks={"frontnet": {}, "backnet": {}})
    assert not connects(templates(app), "front", "db", 5432)
    assert any(f.service == "front" and "shares no Compose network" in f.message for f in result.warnings)


def test_a_service_calling_a_public_url_becomes_bridge_and_nobody_reaches_it(tmp_path):
    app, _ = imported_app({
        "api": {"image": "api", "ports": ["8080:8080"]},
        "ui": {"image": "ui", "ports": ["3000:3000"], "environment": {"API": "http://localhost:8080"}},
    }, tmp_path)
    assert app.service("ui").network_mode == "bridge"
    assert app.service("api").reaches == ()  # a bridge service has no address of its own
    assert app.service("ui").reaches == ("api",)
    assert connects(templates(app), "ui", "api", 8080)  # from the hosts' group


# --- the config keys themselves --------------------------------------------------------------------------------


def test_reaches_and_ports_open_exactly_the_listed_ports_to_the_listed_peers():
    data = dks_data()
    service(data, "dks-db")["ports"] = [9187]  # a metrics exporter beside postgres
    tpls = templates(app_from(data))
    assert connects(tpls, "dks-api", "dks-db", 9187) and connects(tpls, "dks-api", "dks-db", 5432)
    assert not connects(tpls, "dks-db", "dks-api", 8080), "dks-db reaches nobody until it says so"
    service(data, "dks-db")["reaches"] = ["dks-api"]
    tpls = templates(app_from(data))
    assert connects(tpls, "dks-db", "dks-api", 8080) and connects(tpls, "dks-api", "dks-db", 9187)
    # the extra port's rules have IDs of their own, stable whatever the order
    ingress = resources(tpls["network.yaml"], "AWS::EC2::SecurityGroupIngress")
    assert "DksApiToDksDbPort9187Ingress" in ingress and "DksApiToDksDbIngress" in ingress


@pytest.mark.parametrize("change, field, reason", [
    ({"reaches": ["nobody"]}, "services[0].reaches[0]", "unknown service 'nobody'"),
    ({"reaches": ["dks-db"]}, "services[0].reaches[0]", "always reaches itself"),
    ({"reaches": ["dks-ui"]}, "services[0].reaches[0]", "runs with network_mode bridge"),
    ({"reaches": ["dks-api", "dks-api"]}, "services[0].reaches[1]", "listed twice"),
    ({"ports": [5432]}, "services[0].ports[0]", "the service's port already"),
    ({"ports": [70000]}, "services[0].ports[0]", "not a TCP port"),
    ({"ports": [9187, 9187]}, "services[0].ports[1]", "listed twice"),
])
def test_reaches_and_ports_are_refused_with_the_field_named(change, field, reason):
    data = dks_data()
    service(data, "dks-db").update(change)
    with pytest.raises(config.ConfigError) as err:
        app_from(data)
    assert any(path == field and reason in text for path, text in err.value.problems), err.value.problems
