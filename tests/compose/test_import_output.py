"""What the Compose import writes and prints cannot be steered by what it reads, and never holds a secret.

A line separator in a Compose key would end the comment line that names it in app.yaml and make
what follows live YAML; a secret's value must appear neither in app.yaml nor on stderr, whether it
is a password, a token, a build argument from .env or the password inside a URL.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT
from templates_src.compose import command, services as compose_services
from templates_src.app import config, loading


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "templates_src", "import-compose", *args], capture_output=True,
                          text=True, encoding="utf-8", env=env, timeout=120)


def write_compose(folder: Path, services: dict, env: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "compose.yaml"
    path.write_text(yaml.safe_dump({"services": services}, allow_unicode=False), encoding="utf-8")
    if env:
        (folder / ".env").write_text(env)
    return path


WEB = {"image": "nginx:1.27", "ports": ["8080:80"]}


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\r", "\n"])
def test_a_line_separator_in_a_key_cannot_write_yaml(tmp_path, separator):
    injected = f"x{separator}persistence: none{separator}#"
    source = write_compose(tmp_path, {"web": {**WEB, injected: "y"}})
    out = tmp_path / "app.yaml"
    run = cli(str(source), "-o", str(out))
    assert run.returncode == 0, run.stderr
    text = out.read_text(encoding="utf-8")
    assert not re.search("(^|[\n\r\x85\u2028\u2029])persistence", text), "no line starts with the key"
    assert separator == "\n" or separator not in text and separator not in run.stderr
    assert "persistence" in text, "the key is still named, escaped"
    assert loading.load(out).persistence == "efs"
    assert "persistence" not in yaml.safe_load(text)


def test_a_terminal_escape_in_a_value_is_printed_escaped(tmp_path):
    source = write_compose(tmp_path, {"web": {**WEB, "labels": {"a": "b"}, "\x1b[2Jcls": "x"}})
    run = cli(str(source), "-o", str(tmp_path / "app.yaml"))
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stderr and "\\x1b[2Jcls" in run.stderr


def test_the_written_file_must_read_back_as_the_validated_config(tmp_path):
    source = write_compose(tmp_path, {"web": WEB})
    out = tmp_path / "app.yaml"
    assert cli(str(source), "-o", str(out)).returncode == 0
    validated = loading.load(out)
    text = out.read_text()
    changed = tmp_path / "other" / "app.yaml"
    assert command._write_checked(text, changed, validated), "the same text reads back as the same config"
    assert not command._write_checked(text.replace("port: 80", "port: 81"), tmp_path / "o2" / "app.yaml", validated)
    assert not (tmp_path / "o2" / "app.yaml").exists()
    assert list((tmp_path / "o2").iterdir()) == [], "no temporary file is left behind"


SECRET_ENV = "NPM_TOKEN=npm_7fQx2Lk9PzR4\nDB_PASSWORD=Sup3r-S3cret-pw\n"


def test_no_secret_value_reaches_app_yaml_or_stderr(tmp_path):
    source = write_compose(tmp_path, {
        "db": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "${DB_PASSWORD}"}},
        "api": {"build": {"context": ".", "args": {"NPM_TOKEN": "${NPM_TOKEN}", "API": "http://localhost:8080"}},
                "ports": ["8080:8080"],
                "environment": {"DATABASE_URL": "postgres://app:${DB_PASSWORD}@db:5432/app",
                                "CACHE_URL": "redis://:hunter2-cache@cache:6379/0"},
                "depends_on": ["db"]},
    }, env=SECRET_ENV)
    out = tmp_path / "app.yaml"
    run = cli(str(source), "-o", str(out))
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    for value in ("npm_7fQx2Lk9PzR4", "Sup3r-S3cret-pw", "hunter2-cache"):
        assert value not in text and value not in run.stderr, value
    app = loading.load(out)
    api = app.service("api")
    assert api.environment["DATABASE_URL"] == "postgres://app@db:5432/app"
    assert api.secrets["DATABASE_URL_PASSWORD"] == app.service("db").secrets["POSTGRES_PASSWORD"]
    assert api.environment["CACHE_URL"] == "redis://@cache:6379/0" and "CACHE_URL_PASSWORD" in api.secrets
    assert "NPM_TOKEN" in text, "the build argument is named, its value is not"


@pytest.mark.parametrize("variable", ["DB_PWD", "SMTP_PASS", "REDIS_AUTH", "MYSQL_ROOT_PASSWORD", "PASSWORD_HASH",
                                      "GITHUB_TOKEN", "JWT_SECRET", "CLIENT_SECRET_VALUE", "STRIPE_KEY",
                                      "SENDGRID_API_KEY", "AWS_SECRET_ACCESS_KEY", "PRIVATE_KEY"])
def test_secret_looking_variables_become_secrets(tmp_path, variable):
    result = compose_services.convert({"services": {"app": {"image": "app", "environment": {variable: "v4lue-9x"}}}},
                             tmp_path, tmp_path, {})
    app = result.data["services"][0]
    assert variable in app["secrets"] and variable not in app.get("environment", {})
    assert "v4lue-9x" in result.secret_values
    assert "v4lue-9x" not in " ".join(result.say(f) for f in result.warnings + result.notes)


@pytest.mark.parametrize("variable", ["POSTGRES_PASSWORD_FILE", "AWS_ACCESS_KEY_ID", "TOKEN_URL", "PWD", "SORT_KEY",
                                      "PASSWORD_MIN_LENGTH"])
def test_names_that_only_look_secret_stay_plain(tmp_path, variable):
    result = compose_services.convert({"services": {"app": {"image": "app", "environment": {variable: "v4lue-9x"}}}},
                             tmp_path, tmp_path, {})
    assert result.data["services"][0]["environment"] == {variable: "v4lue-9x"}


def test_a_value_holding_a_secret_is_a_secret_as_a_whole(tmp_path):
    result = compose_services.convert({"services": {"app": {"image": "app", "environment": {
        "DB_PASSWORD": "Sup3r-S3cret-pw", "JDBC": "jdbc:postgresql://db/app?password=Sup3r-S3cret-pw"}}}},
        tmp_path, tmp_path, {})
    app = result.data["services"][0]
    assert set(app["secrets"]) == {"DB_PASSWORD", "JDBC"} and "environment" not in app
    assert "as a whole" in " ".join(f.message for f in result.warnings if f.key == "environment.JDBC")


def test_files_go_beside_app_yaml_when_it_is_written_elsewhere(tmp_path):
    project = tmp_path / "project"
    source = write_compose(project, {"web": {**WEB, "volumes": ["./nginx.conf:/etc/nginx/nginx.conf:ro"]}})
    (project / "nginx.conf").write_text("events {}\n")
    out = tmp_path / "deploy" / "app.yaml"
    run = cli(str(source), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert (out.parent / "nginx.conf").read_text() == "events {}\n"
    assert loading.load(out).file_contents == {"nginx.conf": "events {}\n"}
    # A different file already there is not overwritten without --force.
    (out.parent / "nginx.conf").write_text("mine\n")
    again = cli(str(source), "-o", str(out), "--force")
    assert again.returncode == 0 and (out.parent / "nginx.conf").read_text() == "events {}\n"
    (out.parent / "nginx.conf").write_text("mine\n")
    out.unlink()
    refused = cli(str(source), "-o", str(out))
    assert refused.returncode == 2 and "nginx.conf" in refused.stderr and "--force" in refused.stderr
    assert (out.parent / "nginx.conf").read_text() == "mine\n" and not out.exists()


def test_a_secret_interpolated_into_a_health_check_becomes_its_variable(tmp_path):
    source = write_compose(tmp_path, {"db": {
        "image": "mysql:8", "environment": {"MYSQL_ROOT_PASSWORD": "${DB_PASSWORD}"},
        "healthcheck": {"test": ["CMD-SHELL", "mysqladmin ping -uroot -p${DB_PASSWORD}"]}}}, env=SECRET_ENV)
    out = tmp_path / "app.yaml"
    run = cli(str(source), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert "Sup3r-S3cret-pw" not in out.read_text() and "Sup3r-S3cret-pw" not in run.stderr
    db = loading.load(out).service("db")
    assert db.health_check.command == 'mysqladmin ping -uroot -p"${MYSQL_ROOT_PASSWORD}"'
    assert "MYSQL_ROOT_PASSWORD" in db.secrets
