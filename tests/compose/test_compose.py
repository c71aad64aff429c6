"""Compose import: each mapping rule, each warning, the CLI, and three realistic Compose apps end to end.

Unit tests convert small Compose documents with `compose_services.convert` (files they need are written under
tmp_path); the fixtures in tests/compose/ go through the CLI into tmp_path, then must load,
validate, render and pass cfn-lint like any hand-written config.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, cfn_lint, lint
from templates_src import render  # noqa: E402
from templates_src.compose import command as compose_command  # noqa: E402
from templates_src.compose import context, networks, reading, volumes  # noqa: E402
from templates_src.compose import services as compose_services  # noqa: E402
from templates_src.app import checks, config, loading
from templates_src.compose.reading import ComposeError


FIXTURES = ROOT / "tests" / "compose" / "corpus"


# --- helpers -------------------------------------------------------------------------------------------


def imported(services: dict, tmp_path: Path, variables: dict | None = None, **top) -> context.Imported:
    """Convert a Compose document whose files live in tmp_path; app.yaml would go there too."""
    return compose_services.convert({"services": services, **top}, tmp_path, tmp_path, variables or {})


def service(result: context.Imported, name: str) -> dict:
    return next(s for s in result.data["services"] if s["name"] == name)


def warned(result: context.Imported, service_name: str, key: str) -> str:
    """The warning text for (service, key); fails when there is none."""
    found = [f.message for f in result.warnings if f.service == service_name and f.key == key]
    assert found, f"no warning for {service_name}.{key}; got {[str(f) for f in result.warnings]}"
    return " ".join(found)


def no_warning(result: context.Imported, service_name: str, key: str) -> None:
    assert not [f for f in result.warnings if f.service == service_name and f.key == key], result.warnings


def validated(result: context.Imported, base_dir: Path) -> config.App:
    """The imported data, sized, must pass the build's own validation."""
    data, _ = compose_command.size_cluster(result.data, base_dir, result.file_contents)
    app = config.parse(data, base_dir=base_dir, file_contents=result.file_contents)
    checks.validate(app)
    return app


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "templates_src", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


WEB = {"image": "nginx:1.27", "ports": ["8080:80"]}


# --- reading: malformed files are errors, never tracebacks ---------------------------------------------------


@pytest.mark.parametrize("text, fact", [
    ("services: [a", "not valid YAML at line"),
    ("- a\n- b\n", "expected a mapping with `services`, got a list"),
    ("version: '3'\n", "there is no `services` key"),
    ("services: {}\n", "at least one service"),
    ("services:\n  web: nginx\n", "services.web: must be a mapping, got a string"),
    ("services:\n  web:\n    image: nginx\n    ports: '80:80'\n", "services.web.ports: expected a list"),
    ("services:\n  web:\n    image: nginx\n    environment: 3\n", "services.web.environment: expected a list or a mapping"),
    ("services:\n  web: {image: nginx}\nvolumes: [a]\n", "volumes: must be a mapping"),
])
def test_malformed_compose_files_are_refused_with_the_reason(tmp_path, text, fact):
    path = tmp_path / "compose.yaml"
    path.write_text(text)
    with pytest.raises(ComposeError, match=None) as caught:
        reading.load(path)
    assert fact in str(caught.value)


def test_cli_refuses_a_malformed_file_with_exit_2_and_no_traceback(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: [nginx\n")
    run = cli("import-compose", str(tmp_path / "compose.yaml"), "-o", str(tmp_path / "app.yaml"))
    assert run.returncode == 2
    assert run.stderr.startswith("error:") and "Traceback" not in run.stderr
    assert not (tmp_path / "app.yaml").exists()


def test_cli_refuses_a_missing_file(tmp_path):
    run = cli("import-compose", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "app.yaml"))
    assert run.returncode == 2 and "cannot read" in run.stderr and "Traceback" not in run.stderr


def test_a_value_of_an_unexpected_shape_deep_inside_is_an_error_not_a_traceback(tmp_path):
    with pytest.raises(ComposeError, match="cannot read"):
        imported({"web": {"image": "nginx", "deploy": {"resources": "big"}}}, tmp_path)


# --- interpolation and env files ---------------------------------------------------------------------------

VARIABLES = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize("text, expected", [
    ("${SET}", "value"), ("$SET", "value"), ("a-${SET}-b", "a-value-b"), ("$SET.x", "value.x"),
    ("${UNSET:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"), ("${EMPTY-dflt}", ""), ("${UNSET-dflt}", "dflt"),
    ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("$${SET}", "${SET}"), ("$$SET", "$SET"), ("cost $5", "cost $5"),
    ("${UNSET:-${SET}}", "value"), ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
])
def test_interpolation_follows_compose(text, expected):
    unset = []
    assert reading.interpolate(text, VARIABLES.get, unset.append) == expected
    assert not unset


def test_an_unset_variable_without_default_is_empty_and_reported():
    unset = []
    assert reading.interpolate("x${NOPE}y$ALSO", VARIABLES.get, unset.append) == "xy"
    assert unset == ["NOPE", "ALSO"]


@pytest.mark.parametrize("text", ["${NOPE:?give it}", "${EMPTY:?give it}", "${NOPE?give it}"])
def test_a_required_variable_that_is_missing_is_an_error(text):
    with pytest.raises(ComposeError, match="give it"):
        reading.interpolate(text, VARIABLES.get, lambda name: None)


def test_unsupported_shell_forms_are_errors():
    with pytest.raises(ComposeError, match="unsupported"):
        reading.interpolate("${SET/a/b}", VARIABLES.get, lambda name: None)


def test_env_file_syntax():
    text = "\n".join([
        "# comment", "", "export PLAIN=a b", "COMMENTED=x # note", "HASH=x# kept", "SINGLE='$SET ${SET}'",
        'DOUBLE="v=$SET\\tend" # note', "REF=${SET}", "EARLIER=${PLAIN}", "EMPTY=", "BARE",
    ])
    values = reading.parse_env_file(text, VARIABLES.get)
    assert values == {"PLAIN": "a b", "COMMENTED": "x", "HASH": "x# kept", "SINGLE": "$SET ${SET}",
                      "DOUBLE": "v=value\tend", "REF": "value", "EARLIER": "a b", "EMPTY": "", "BARE": None}


def test_whole_file_is_interpolated_from_dot_env_beside_it_not_from_the_shell(tmp_path, monkeypatch):
    monkeypatch.setenv("TAG", "from-the-shell")
    (tmp_path / ".env").write_text("TAG=1.2\nPORT=9000\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: nginx:${TAG}\n    ports: ['${PORT}:80']\n    environment: ['X=${MISSING}']\n")
    result = compose_command.import_file(tmp_path / "compose.yaml", tmp_path / "app.yaml")
    web = service(result, "web")
    assert web["image"] == "nginx:1.2"
    assert web["public"]["port"] == 80 and web["port"] == 80
    assert any("MISSING is not set" in f.message for f in result.warnings)


def test_env_file_option_replaces_dot_env(tmp_path):
    (tmp_path / ".env").write_text("TAG=dotenv\n")
    (tmp_path / "prod.env").write_text("TAG=prod\n")
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:${TAG}\n")
    result = compose_command.import_file(tmp_path / "compose.yaml", tmp_path / "app.yaml",
                                         env_file=tmp_path / "prod.env")
    assert service(result, "web")["image"] == "nginx:prod"


# --- small parsers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, seconds", [("10s", 10), ("1m30s", 90), ("1h5m", 3900), ("500ms", 0.5),
                                            ("1m30s20ms", 90.02), (15, 15), ("2.5s", 2.5)])
