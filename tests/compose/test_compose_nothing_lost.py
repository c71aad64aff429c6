"""No value of a real project's Compose file is lost silently: for every project of tests/compose/ the import
reads, each Compose service, each environment variable of a service it keeps and each published port is
either in the imported config or named by a warning, which app.yaml's header and stderr show.

Checked against the Compose file as the import reads it (interpolated from the project's `.env`), not
against the import's own bookkeeping, so a value dropped without a word fails here."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from helpers import ROOT

from templates_src.compose import command, context, networks, reading, services as compose_services

CORPUS = ROOT / "tests" / "compose" / "corpus"
SOURCES = json.loads((CORPUS / "sources.json").read_text())
# The corpus of real projects and the three hand-made examples beside it.
PATHS = [CORPUS / e["folder"] / e["compose"] for e in SOURCES] + [
    CORPUS / "dks" / "docker-compose.yaml", CORPUS / "wordpress" / "docker-compose.yml",
    CORPUS / "pollster" / "compose.yaml"]


def interpolated(path: Path) -> dict:
    """The Compose file with ${VARS} from the project's .env, as import_file reads it."""
    dotenv = path.parent / ".env"
    variables = {k: v for k, v in reading.parse_env_file(dotenv.read_text()).items() if v is not None} \
        if dotenv.is_file() else {}
    return reading.interpolate_all(reading.load(path), variables.get, lambda name: None)


def env_file_variables(project: Path, svc: dict) -> tuple[set[str], bool]:
    """The names a service's readable env_files set, and whether one could not be read."""
    files = svc.get("env_file")
    names: set[str] = set()
    unread = False
    for entry in [files] if isinstance(files, (str, dict)) else (files or []):
        path = project / str(entry.get("path", "") if isinstance(entry, dict) else entry)
        if not (path.resolve().is_relative_to(project.resolve()) and path.is_file()):
            unread = True
            continue
        names |= set(reading.parse_env_file(path.read_text()))
    return names, unread


def said(result: context.Imported, service: str, key_prefix: str, word: str = "") -> bool:
    """Whether a warning of `service` under a key starting with `key_prefix` names `word`. Notes do not count:
    they say how a value was carried over, so one may still describe a value the config lost."""
    pattern = re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")
    return any(f.service == service and f.key.startswith(key_prefix) and pattern.search(f.message)
               for f in result.warnings)


def lost(path: Path, result: context.Imported) -> list[str]:
    """Every Compose service, variable and published port neither in the config nor named by a finding."""
    services = interpolated(path)["services"]
    config_services = {svc["name"]: svc for svc in result.data["services"]}
    missing = []
    for key, svc in services.items():
        out = config_services.get(result.names.get(key, ""))
        if out is None:
            if not any(f.service == key and "not imported" in f.message for f in result.warnings):
                missing.append(f"service {key}")
            continue
        # Variables: in the environment or given from a secret; X_FILE naming a secret file whose image has no
        # known entrypoint to write it is given as X from the secret (a note says so).
        kept = set(out.get("environment") or {}) | set(out.get("secrets") or {})
        kept |= {f"{var}_FILE" for var in out.get("secrets") or {}}
        from_files, unread = env_file_variables(path.parent, svc)
        if unread and not said(result, key, "env_file"):
            missing.append(f"{key}.env_file")
        for var in sorted(from_files | set(compose_services._pairs(svc.get("environment")))):
            if var not in kept and not (said(result, key, f"environment.{var}") or said(result, key, "", var)):
                missing.append(f"{key}.environment.{var}")
        # Published ports: the public one (the ALB's), a Network Load Balancer listener, or a finding naming it.
        public = out["port"] if out.get("public") else None
        nlb = {(p["port"], str(p.get("protocol", "tcp")).lower()) for p in out.get("published") or []}
        for i, entry in enumerate(svc.get("ports") or []):
            try:
                ports = networks.parse_ports(entry)
            except (ValueError, TypeError):
                if not said(result, key, f"ports[{i}]"):
                    missing.append(f"{key}.ports[{i}]")
                continue
            if said(result, key, f"ports[{i}]", "range"):
                continue  # a range too wide for ECS, refused as a whole with its reason
            for port in ports:
                if (port.protocol == "tcp" and port.target == public) or (port.target, port.protocol) in nlb:
                    continue
                if not (said(result, key, "ports", str(port.target)) or (
                        port.target == out["port"] and said(result, key, "ports", "not made public"))):
                    missing.append(f"{key}.ports[{i}] {port.target}/{port.protocol}")
    return missing


READ: list[tuple[Path, context.Imported]] = []
for compose_path in PATHS:
    try:
        READ.append((compose_path, command.import_file(compose_path, compose_path.parent / "app.yaml")))
    except reading.ComposeError:
        pass  # refused as a whole: nothing was imported, and the one sentence says why


def test_the_corpus_is_read():
    assert len(READ) >= len(PATHS) - 3, sorted(set(PATHS) - {path for path, _ in READ})


@pytest.mark.parametrize("path, result", READ, ids=[path.parent.name for path, _ in READ])
def test_no_service_variable_or_port_is_lost_silently(path, result):
    assert lost(path, result) == []


def test_a_value_dropped_without_a_word_is_found():
    """The property fails when the import drops a service, a variable or a port and says nothing."""
    path, result = next((p, r) for p, r in READ if p.parent.name == "minecraft")
    assert lost(path, result) == []
    dropped = copy.deepcopy(result)
    svc = dropped.data["services"][0]
    svc["environment"].pop("EULA")
    svc.pop("published")
    assert lost(path, dropped) == ["mc.environment.EULA", "mc.ports[0] 25565/tcp"]
    dropped.data["services"] = []
    assert lost(path, dropped) == ["service mc"]
