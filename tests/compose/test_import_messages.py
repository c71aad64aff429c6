"""What the Compose import says matches what it did: names are matched as words, nothing is cut
silently, and no finding contradicts another."""
from __future__ import annotations

from pathlib import Path

from templates_src.compose import command, context, services as compose_services
from templates_src.app import checks, config


def imported(services: dict, tmp_path: Path, **top) -> context.Imported:
    return compose_services.convert({"services": services, **top}, tmp_path, tmp_path, {})


def service(result: context.Imported, name: str) -> dict:
    return next(s for s in result.data["services"] if s["name"] == name)


def findings(found: list[context.Finding], name: str, key: str) -> str:
    return " ".join(f.message for f in found if f.service == name and f.key == key)


def validated(result: context.Imported, base_dir: Path) -> config.App:
    data, _ = command.size_cluster(result.data, base_dir, result.file_contents)
    app = config.parse(data, base_dir=base_dir, file_contents=result.file_contents)
    checks.validate(app)
    return app


# --- matching -------------------------------------------------------------------------------------------


def test_a_host_word_inside_another_word_does_not_make_a_host_variable(tmp_path):
    # "URI" sits inside SECURITY: Grafana's admin password is no host name, even when it names a service.
    result = imported({"grafana": {"image": "grafana/grafana", "environment": {"GF_SECURITY_ADMIN_PASSWORD": "grafana",
                                                                              "GF_SECURITY_ADMIN_USER": "grafana"}}},
                      tmp_path)
    grafana = service(result, "grafana")
    assert grafana["environment"]["GF_SECURITY_ADMIN_USER"] == "grafana"
    assert "{grafana.host}" not in str(result.data)


def test_host_words_at_either_end_of_a_name_part_still_name_a_host(tmp_path):
    # Names resolve as written; only a service the config renames (my_db -> my-db) shows where a value was
    # taken for a host name.
    env = {"PGHOST": "my_db", "DB_HOSTNAME": "my_db", "REDIS_ADDR": "my_db", "app.server": "my_db",
           "SECURITYX": "my_db"}
    result = imported({"my_db": {"image": "postgres"}, "app": {"image": "acme/app", "environment": env}}, tmp_path)
    app = service(result, "app")["environment"]
    assert {k: app[k] for k in ("PGHOST", "DB_HOSTNAME", "REDIS_ADDR", "app.server")} == dict.fromkeys(
        ("PGHOST", "DB_HOSTNAME", "REDIS_ADDR", "app.server"), "{my-db.host}")
    assert app["SECURITYX"] == "my_db"


def test_environment_names_with_dots_are_carried_over_and_valid(tmp_path):
    result = imported({"es": {"image": "elasticsearch:8.15.0", "environment": ["discovery.type=single-node",
                                                                              "xpack.security.enabled=false"]}},
                      tmp_path)
    app = validated(result, tmp_path)
    assert app.service("es").environment == {"discovery.type": "single-node", "xpack.security.enabled": "false"}


def test_config_still_refuses_names_no_process_could_read(tmp_path):
    for name in ("1ABC", "A-B", "A=B", ".A"):
        assert not config.ENV_VAR.match(name), name


def test_an_expose_range_is_carried_whole_or_said_not_cut_silently(tmp_path):
    result = imported({"app": {"image": "acme/app", "expose": ["3000-3005", "7000-7099"]},
                       "web": {"image": "acme/web", "depends_on": ["app"]}}, tmp_path)
    assert service(result, "app")["port"] == 3000
    assert service(result, "app")["ports"] == [3001, 3002, 3003, 3004, 3005, 7000]
    assert not findings(result.warnings, "app", "expose[0]")
    assert "port range '7000-7099' (100 ports): only 7000 is opened" in findings(result.warnings, "app", "expose[1]")


def test_ports_the_service_listens_on_besides_its_own_are_not_also_said_lost(tmp_path):
    result = imported({"xmpp": {"image": "acme/xmpp", "expose": ["5222", "5269", "5280"]},
                       "web": {"image": "acme/web", "depends_on": ["xmpp"]}}, tmp_path)
    assert service(result, "xmpp")["ports"] == [5269, 5280]
    assert not [f for f in result.warnings if f.service == "xmpp" and f.key == "ports"]


# --- messages -------------------------------------------------------------------------------------------


def test_a_bind_that_cannot_be_carried_is_not_also_said_to_become_files(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "kong.yaml").write_text("_format_version: '3.0'\n")
    result = imported({"kong": {"image": "kong:3.9", "volumes": ["./config:/opt/kong"]}}, tmp_path)
    warning = findings(result.warnings, "kong", "volumes[0]")
    assert "not carried over" in warning and "/opt/kong/kong.yaml" in warning
    assert not findings(result.notes, "kong", "volumes[0]")
    assert result.file_contents == {}  # nothing is copied beside app.yaml for files the config does not hold
    assert "files" not in service(result, "kong")


def test_a_bind_that_is_carried_is_noted_and_not_warned(tmp_path):
    (tmp_path / "nginx.conf").write_text("events {}\n")
    result = imported({"web": {"image": "nginx:1.27", "volumes": ["./nginx.conf:/etc/nginx/nginx.conf:ro"]}}, tmp_path)
    assert "becomes `files`" in findings(result.notes, "web", "volumes[0]")
    assert not findings(result.warnings, "web", "volumes[0]")
    assert result.file_contents == {"nginx.conf": "events {}\n"}


def test_an_empty_folder_is_said_to_be_empty(tmp_path):
    (tmp_path / "uploads").mkdir()
    result = imported({"web": {"image": "nginx:1.27", "volumes": ["./uploads:/srv/uploads"]}}, tmp_path)
    warning = findings(result.warnings, "web", "volumes[0]")
    assert "empty" in warning
    assert "0 files" not in warning and "only up to" not in warning


def test_the_docker_socket_is_a_decision_not_a_missing_path(tmp_path):
    result = imported({"proxy": {"image": "nginxproxy/nginx-proxy",
                                 "volumes": ["/var/run/docker.sock:/tmp/docker.sock:ro", "/srv/data:/data"]}}, tmp_path)
    socket = findings(result.warnings, "proxy", "volumes[0]")
    assert "ECS hosts have it" in socket and "not carried over" in socket and "do not have" not in socket
    assert "no host path" in findings(result.warnings, "proxy", "volumes[1]")


def test_one_build_gives_one_repository(tmp_path):
    build = {"context": "./app", "dockerfile": "Dockerfile"}
    result = imported({"web": {"build": build}, "worker": {"build": dict(build), "command": ["celery", "worker"]},
                       "admin": {"build": {"context": "./app", "dockerfile": "Dockerfile.admin"}}}, tmp_path)
    assert service(result, "web")["repository"] == service(result, "worker")["repository"] == "web"
    assert service(result, "admin")["repository"] == "admin"
    assert findings(result.warnings, "web", "build") and not findings(result.warnings, "worker", "build")
    assert "the same build as web" in findings(result.notes, "worker", "build")
    validated(result, tmp_path)