def test_durations(value, seconds):
    assert reading.duration_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["10", "ten", "1x", "s"])
def test_bad_durations_are_refused(value):
    with pytest.raises(ValueError):
        reading.duration_seconds(value)


@pytest.mark.parametrize("value, mib", [("512M", 512), ("512m", 512), ("1g", 1024), ("1gb", 1024), ("1G", 1024),
                                        ("300m", 300), ("2048k", 2), ("1536kb", 2), (2**30, 1024), ("1.5g", 1536)])
def test_memory_in_mib(value, mib):
    assert reading.mebibytes(value) == mib


@pytest.mark.parametrize("value, units", [("0.5", 512), (1, 1024), ("2", 2048), ("0.25", 256), (1.5, 1536)])
def test_cpus_in_ecs_units(value, units):
    assert reading.cpu_units(value) == units


@pytest.mark.parametrize("entry, target, published, host_ip", [
    ("3000", 3000, None, ""), ("8000:80", 80, 8000, ""), ("127.0.0.1:8001:8001", 8001, 8001, "127.0.0.1"),
    ("[::1]:6001:6001", 6001, 6001, "::1"), (3000, 3000, None, ""), ("9090-9091:8080-8081", 8080, 9090, ""),
    ({"target": 80, "published": "8080", "host_ip": "0.0.0.0"}, 80, 8080, "0.0.0.0"),
])
def test_port_syntax(entry, target, published, host_ip):
    port = networks.parse_port(entry)
    assert (port.target, port.published, port.host_ip) == (target, published, host_ip)


# --- image, build, ports, public --------------------------------------------------------------------------


def test_image_is_kept_and_build_becomes_an_ecr_repository(tmp_path):
    result = imported({"db": {"image": "postgres:16"},
                       "api": {"build": {"context": "./api", "dockerfile": "Dockerfile.prod", "args": {"V": "1"}},
                               "ports": ["8080:8080"]}}, tmp_path)
    assert service(result, "db")["image"] == "postgres:16" and "repository" not in service(result, "db")
    api = service(result, "api")
    assert api["repository"] == "api" and "image" not in api
    build = warned(result, "api", "build")
    assert "./api" in build and "Dockerfile.prod" in build and "V=1" in build and "push it" in build


def test_services_built_as_one_image_share_one_repository(tmp_path):
    app = {"build": ".", "image": "shop:dev"}
    result = imported({"web": {**app, "ports": ["80:80"]}, "worker": dict(app)}, tmp_path)
    assert service(result, "web")["repository"] == service(result, "worker")["repository"] == "shop"


def test_a_build_arg_pointing_at_this_machine_is_warned(tmp_path):
    result = imported({"ui": {"build": {"context": ".", "args": ["API=http://localhost:8080"]}, "ports": ["80:3000"]}},
                      tmp_path)
    assert "build time" in warned(result, "ui", "build.args.API")


@pytest.mark.parametrize("svc, port", [
    ({"image": "app", "ports": ["8000:5000"]}, 5000),
    ({"image": "app", "expose": ["9000"]}, 9000),
    ({"image": "redis:7"}, 6379),
    ({"image": "docker.io/library/postgres:16@sha256:abc"}, 5432),
])
def test_container_port(tmp_path, svc, port):
    assert service(imported({"x": svc}, tmp_path), "x")["port"] == port


def test_no_port_anywhere_is_a_placeholder_and_a_warning(tmp_path):
    result = imported({"worker": {"image": "acme/worker"}}, tmp_path)
    assert service(result, "worker")["port"] == 8080
    assert "placeholder" in warned(result, "worker", "ports")


def test_several_ports_one_http_port_on_the_alb_the_others_on_the_network_load_balancer(tmp_path):
    result = imported({"app": {"image": "app", "ports": ["80:80", "9000:9000"]}}, tmp_path)
    assert service(result, "app")["port"] == 80 and service(result, "app")["public"] == {"port": 80}
    assert service(result, "app")["published"] == [{"port": 9000}]
    validated(result, tmp_path)


def test_udp_ports_and_ranges_get_listeners_and_a_range_ecs_cannot_register_is_warned(tmp_path):
    result = imported({"dns": {"image": "app", "ports": ["53:53/udp", "8000-8002:8000-8002", "7000-7009:7000-7009"]}},
                      tmp_path)
    dns = service(result, "dns")
    assert dns["port"] == 8000 and dns["public"] == {"port": 80}
    assert dns["published"] == [{"port": 53, "protocol": "UDP"}, {"port": 8001}, {"port": 8002}]
    assert "range" in warned(result, "dns", "ports[2]")
    validated(result, tmp_path)


