"""The import on the official Compose files of real projects (tests/compose/README.md): what would make the
app fail on ECS although the import exited 0 is asserted per project, from the Compose file's own terms.

- the exit code, with no traceback, within 10 s; a refusal names its reason;
- every name a service uses as a host is a service of the config with a Cloud Map name (awsvpc), which the
  VPC's search domain makes resolve as written (tests/stacks/test_dns_search.py);
- every pair Compose lets talk (a network they share, the default one included) can talk: a TCP connection
  on each port the target listens on passes both security groups of the rendered templates;
- no published port of a protocol that is not HTTP sits behind the Application Load Balancer;
- no value that became a secret is left in what the services run with or their task definitions;
- the builds of all of them pass cfn-lint, deploy and delete on the emulator, leaving nothing behind.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import inventory
import stacks
import test_emulated_deploy as emulated
from helpers import ROOT, cfn_lint, templates, write_build
from test_reach import connects

from templates_src.compose import command, context, explain, reading, services
from templates_src.app import checks, config, loading, quotas

CORPUS = ROOT / "tests" / "compose" / "corpus"
SOURCES = json.loads((CORPUS / "sources.json").read_text())

# Projects the import refuses, with the words of the reason: each is the project's own doing.
REFUSED = {
    "sonarqube-dce": "is larger than a whole t3.medium",  # a 4 GiB task: pass --instance-type
    "hoppscotch": "every service runs only under a profile",  # started with --profile (see below)
    "graylog": "GRAYLOG_PASSWORD_SECRET is not set",  # its example .env leaves a required value empty
    "rocketchat-voip": "VOIP_DOMAIN is not set",  # a required variable with no default
    "airflow": "is not an image reference",  # the file carries its docs' |version| placeholder
}

# Well-known ports of protocols that are not HTTP: an ALB's HTTP health check can never pass on them.
NOT_HTTP = {21, 22, 25, 53, 110, 143, 389, 465, 587, 993, 995, 1433, 1700, 1883, 3306, 3478, 4222, 5222, 5432,
            5672, 6379, 7233, 8883, 9042, 9092, 10000, 11211, 25565, 27017}


def compose_path(entry: dict) -> Path:
    return CORPUS / entry["folder"] / entry["compose"]


@pytest.mark.parametrize("entry", SOURCES, ids=[e["folder"] for e in SOURCES])
def test_each_project_imports_or_is_refused_for_its_own_reason(entry, tmp_path):
    out = tmp_path / "app.yaml"
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "templates_src", "import-compose", str(compose_path(entry)),
                          "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 10
    assert "Traceback" not in run.stderr, run.stderr
    if entry["folder"] in REFUSED:
        assert run.returncode == 2 and REFUSED[entry["folder"]] in run.stderr, run.stderr
        assert not out.exists()
    else:
        assert run.returncode == 0, run.stderr
        checks.validate(loading.load(out))


def test_profiles_start_as_docker_compose_starts_them(tmp_path):
    source = CORPUS / "hoppscotch" / "docker-compose.yml"
    run = subprocess.run([sys.executable, "-m", "templates_src", "import-compose", str(source), "-o",
                          str(tmp_path / "app.yaml"), "--profile", "default"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    names = {svc.name for svc in loading.load(tmp_path / "app.yaml").services}
    assert names == {"hoppscotch-aio", "hoppscotch-db", "hoppscotch-migrate"}, names
    assert "hoppscotch-backend" not in names, "a service of another profile stays behind"
    # COMPOSE_PROFILES in the project's .env chooses them as docker compose does.
    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n    ports: ['8080:80']\n"
                                          "    profiles: [web]\n  debug:\n    image: busybox\n"
                                          "    profiles: [debug]\n")
    (project / ".env").write_text("COMPOSE_PROFILES=web\n")
    result = command.import_file(project / "compose.yaml", tmp_path / "out" / "app.yaml")
    assert [svc["name"] for svc in result.data["services"]] == ["web"]


def imported(entry: dict, tmp_path: Path) -> tuple[context.Imported, config.App, str]:
    """The project imported as `import-compose` does it, the validated config and the app.yaml text."""
    out = tmp_path / "app.yaml"
    result = command.import_file(compose_path(entry), out)
    result.data, _ = command.size_cluster(result.data, compose_path(entry).parent, result.file_contents)
    app = config.parse(result.data, base_dir=compose_path(entry).parent, file_contents=result.file_contents)
    checks.validate(app)
    return result, app, explain.to_yaml(result, compose_path(entry).name)


def compose_services(entry: dict, result: context.Imported) -> dict[str, dict]:
    """The Compose services the config carries, by config name, as Compose wrote them (interpolated)."""
    document = reading.load(compose_path(entry))
    return {result.names[key]: svc for key, svc in (document.get("services") or {}).items()
            if key in result.names}


def networks(svc: dict) -> set[str]:
    """The Compose networks a service is on: the default one when it names none."""
    named = svc.get("networks")
    return set(named) if named else {"default"}


IMPORTED = [e for e in SOURCES if e["folder"] not in REFUSED]


@pytest.mark.parametrize("entry", IMPORTED, ids=[e["folder"] for e in IMPORTED])
def test_what_compose_lets_work_works_as_imported(entry, tmp_path):
    result, app, _ = imported(entry, tmp_path)
    tpls = templates(app)
    by_name = {svc.name: svc for svc in app.services}
    original = compose_services(entry, result)

    # Names: every host a value names that is a service of the project is one with a Cloud Map name.
    keys = set(result.names)
    for svc in app.services:
        for var, value in svc.environment.items():
            hosts: list[str] = [value] if value in keys and services.HOST_VARIABLE.search(var) else []
            services.url_hosts(value, lambda host: hosts.append(host) or host)
            for host in hosts:
                if host in keys:
                    target = by_name.get(result.names[host])
                    assert target is not None and target.network_mode == "awsvpc", (svc.name, var, host)

    # Reach: a network shared in Compose is a connection allowed on every port the target listens on.
    for client, client_svc in original.items():
        for target, target_svc in original.items():
            if client == target or not networks(client_svc) & networks(target_svc):
                continue
            if by_name[target].network_mode != "awsvpc" or {"network_mode"} & (set(client_svc) | set(target_svc)):
                continue  # a bridge service has no address of its own; host/service modes are not carried
            for port in (by_name[target].port, *by_name[target].ports):
                assert connects(tpls, client, target, port), f"{client} -> {target}:{port}"

    # Protocols: the load balancer's HTTP listeners never forward to a port of another protocol.
    for svc in app.services:
        if svc.public is not None:
            assert svc.port not in NOT_HTTP, (svc.name, svc.port)

    # Secrets: no value that became one survives in what the services run with or their task definitions.
    held = json.dumps([[svc.environment, svc.command, svc.entrypoint, svc.health_check.command]
                       for svc in app.services]) + json.dumps(result.file_contents)
    rendered = json.dumps(tpls["services.yaml"])
    for value in result.secret_values:
        if context._distinctive(value):
            # A Compose value may also be the name the import gave its secret (taiga's
            # TAIGA_SECRET_KEY=taiga-secret-key), which the templates name it by.
            assert json.dumps(value)[1:-1] not in held + ("" if value in app.secrets else rendered), value


def test_the_corpus_covers_the_shapes_that_break_an_import():
    """The shapes of the projects, counted from their files: each must stay represented."""
    texts = {e["folder"]: compose_path(e).read_text() for e in SOURCES}
    shapes = {
        "networks": [f for f, t in texts.items() if re.search(r"^networks:", t, re.M)],
        "secrets": [f for f, t in texts.items() if re.search(r"^secrets:", t, re.M)],
        "udp": [f for f, t in texts.items() if "/udp" in t],
        "non-HTTP ports": [f for f, t in texts.items() if re.search(r"\b(25565|7233|1883|:53\b|:25\b|:21\b)", t)],
        "healthchecks": [f for f, t in texts.items() if "healthcheck:" in t],
        "builds": [f for f, t in texts.items() if re.search(r"^\s+build:", t, re.M)],
    }
    assert len(SOURCES) >= 30
    assert all(len(found) >= 2 for found in shapes.values()), shapes


@pytest.mark.parametrize("entry", IMPORTED, ids=[e["folder"] for e in IMPORTED])
def test_each_imported_project_passes_cfn_lint_deploys_and_deletes_on_the_emulator(aws, tmp_path, entry):
    folder = entry["folder"]
    _, app, _ = imported(entry, tmp_path)
    build = write_build(app, tmp_path / "build")
    linted = cfn_lint(sorted(build.glob("*.yaml")))
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout[-3000:]
    before = inventory.take(aws)
    bucket, prefix = f"{folder}-templates", f"{folder}/"
    stacks.upload(aws, bucket, prefix, build)
    if (build / "registry.yaml").exists():  # only an app that builds an image has repositories
        registry = stacks.create(aws, f"{folder}-registry", stacks.template_url(aws, bucket, f"{prefix}registry.yaml"))
        assert registry["StackStatus"] == "CREATE_COMPLETE"
    root = stacks.create(aws, folder, stacks.template_url(aws, bucket, f"{prefix}main.yaml"),
                         {"QSS3BucketName": bucket, "QSS3KeyPrefix": prefix})
    assert root["StackStatus"] == "CREATE_COMPLETE", emulated.failure_events(aws, folder)
    described = aws.client("ecs").list_services(cluster=stacks.outputs(root)["ClusterName"])["serviceArns"]
    assert len(described) == len(app.services)
    stacks.delete(aws, folder)
    if (build / "registry.yaml").exists():
        stacks.delete(aws, f"{folder}-registry")
    stacks.empty_bucket(aws, bucket)
    stacks.drop_retained(aws, before)
    assert inventory.difference(before, inventory.take(aws)) == {}