def test_entry_service_listens_on_80_and_others_keep_their_published_port(tmp_path):
    result = imported({"ui": {"image": "ui", "ports": ["3000:3000"], "depends_on": ["api"]},
                       "api": {"image": "api", "ports": ["8080:8080"]},
                       "admin": {"image": "admin", "ports": ["3000"]}}, tmp_path)
    assert service(result, "ui")["public"] == {"port": 80}
    assert service(result, "ui")["url_output"] == "AppUrl"
    assert service(result, "api")["public"] == {"port": 8080}
    # Published on a random host port: a listener of its own, the container port when free.
    assert service(result, "admin")["public"] == {"port": 3000}
    validated(result, tmp_path)


def test_the_service_published_on_80_is_the_entry(tmp_path):
    result = imported({"api": {"image": "api", "ports": ["8080:8080"]}, "proxy": {"image": "nginx", "ports": ["80:80"]}},
                      tmp_path)
    assert service(result, "proxy")["public"] == {"port": 80}
    assert service(result, "api")["public"] == {"port": 8080}


def test_a_published_443_does_not_become_a_plain_http_listener(tmp_path):
    result = imported({"web": {"image": "web", "ports": ["80:80"]}, "tls": {"image": "tls", "ports": ["443:8443"]}},
                      tmp_path)
    # The container answers TLS itself: the Network Load Balancer passes it through as TCP.
    assert "public" not in service(result, "tls")
    assert service(result, "tls")["published"] == [{"port": 443, "target": 8443}]


def test_a_published_database_is_not_made_public(tmp_path):
    result = imported({"db": {"image": "postgres:16", "ports": ["5432:5432"]},
                       "cache": {"image": "acme/kv", "ports": ["6379:6379"]}}, tmp_path)
    assert "public" not in service(result, "db") and "public" not in service(result, "cache")
    assert "not made public" in warned(result, "db", "ports")
    assert "not made public" in warned(result, "cache", "ports")


def test_a_port_published_on_loopback_only_is_not_made_public(tmp_path):
    result = imported({"admin": {"image": "admin", "ports": ["127.0.0.1:9000:9000"]}}, tmp_path)
    assert "public" not in service(result, "admin")
    assert "this machine" in warned(result, "admin", "ports")


def test_public_services_without_a_probe_path_are_warned(tmp_path):
    result = imported({"web": WEB}, tmp_path)
    assert "GET /" in warned(result, "web", "healthcheck")


# --- environment ---------------------------------------------------------------------------------------------


def test_environment_list_and_map_forms(tmp_path):
    result = imported({"a": {"image": "a", "environment": ["X=1", "Y=a=b", "DEBUG=false"]},
                       "b": {"image": "b", "environment": {"X": 1, "DEBUG": False, "PI": 3.5}}}, tmp_path)
    assert service(result, "a")["environment"] == {"X": "1", "Y": "a=b", "DEBUG": "false"}
    assert service(result, "b")["environment"] == {"X": "1", "DEBUG": "false", "PI": "3.5"}


def test_a_bare_variable_comes_from_dot_env_or_is_left_out_with_a_warning(tmp_path):
    result = imported({"a": {"image": "a", "environment": ["FROM_ENV", "NOWHERE"]}}, tmp_path, {"FROM_ENV": "yes"})
    assert service(result, "a")["environment"] == {"FROM_ENV": "yes"}
    assert "1 variable with no value in Compose, .env or env_file left out, as `docker compose up` leaves them " \
           "out when the shell does not set them: NOWHERE;" in warned(result, "a", "environment")


def test_env_files_are_read_relative_to_the_compose_file_and_environment_wins(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "a.env").write_text("A=1\nB=from-a\nREF=${TAG}\n")
    (tmp_path / "conf" / "b.env").write_text("B=from-b\n")
    result = imported({"a": {"image": "a", "env_file": ["conf/a.env", {"path": "conf/b.env"}],
                             "environment": {"A": "from-environment"}}}, tmp_path, {"TAG": "t"})
    assert service(result, "a")["environment"] == {"A": "from-environment", "B": "from-b", "REF": "t"}


def test_a_missing_env_file_is_warned_unless_optional(tmp_path):
    result = imported({"a": {"image": "a", "env_file": "missing.env"},
                       "b": {"image": "b", "env_file": [{"path": "missing.env", "required": False}]}}, tmp_path)
    assert "cannot read" in warned(result, "a", "env_file")
    no_warning(result, "b", "env_file")


# A service name resolves as written (the VPC's search domain is the namespace): values keep it.
@pytest.mark.parametrize("variable, value, expected", [
    ("DB_HOST", "db", "db"),
    ("WORDPRESS_DB_HOST", "db:3306", "db:3306"),
    # The password leaves the URL for a secret (tests/compose/test_import_output.py).
    ("DATABASE_URL", "postgres://app:pw@db:5432/app", "postgres://app@db:5432/app"),
    ("BROKER", "redis://cache:6379/0", "redis://cache:6379/0"),
    ("API", "http://db/x", "http://db/x"),
    # A word that happens to be a service name is not a host.
    ("CACHE_BACKEND", "cache", "cache"),
    ("NOTE", "database db is fine", "database db is fine"),
])
def test_service_names_in_values_stay_as_they_resolve(tmp_path, variable, value, expected):
    result = imported({"app": {"image": "app", "environment": {variable: value}},
                       "db": {"image": "postgres"}, "cache": {"image": "redis"}}, tmp_path)
    assert service(result, "app")["environment"].get(variable, "(secret)") == expected


def test_renamed_services_are_referenced_by_their_new_name(tmp_path):
    result = imported({"app": {"image": "app", "environment": {"DB_HOST": "my_db"}}, "my_db": {"image": "postgres"}},
                      tmp_path)
    assert service(result, "app")["environment"]["DB_HOST"] == "{my-db.host}"
    validated(result, tmp_path)


def test_this_machines_published_url_becomes_the_public_url(tmp_path):
    result = imported({"ui": {"image": "ui", "ports": ["3000:3000"], "environment": {
                           "API": "http://localhost:8080", "DOCS": "http://127.0.0.1:8080/docs/", "OTHER": "http://localhost:9"}},
                       "api": {"image": "api", "ports": ["8080:8080"]}}, tmp_path)
    env = service(result, "ui")["environment"]
    assert env["API"] == "{api.url}" and env["DOCS"] == "{api.url}/docs"
    assert env["OTHER"] == "http://localhost:9"
    assert "this machine" in warned(result, "ui", "environment.OTHER")
    validated(result, tmp_path)


# --- secrets -------------------------------------------------------------------------------------------------


def test_compose_secrets_become_generated_secrets_written_where_compose_mounted_them(tmp_path):
    result = imported({
        "db": {"image": "postgres", "secrets": ["db_pw"], "environment": {"POSTGRES_PASSWORD_FILE": "/run/secrets/db_pw"}},
        "app": {"image": "app", "secrets": [{"source": "db_pw", "target": "password"}, "api_token"]},
    }, tmp_path, secrets={"db_pw": {"file": "./db_pw.txt"}, "api_token": {"environment": "TOKEN"}})
    assert result.data["secrets"] == {"db-pw": {"description": "Compose secret db_pw"},
                                      "api-token": {"description": "Compose secret api_token"}}
    # postgres's entrypoint is known: the wrapper writes the file its *_FILE variable names.
    db = service(result, "db")
    assert db["secret_files"] == {"/run/secrets/db_pw": "db-pw"} and "secrets" not in db
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_pw"
    # app's is not: no wrapper can write the files, so the secrets come as variables.
    assert service(result, "app")["secrets"] == {"PASSWORD": "db-pw", "API_TOKEN": "api-token"}
    assert "/run/secrets/password" in warned(result, "app", "secrets[0]")
    assert "generates its value" in warned(result, "", "secrets.db_pw") and "./db_pw.txt" in warned(result, "", "secrets.db_pw")
    validated(result, tmp_path)


def test_an_undeclared_secret_is_left_out_with_a_warning(tmp_path):
    result = imported({"app": {"image": "app", "secrets": ["nope"]}}, tmp_path)
    assert "not declared" in warned(result, "app", "secrets[0]")


def test_plain_passwords_become_generated_secrets_shared_by_value(tmp_path):
    result = imported({
        "db": {"image": "mysql", "environment": {"MYSQL_PASSWORD": "pw1", "MYSQL_ROOT_PASSWORD": "root",
                                                 "MYSQL_ALLOW_EMPTY_PASSWORD": "no"}},
        "wp": {"image": "wordpress", "environment": {"WORDPRESS_DB_PASSWORD": "pw1", "WORDPRESS_DB_HOST": "db"}},
    }, tmp_path)
    assert service(result, "db")["secrets"] == {"MYSQL_PASSWORD": "mysql-password",
                                                "MYSQL_ROOT_PASSWORD": "mysql-root-password"}
    assert service(result, "wp")["secrets"] == {"WORDPRESS_DB_PASSWORD": "mysql-password"}
    assert service(result, "db")["environment"] == {"MYSQL_ALLOW_EMPTY_PASSWORD": "no"}
    assert any("not copied" in f.message for f in result.notes)
    validated(result, tmp_path)


def test_a_password_inside_a_url_leaves_the_url_for_the_secret_it_shares(tmp_path):
    result = imported({"db": {"image": "postgres", "environment": {"POSTGRES_PASSWORD": "s3cret"}},
                       "app": {"image": "app", "environment": {"DATABASE_URL": "postgres://u:s3cret@db/app"}}}, tmp_path)
    assert service(result, "db")["secrets"] == {"POSTGRES_PASSWORD": "postgres-password"}
    assert service(result, "app")["secrets"] == {"DATABASE_URL_PASSWORD": "postgres-password"}
    assert service(result, "app")["environment"] == {"DATABASE_URL": "postgres://u@db/app"}
    assert "DATABASE_URL_PASSWORD" in warned(result, "app", "environment.DATABASE_URL")


def test_other_secret_looking_values_become_secrets_set_after_deploying(tmp_path):
    result = imported({"app": {"image": "app", "environment": {"STRIPE_API_KEY": "sk_live", "SECRET_KEY": "x"}}},
                      tmp_path)
    assert "environment" not in service(result, "app")
    assert service(result, "app")["secrets"] == {"STRIPE_API_KEY": "stripe-api-key", "SECRET_KEY": "secret-key"}
    assert "set it in Secrets Manager after deploying" in warned(result, "app", "environment.STRIPE_API_KEY")


# --- depends_on ------------------------------------------------------------------------------------------------


def test_depends_on_short_and_long_forms(tmp_path):
    healthy = {"image": "postgres", "healthcheck": {"test": "pg_isready"}}
    result = imported({"db": healthy, "cache": {"image": "redis"},
                       "a": {"image": "a", "depends_on": ["db", "cache"]},
                       "b": {"image": "b", "depends_on": {"db": {"condition": "service_healthy"},
                                                          "cache": {"condition": "service_started"}}}}, tmp_path)
    assert service(result, "a")["depends_on"] == ["db", "cache"]
    assert service(result, "b")["depends_on"] == ["db", "cache"]
    no_warning(result, "b", "depends_on.db")


def test_service_healthy_on_a_service_without_a_health_check_is_warned(tmp_path):
    result = imported({"db": {"image": "acme/db"}, "a": {"image": "a", "depends_on": {"db": {"condition": "service_healthy"}}}},
                      tmp_path)
    assert service(result, "a")["depends_on"] == ["db"]
    assert "no health check" in warned(result, "a", "depends_on.db")


def test_a_one_off_job_is_left_out_and_its_dependents_are_told(tmp_path):
    result = imported({"migrate": {"image": "app", "command": "migrate"},
                       "web": {"image": "app", "depends_on": {"migrate": {"condition": "service_completed_successfully"}}}},
                      tmp_path)
    assert [s["name"] for s in result.data["services"]] == ["web"]
    assert "one-off job" in warned(result, "migrate", "")
    assert "run it before deploying" in warned(result, "web", "depends_on.migrate")
    assert "depends_on" not in service(result, "web")


def test_required_false_restart_true_and_unknown_services_are_warned(tmp_path):
    result = imported({"db": {"image": "postgres"}, "a": {"image": "a", "depends_on": {
        "db": {"condition": "service_started", "required": False, "restart": True}, "ghost": {}}}}, tmp_path)
    assert service(result, "a")["depends_on"] == ["db"]
    warned(result, "a", "depends_on.db.required")
    warned(result, "a", "depends_on.db.restart")
    assert "unknown service" in warned(result, "a", "depends_on.ghost")


def test_profiled_services_are_left_out_and_so_are_dependencies_on_them(tmp_path):
    result = imported({"debug": {"image": "x", "profiles": ["debug"]}, "a": {"image": "a", "depends_on": ["debug"]}},
                      tmp_path)
    assert [s["name"] for s in result.data["services"]] == ["a"]
    assert "profile debug" in warned(result, "debug", "profiles")
    assert "not imported" in warned(result, "a", "depends_on.debug")


# --- healthcheck -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("test, command", [
    (["CMD", "curl", "-f", "http://localhost/a b"], "curl -f 'http://localhost/a b'"),
    (["CMD-SHELL", "pg_isready -U $$POSTGRES_USER || exit 1"], "pg_isready -U $$POSTGRES_USER || exit 1"),
    ("wget -q --spider http://localhost:80/ || exit 1", "wget -q --spider http://localhost:80/ || exit 1"),
])
def test_health_check_forms_become_a_shell_command(tmp_path, test, command):
    result = imported({"a": {"image": "a", "healthcheck": {"test": test}}}, tmp_path)
    assert service(result, "a")["health_check"]["command"] == command


@pytest.mark.parametrize("spec", [{"test": ["NONE"]}, {"disable": True, "test": "x"}])
def test_disabled_health_checks_are_none(tmp_path, spec):
    assert "health_check" not in service(imported({"a": {"image": "a", "healthcheck": spec}}, tmp_path), "a")


def test_health_check_durations_are_seconds_within_ecs_bounds(tmp_path):
    result = imported({"a": {"image": "a", "healthcheck": {"test": "true", "interval": "1m30s", "timeout": "10s",
                                                          "retries": 20, "start_period": "10m", "start_interval": "1s"}}},
                      tmp_path)
    check = service(result, "a")["health_check"]
    assert (check["interval"], check["timeout"], check["retries"], check["start_period"]) == (90, 10, 10, 300)
    assert "1-10" in warned(result, "a", "healthcheck.retries")
    assert "0-300" in warned(result, "a", "healthcheck.start_period")
    warned(result, "a", "healthcheck.start_interval")
    validated(result, tmp_path)


def test_a_timeout_not_shorter_than_the_interval_is_shortened(tmp_path):
    result = imported({"a": {"image": "a", "healthcheck": {"test": "true", "interval": "5s", "timeout": "30s"}}}, tmp_path)
    assert service(result, "a")["health_check"]["timeout"] == 4
    assert "shorter than the interval" in warned(result, "a", "healthcheck.timeout")


def test_timings_without_a_test_are_warned(tmp_path):
    result = imported({"a": {"image": "a", "healthcheck": {"interval": "5s"}}}, tmp_path)
    assert "health_check" not in service(result, "a")
    assert "HEALTHCHECK" in warned(result, "a", "healthcheck")


def test_the_load_balancer_probes_the_path_the_health_check_calls(tmp_path):
    result = imported({"api": {"image": "api", "ports": ["8080:8080"], "healthcheck": {
        "test": ["CMD", "curl", "-f", "http://localhost:8080/actuator/health"]}}}, tmp_path)
    assert service(result, "api")["health_check"]["path"] == "/actuator/health"
    no_warning(result, "api", "healthcheck")


# --- command, entrypoint ----------------------------------------------------------------------------------------


def test_command_and_entrypoint_strings_are_split_like_a_shell(tmp_path):
    result = imported({"a": {"image": "a", "entrypoint": "/bin/sh -c", "command": "echo 'a b' \"c\""},
                       "b": {"image": "b", "command": ["run", 3]}}, tmp_path)
    assert service(result, "a")["entrypoint"] == ["/bin/sh", "-c"]
    assert service(result, "a")["command"] == ["echo", "a b", "c"]
    assert service(result, "b")["command"] == ["run", "3"]


def test_clearing_the_image_command_is_warned(tmp_path):
    result = imported({"a": {"image": "a", "entrypoint": [], "command": ""}}, tmp_path)
    assert "entrypoint" not in service(result, "a") and "command" not in service(result, "a")
    warned(result, "a", "entrypoint")
    warned(result, "a", "command")


def test_a_renamed_host_named_in_a_command_is_warned(tmp_path):
    services = {"my_db": {"image": "postgres"}, "db": {"image": "redis"},
                "app": {"image": "app", "command": "wait-for my_db:5432 db:6379 -- serve"}}
    result = compose_services.convert({"name": "shop", "services": services}, tmp_path, tmp_path)
    assert "which is 'my-db' here" in warned(result, "app", "command")
    assert "'db'" not in warned(result, "app", "command"), "db resolves as it is written"


# --- resources, replicas, deployment -----------------------------------------------------------------------------


def test_resource_limits_become_task_cpu_and_memory(tmp_path):
    result = imported({"a": {"image": "a", "deploy": {"resources": {"limits": {"cpus": "1.5", "memory": "1536M"}}}},
                       "b": {"image": "b", "cpus": 0.5, "mem_limit": "1g"}}, tmp_path)
    assert (service(result, "a")["cpu"], service(result, "a")["memory"]) == (1536, 1536)
    assert (service(result, "b")["cpu"], service(result, "b")["memory"]) == (512, 1024)


def test_no_limits_get_defaults_and_a_warning(tmp_path):
    result = imported({"a": {"image": "a"}}, tmp_path)
    assert (service(result, "a")["cpu"], service(result, "a")["memory"]) == (256, 512)
    assert "set `cpu`" in warned(result, "a", "deploy.resources.limits.cpus")
    assert "set `memory`" in warned(result, "a", "deploy.resources.limits.memory")


def test_limits_below_the_ecs_minimum_are_raised_with_a_warning(tmp_path):
    result = imported({"a": {"image": "a", "deploy": {"resources": {"limits": {"cpus": "0.05", "memory": "4m"}}}}},
                      tmp_path)
    assert (service(result, "a")["cpu"], service(result, "a")["memory"]) == (128, 6)
    assert "minimum" in warned(result, "a", "deploy.resources.limits.cpus")
    assert "minimum" in warned(result, "a", "deploy.resources.limits.memory")


def test_reservations_alone_size_the_task_and_beside_limits_are_warned(tmp_path):
    result = imported({"a": {"image": "a", "deploy": {"resources": {"reservations": {"cpus": "0.5", "memory": "256M"}}}},
                       "b": {"image": "b", "deploy": {"resources": {"limits": {"memory": "1g"},
                                                                    "reservations": {"memory": "512m"}}}}}, tmp_path)
    assert (service(result, "a")["cpu"], service(result, "a")["memory"]) == (512, 256)
    warned(result, "b", "deploy.resources.reservations")


def test_replicas_and_update_order(tmp_path):
    result = imported({"a": {"image": "a", "deploy": {"replicas": 3, "update_config": {"order": "stop-first",
                                                                                         "parallelism": 2}}},
                       "b": {"image": "b", "scale": 2},
                       "c": {"image": "c", "deploy": {"mode": "global", "restart_policy": {"condition": "any"}}}},
                      tmp_path)
    assert service(result, "a")["desired_count"] == 3
    assert service(result, "a")["deployment"] == {"min_healthy_percent": 0, "max_percent": 100}
    assert service(result, "b")["desired_count"] == 2
    warned(result, "a", "deploy.update_config.parallelism")
    assert "global" in warned(result, "c", "deploy.mode")
    warned(result, "c", "deploy.restart_policy")


def test_data_stores_stop_before_their_replacement_starts(tmp_path):
    result = imported({"db": {"image": "postgres:16"}, "web": {"image": "web"}}, tmp_path)
    assert service(result, "db")["deployment"] == {"min_healthy_percent": 0, "max_percent": 100}
    assert "deployment" not in service(result, "web")


# --- volumes and configs -------------------------------------------------------------------------------------------


def test_a_named_volume_becomes_data_on_efs_owned_by_the_images_user(tmp_path):
    result = imported({"db": {"image": "postgres:16-alpine",
                              "volumes": ["data:/var/lib/postgresql/data", "more:/srv", "/tmp/cache",
                                          {"type": "tmpfs", "target": "/run"}]},
                       "cache": {"image": "ghcr.io/acme/cache:1", "volumes": ["blob:/blob"]}},
                      tmp_path, volumes={"data": None, "more": None, "blob": None})
    db = service(result, "db")
    assert db["data"] == {"path": "/var/lib/postgresql/data", "uid": 70, "gid": 70}  # postgres on alpine
    assert db["environment"]["PGDATA"] == "/var/lib/postgresql/data/pgdata"
    assert any(f.key == "volumes[0]" and "EFS" in f.message for f in result.notes if f.service == "db")
    assert "one data directory" in warned(result, "db", "volumes[1]")
    assert "does not outlive" in warned(result, "db", "volumes[2]")
    assert "tmpfs" in warned(result, "db", "volumes[3]")
    # an image whose user is unknown: the volume is listed, never silently dropped
    assert "user id is unknown" in warned(result, "cache", "volumes[0]")


def test_a_bind_mounted_file_becomes_files_with_the_images_entrypoint(tmp_path):
    (tmp_path / "init.sql").write_text("create table t ();\n")
    out = tmp_path / "out"
    out.mkdir()
    result = compose_services.convert({"services": {"db": {"image": "postgres:16", "command": ["postgres", "-c", "a=b"],
                                                  "volumes": ["./init.sql:/docker-entrypoint-initdb.d/init.sql:ro"]}}},
                             tmp_path, out, {})
    db = service(result, "db")
    assert db["files"] == {"/docker-entrypoint-initdb.d/init.sql": "init.sql"}
    assert db["entrypoint"] == ["docker-entrypoint.sh"] and db["command"] == ["postgres", "-c", "a=b"]
    validated(result, out)


def test_a_bind_mounted_folder_of_a_few_files_becomes_files(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("a")
    (tmp_path / "conf.d" / "b.conf").write_text("b")
    result = imported({"web": {"image": "nginx", "volumes": ["./conf.d:/etc/nginx/conf.d"]}}, tmp_path)
    assert service(result, "web")["files"] == {"/etc/nginx/conf.d/a.conf": "conf.d/a.conf",
                                               "/etc/nginx/conf.d/b.conf": "conf.d/b.conf"}


def test_bind_mounts_that_cannot_become_files_are_warned(tmp_path):
    (tmp_path / "src").mkdir()
    for i in range(volumes.MAX_FILES + 1):
        (tmp_path / "src" / f"{i}.py").write_text("x")
    (tmp_path / "app.ini").write_text("x")
    result = imported({"app": {"image": "acme/app", "volumes": [".:/app", "/var/run/docker.sock:/var/run/docker.sock",
                                                                "./missing:/m", "./app.ini:/etc/app.ini"]}}, tmp_path)
    assert "the image must contain" in warned(result, "app", "volumes[0]")
    assert "the config mounts no host path" in warned(result, "app", "volumes[1]")
    assert "does not exist" in warned(result, "app", "volumes[2]")
    # A file, but nothing known to hand over to: the image's entrypoint is unknown.
    assert "entrypoint" in warned(result, "app", "volumes[3]")
    assert "files" not in service(result, "app")


def test_a_file_config_becomes_files(tmp_path):
    (tmp_path / "nginx.conf").write_text("events {}\n")
    result = imported({"web": {"image": "nginx:1.27", "configs": [{"source": "conf", "target": "/etc/nginx/nginx.conf"},
                                                                  "inline"]}},
                      tmp_path, configs={"conf": {"file": "./nginx.conf"}, "inline": {"content": "x"}})
    web = service(result, "web")
    assert web["files"] == {"/etc/nginx/nginx.conf": "nginx.conf"}
    assert web["entrypoint"] == ["/docker-entrypoint.sh"]
    warned(result, "web", "configs[1]")


# --- keys the config has no place for ------------------------------------------------------------------------------


@pytest.mark.parametrize("key, value", [
    ("labels", {"a": "b"}), ("logging", {"driver": "syslog"}),
    ("extra_hosts", ["h=1.2.3.4"]), ("privileged", True), ("ulimits", {"nofile": 1024}),
    ("container_name", "x"), ("working_dir", "/app"), ("stop_grace_period", "1m"),
    ("restart", "on-failure"), ("restart", "no"), ("x-custom", 1), ("sysctls", {"a": 1}),
])
def test_every_other_key_is_warned_by_service_and_key(tmp_path, key, value):
    result = imported({"a": {"image": "a", key: value}}, tmp_path)
    assert warned(result, "a", key)


@pytest.mark.parametrize("policy", ["always", "unless-stopped"])
def test_restart_policies_ecs_already_follows_are_notes(tmp_path, policy):
    result = imported({"a": {"image": "a", "restart": policy}}, tmp_path)
    no_warning(result, "a", "restart")
    assert any(f.key == "restart" for f in result.notes)


def test_top_level_keys_without_a_place_are_warned(tmp_path):
    result = imported({"a": {"image": "a"}}, tmp_path, networks={"backend": {"external": True}},
                      include=["other.yaml"], **{"x-common": {}}, volumes={"ext": {"external": True}})
    for key in ("networks.backend", "include", "x-common", "volumes.ext"):
        warned(result, "", key)


# --- names ----------------------------------------------------------------------------------------------------


def test_service_names_become_dns_labels_that_fit_aws_limits(tmp_path):
    long_public = "a-very-long-public-frontend-service"
    result = imported({"My_Service.v2": {"image": "a"}, "my-service-v2": {"image": "b"},
                       long_public: {"image": "c", "ports": ["80:80"]}, "9lives": {"image": "d"}}, tmp_path)
    names = [s["name"] for s in result.data["services"]]
    assert names[:2] == ["my-service-v2", "my-service-v2-2"]
    assert long_public.startswith(names[2]) and len(names[2]) < len(long_public)
    assert names[3] == "lives"
    validated(result, tmp_path)


@pytest.mark.parametrize("top, folder, name, expected", [
    ({"name": "Shop"}, "x", None, "shop"), ({}, "my_project", None, "my-project"),
    ({}, "ecs-demo", None, "app-ecs-demo"), ({"name": "averyveryverylongname"}, "x", None, "averyveryver"),
    ({"name": "ignored"}, "x", "given", "given"),
])
def test_app_name(tmp_path, top, folder, name, expected):
    (tmp_path / folder).mkdir()
    result = compose_services.convert({"services": {"a": {"image": "a"}}, **top}, tmp_path / folder, tmp_path, {}, name)
    assert result.data["name"] == expected
    assert result.data["namespace"] == f"{expected}.local"


def test_arm64_images_get_graviton_hosts(tmp_path):
    result = imported({"a": {"image": "a", "platform": "linux/arm64"}}, tmp_path)
    assert service(result, "a")["architectures"] == ["arm64"]
    assert result.data["cluster"]["instance_type"] == "t4g.medium"
    validated(result, tmp_path)


def test_the_cluster_is_sized_for_the_tasks(tmp_path):
    result = imported({f"s{i}": {"image": "a"} for i in range(7)}, tmp_path)
    data, message = compose_command.size_cluster(result.data, tmp_path)
    # t3.medium runs two awsvpc tasks: 7 tasks, plus one rolling-deployment surge each, on 7 hosts; one more
    # for ECS's own placement. Managed scaling chooses how many run: no desired capacity.
    assert data["cluster"]["max_size"] == 8 and "desired_capacity" not in data["cluster"]
    assert "14 tasks" in message and "need 7 x t3.medium; 7 run on 4" in message
    validated(result, tmp_path)


# --- the CLI ----------------------------------------------------------------------------------------------------


def write_compose(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docker-compose.yaml"
    path.write_text(text)
    return path


SMALL = "services:\n  web:\n    image: nginx:1.27\n    ports: ['8080:80']\n    networks: [front]\n"


def test_cli_writes_the_config_with_a_header_and_the_warnings_as_comments(tmp_path):
    source = write_compose(tmp_path / "shop", SMALL)
    out = tmp_path / "config" / "app.yaml"
    run = cli("import-compose", str(source), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert "warning: web.deploy.resources.limits.cpus:" in run.stderr
    text = out.read_text()
    assert text.startswith(f"# Imported from {source} by `python -m templates_src import-compose`.")
    assert "#   web.deploy.resources.limits.cpus:" in text and "#   web.networks: on front" in text
    app = loading.load(out)
    assert app.name == "shop" and app.services[0].public.port == 80


def test_cli_refuses_to_overwrite_without_force(tmp_path):
    source = write_compose(tmp_path, SMALL)
    out = tmp_path / "app.yaml"
    out.write_text("mine\n")
    run = cli("import-compose", str(source), "-o", str(out))
    assert run.returncode == 2 and "--force" in run.stderr
    assert out.read_text() == "mine\n"
    run = cli("import-compose", str(source), "--out", str(out), "--force")
    assert run.returncode == 0, run.stderr
    assert out.read_text().startswith("# Imported from")


def test_cli_refuses_an_app_the_build_would_refuse_and_names_the_fields(tmp_path):
    source = write_compose(tmp_path, "services:\n  big:\n    image: a\n    deploy: {resources: {limits: {memory: 64g}}}\n")
    run = cli("import-compose", str(source), "-o", str(tmp_path / "app.yaml"))
    assert run.returncode == 2
    assert "services[0] (big)" in run.stderr and "instance_type" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "app.yaml").exists()
    fits = cli("import-compose", str(source), "-o", str(tmp_path / "app.yaml"), "--instance-type", "r6i.4xlarge")
    assert fits.returncode == 0, fits.stderr


# --- three realistic apps, end to end ---------------------------------------------------------------------------


def import_fixture(name: str, tmp_path: Path) -> tuple[Path, str]:
    source = next((FIXTURES / name).glob("*compose*.y*ml"))
    out = tmp_path / "app.yaml"
    run = cli("import-compose", str(source), "-o", str(out))
    assert run.returncode == 0, run.stderr
    return out, run.stderr


def warnings_of(stderr: str) -> set[str]:
    """'service.key' of every warning the CLI printed."""
    return {line.removeprefix("warning: ").split(": ", 1)[0] for line in stderr.splitlines()
            if line.startswith("warning: ")}


EXPECTED_WARNINGS = {
    "dks": {"dks-db.ports", "dks-api.build", "dks-ui.build", "dks-ui.build.args.KNOWLEDGE_SHARE_API"},
    "wordpress": {"variable WORDPRESS_DEBUG is not set (no .env value, no default)",
                  "db.deploy.resources.limits.cpus",
                  "wordpress.volumes[1]", "wordpress.logging", "wordpress.healthcheck"},
    "pollster": {"x-app", "migrate", "flower.profiles", "worker.ports", "web.build",
                 "web.deploy.resources.reservations", "secrets.db_password", "secrets.django_secret_key",
                 "web.secrets[1]", "worker.secrets[1]", "web.depends_on.migrate", "web.deploy.update_config.parallelism",
                 "worker.stop_grace_period", "redis.deploy.resources.limits.cpus",
                 "db.shm_size", "db.ulimits"},
}


def lint_clean(app: config.App, tmp_path: Path) -> None:
    """cfn-lint (in this process, with make lint's rules) over the build and its local-URL variant."""
    build, local = tmp_path / "build", tmp_path / "local"
    render.write(render.render(app, "app.yaml"), build)
    render.write(render.render(app, "app.yaml", local_urls=True), local)
    for run in (cfn_lint(sorted(build.glob("*.yaml"))), cfn_lint([local / "main.yaml"], *lint.LOCAL_VARIANT_IGNORES)):
        assert run.returncode == 0, run.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_fixture_imports_loads_renders_and_lints_clean(name, tmp_path):
    out, stderr = import_fixture(name, tmp_path)
    assert warnings_of(stderr) == EXPECTED_WARNINGS[name]
    app = loading.load(out)
    assert render.render(app, "app.yaml")
    lint_clean(app, tmp_path)


def test_dks_compose_imports_as_the_hand_written_dks_config(tmp_path):
    out, _ = import_fixture("dks", tmp_path)
    imported_app, written = loading.load(out), loading.load(config.DEFAULT_CONFIG)

    def shape(app: config.App) -> dict:
        return {s.name: (s.image, s.repository, s.port, s.cpu, s.memory, s.public and s.public.port, s.depends_on,
                         sorted(s.environment), s.secrets, sorted(s.files), s.entrypoint, s.command, s.deployment,
                         s.health_check.path)
                for s in app.services}

    assert shape(imported_app) == shape(written)
    assert sorted(imported_app.secrets) == sorted(written.secrets)
    assert imported_app.service("dks-ui").environment == written.service("dks-ui").environment
    # The UI calls the API's public URL from its container: bridge, as in the hand-written config.
    assert [s.network_mode for s in imported_app.services] == [s.network_mode for s in written.services] == [
        "awsvpc", "awsvpc", "bridge"]
    # dks-db resolves as it is written; the hand-written config names its Cloud Map name, dks-db.dks.local.
    assert imported_app.service("dks-api").environment["DB_HOST"] == "dks-db"
    assert written.service("dks-api").environment["DB_HOST"] == "{dks-db.host}"
    assert imported_app.cluster == written.cluster
    assert list(imported_app.file_contents.values()) == list(written.file_contents.values())


def test_wordpress_keeps_its_database_private_and_its_passwords_secret(tmp_path):
    out, _ = import_fixture("wordpress", tmp_path)
    app = loading.load(out)
    db, wordpress = app.service("db"), app.service("wordpress")
    assert db.public is None and wordpress.public.port == 80
    assert wordpress.environment["WORDPRESS_DB_HOST"] == "db:3306"
    assert wordpress.secrets["WORDPRESS_DB_PASSWORD"] == db.secrets["MYSQL_PASSWORD"]
    assert db.command == ("--default-authentication-plugin=mysql_native_password",)
    assert "change-me" not in out.read_text()


def test_pollster_shares_its_image_and_leaves_the_job_and_debug_tool_behind(tmp_path):
    out, _ = import_fixture("pollster", tmp_path)
    app = loading.load(out)
    assert [s.name for s in app.services] == ["web", "worker", "redis", "db"]
    assert app.repositories == ("pollster",)
    web = app.service("web")
    assert web.desired_count == 2 and web.public.port == 80 and web.health_check.path == "/healthz/"
    assert web.secrets == {"DATABASE_PASSWORD": "db-password", "DJANGO_SECRET_KEY": "django-secret-key"}
    assert app.service("db").secret_files == {"/run/secrets/db_password": "db-password"}
    assert web.environment["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert app.service("worker").health_check.interval == 60
