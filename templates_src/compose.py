"""Compose import: a Compose file's services become the app config, and every loss is said.

`convert(compose, source_dir, out_dir, variables)` turns parsed Compose data into config data
(the shape `config.parse` reads) plus findings: *warnings* for what could not be carried over or
needs a decision, *notes* for what was carried over in a non-obvious way. It reads the env_files
and bind-mounted files the Compose file names and writes nothing. `run` is the CLI: it loads the
Compose file, converts, sizes the cluster, validates the result with the build's own checks and
writes app.yaml with the findings as comments.

Compose semantics followed (compose-spec): `${VAR}` interpolation over every value from `.env`
beside the Compose file (or --env-file), never from the importing shell, so an import is
reproducible; env_file then environment, later wins; short and long syntax of ports, volumes,
depends_on, secrets and configs; durations like 1m30s; byte values like 512M or 1gb.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import yaml

from templates_src import bounded, config, names
from templates_src.words import plural

# --- what the config cannot say, and defaults for what Compose leaves open ---------------------------

# Task size when Compose sets no limit: enough for a small web process; a warning says it was chosen.
DEFAULT_CPU = 256
DEFAULT_MEMORY = 512
# The load balancer's entry listener; other public services keep their published port.
ENTRY_LISTENER = 80
ENTRY_URL_OUTPUT = "AppUrl"
# Bind-mounted folders are carried over as `files` (written at container start from environment
# variables of the task definition, whose whole size ECS caps at 64 KiB) only when this small.
MAX_FILES = 10
MAX_FILES_BYTES = 32 * 1024
# ECS container health check bounds (seconds / count).
HEALTH_LIMITS = {"interval": (5, 300), "timeout": (2, 60), "retries": (1, 10), "start_period": (0, 300)}


@dataclass(frozen=True)
class Image:
    """What the official image runs (its Dockerfile's ENTRYPOINT and CMD) and listens on."""

    port: int
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    data_store: bool = True


# Official images by repository name; entrypoint/command let bind-mounted files become `files`,
# which need the program to hand over to.
KNOWN_IMAGES = {
    "postgres": Image(5432, ("docker-entrypoint.sh",), ("postgres",)),
    "mysql": Image(3306, ("docker-entrypoint.sh",), ("mysqld",)),
    "mariadb": Image(3306, ("docker-entrypoint.sh",), ("mariadbd",)),
    "mongo": Image(27017, ("docker-entrypoint.sh",), ("mongod",)),
    "redis": Image(6379, ("docker-entrypoint.sh",), ("redis-server",)),
    "valkey": Image(6379),
    "memcached": Image(11211),
    "rabbitmq": Image(5672),
    "elasticsearch": Image(9200),
    "opensearch": Image(9200),
    "nginx": Image(80, ("/docker-entrypoint.sh",), ("nginx", "-g", "daemon off;"), data_store=False),
    "httpd": Image(80, data_store=False),
    "wordpress": Image(80, data_store=False),
}
# The user the official images run as (uid, gid), for the owner of their data on EFS: alpine tags
# differ from the Debian ones where noted.
DATA_OWNERS = {"postgres": ((999, 999), (70, 70)), "mysql": ((999, 999), None), "mariadb": ((999, 999), None),
               "mongo": ((999, 999), None), "redis": ((999, 999), (999, 1000)), "valkey": ((999, 999), (999, 1000)),
               "rabbitmq": ((999, 999), (100, 101)), "wordpress": ((33, 33), (82, 82))}
# Ports of data stores (a service publishing one is a database, whatever its image).
DATA_STORE_PORTS = {5432, 3306, 27017, 6379, 11211, 5672, 9042, 1433, 1521, 9200}
# Container ports that serve plain HTTP by convention (web servers, app frameworks' defaults, well-known web UIs);
# a published port is HTTP when it is one of these, the port of a known web image, or the port the service's own
# health check calls over http://localhost. Every other published port is TCP or UDP, forwarded by the Network
# Load Balancer as it comes: an HTTP health check on it could never pass.
HTTP_PORTS = frozenset({80, 3000, 3001, 4000, 5000, 5601, 8000, 8008, 8080, 8081, 8088, 8888, 9000, 9090, 15672})
# HTTPS answered by the container itself: the ALB speaks plain HTTP to its targets, so these pass through as TCP.
TLS_PORTS = frozenset({443, 8443})
# Protocols whose UDP side is the one clients use first (DNS, DHCP, TFTP, NTP, SNMP, syslog, RADIUS): when such a
# port is published over both and only one can be carried, it is UDP.
UDP_FIRST = frozenset({53, 67, 69, 123, 161, 514, 1812, 1813})

# Service keys the import reads; every other key gets a warning (x- extensions included).
HANDLED = {"image", "build", "ports", "expose", "environment", "env_file", "secrets", "configs", "depends_on",
           "healthcheck", "command", "entrypoint", "deploy", "cpus", "mem_limit", "scale", "volumes", "platform",
           "profiles", "restart", "read_only", "tmpfs", "cap_add", "cap_drop", "user", "init", "privileged",
           "networks"}
# Why a key has no equivalent, for the keys Compose files use most; others get a generic reason.
UNSUPPORTED = {
    "container_name": "ECS names the tasks; other services reach this one by its service name",
    "hostname": "ECS names the tasks; other services reach this one by its service name",
    "domainname": "ECS names the tasks; other services reach this one by its service name",
    "links": "aliases are not carried over; a service resolves by its own name (the VPC's search domain is the "
             "namespace) and reaches the services it shares a network with",
    "external_links": "services outside the app are not reachable by name",
    "labels": "container labels are not carried over (the templates tag what they create)",
    "annotations": "not carried over",
    "logging": "every container logs to CloudWatch Logs (awslogs), retention log_retention_days",
    "extra_hosts": "no /etc/hosts entries on ECS through the config",
    "dns": "tasks use the VPC resolver", "dns_search": "tasks use the VPC resolver",
    "dns_opt": "tasks use the VPC resolver",
    "security_opt": "not part of the config",
    "working_dir": "the image's WORKDIR is used",
    "ulimits": "ECS default ulimits apply",
    "sysctls": "not part of the config",
    "shm_size": "Docker's default /dev/shm size applies",
    "stop_grace_period": "ECS's stop timeout (30 s) applies",
    "stop_signal": "ECS stops containers with SIGTERM",
    "tty": "no TTY", "stdin_open": "no stdin",
    "network_mode": "every task uses awsvpc networking",
    "pid": "not part of the config", "ipc": "not part of the config",
    "devices": "host devices are not part of the config",
    "gpus": "GPUs are not part of the config",
    "volumes_from": "volumes are not shared between tasks",
    "pull_policy": "the ECS agent pulls the image at each task start (a Docker Hub image from its copy in ECR)",
    "extends": "not resolved: import the output of `docker compose config` instead",
    "mem_reservation": "the task's memory is both its reservation and its limit",
    "develop": "development-only (watch) settings",
}
RESTART_COVERED = {"always", "unless-stopped"}


# --- results and errors ------------------------------------------------------------------------------


class ComposeError(Exception):
    """A Compose file the import cannot read at all (not YAML, not a Compose mapping, ...)."""


@dataclass(frozen=True)
class Finding:
    service: str  # the Compose service name; "" for the file as a whole
    key: str  # the Compose key, e.g. "ports[1]" or "deploy.resources.reservations"
    message: str

    def __str__(self) -> str:
        where = ".".join(part for part in (self.service, self.key) if part)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class Imported:
    data: dict
    warnings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    # Compose service name -> config service name, for the services that were imported.
    names: dict[str, str] = field(default_factory=dict)
    # `files` sources (relative to the Compose project's folder) -> their text, read once here.
    file_contents: dict[str, str] = field(default_factory=dict)
    # Values that are, or hold, a secret: never written or printed (see `say`).
    secret_values: set[str] = field(default_factory=set)
    # The Compose project's folder: `files` sources are relative to it.
    source_dir: Path = Path(".")

    def say(self, finding: Finding) -> str:
        """The finding as one line that can be shown: known secret values masked, no control character."""
        return printable(mask(str(finding), self.secret_values))


# --- reading: YAML, .env files, interpolation ----------------------------------------------------------


def load(path: Path) -> dict:
    """The Compose file as data, or ComposeError saying why it is not one."""
    try:
        text = bounded.read_text(path, bounded.COMPOSE_BYTES, "Compose file")
    except bounded.Refused as err:
        raise ComposeError(str(err)) from None
    try:
        data = bounded.load_yaml(text)
    except yaml.YAMLError as err:
        raise ComposeError(config.yaml_problem(path, err)) from None
    if not isinstance(data, dict):
        raise ComposeError(f"{path} is not a Compose file: expected a mapping with `services`, got {_kind(data)}")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ComposeError(f"{path} is not a Compose file: `services` must be a mapping with at least one service"
                           + ("" if "services" in data else " (there is no `services` key)"))
    problems = [f"{key}: must be a mapping, got {_kind(data[key])}" for key in ("volumes", "secrets", "configs")
                if data.get(key) is not None and not isinstance(data[key], dict)]
    for name, svc in services.items():
        if not isinstance(svc, dict):
            problems.append(f"services.{name}: must be a mapping, got {_kind(svc)}")
            continue
        for key, value in svc.items():
            kinds = SHAPES.get(key)
            if value is not None and kinds and not isinstance(value, kinds):
                expected = " or ".join(_kind(kind()) for kind in kinds)
                problems.append(f"services.{name}.{key}: expected {expected}, got {_kind(value)}")
    if problems:
        raise ComposeError(f"{path} is not a valid Compose file:\n  " + "\n  ".join(problems))
    return data


# The shapes the Compose specification allows for the keys the import reads.
SHAPES: dict[str, tuple[type, ...]] = {
    "ports": (list,), "expose": (list,), "volumes": (list,), "secrets": (list,), "configs": (list,),
    "profiles": (list,), "env_file": (str, list), "depends_on": (list, dict), "environment": (list, dict),
    "healthcheck": (dict,), "deploy": (dict,), "build": (str, dict), "command": (str, list),
    "entrypoint": (str, list), "image": (str,), "platform": (str,),
}


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def parse_env_file(text: str, lookup: Callable[[str], Optional[str]] = lambda name: None,
                   warn: Callable[[str], None] = lambda name: None) -> dict[str, Optional[str]]:
    """KEY=VALUE lines the way Compose reads them; None for a bare KEY (to be resolved, or unset).

    Unquoted and double-quoted values are interpolated from `lookup` and the lines above;
    single-quoted ones are literal.
    """
    values: dict[str, Optional[str]] = {}

    def resolve(name: str) -> Optional[str]:
        return values[name] if values.get(name) is not None else lookup(name)

    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"^export\s+", "", line)
        key, sep, raw = line.partition("=")
        key = key.strip()
        if not sep:
            values[key] = None
            continue
        raw = raw.strip()
        if raw[:1] in ("'", '"') and raw[0] in raw[1:]:
            quote = raw[0]
            end = _closing_quote(raw, quote)
            inner = raw[1:end]
            if quote == "'":
                values[key] = inner.replace("\\'", "'")
                continue
            inner = (inner.replace('\\"', '"').replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t")
                     .replace("\\\\", "\\"))
            values[key] = interpolate(inner, resolve, warn)
            continue
        raw = re.split(r"\s#", raw, maxsplit=1)[0].strip()
        values[key] = interpolate(raw, resolve, warn)
    return values


def _closing_quote(raw: str, quote: str) -> int:
    i = 1
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
            continue
        if raw[i] == quote:
            return i
        i += 1
    return len(raw)


_VAR = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")


# ${A:-${B:-...}} nested deeper than this is refused: each level recurses, and rescans what is inside it.
MAX_INTERPOLATION_DEPTH = 16


def interpolate(text: str, lookup: Callable[[str], Optional[str]], warn: Callable[[str], None],
                depth: int = 0) -> str:
    """Compose interpolation: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+r}, ${VAR+r}, $$.

    An unset variable without a default becomes "" and is reported through `warn`; a required one
    raises ComposeError, and so does nesting deeper than MAX_INTERPOLATION_DEPTH.
    """
    if depth > MAX_INTERPOLATION_DEPTH:
        raise ComposeError(f"interpolation nested deeper than {MAX_INTERPOLATION_DEPTH} levels in "
                           f"{text[:60]!r}{'...' if len(text) > 60 else ''}")
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1:i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing_brace(text, i + 2)
            if end is None:
                raise ComposeError(f"unterminated ${{...}} in {text!r}")
            out.append(_braced(text[i + 2:end], lookup, warn, depth))
            i = end + 1
        elif match := _VAR.match(text, i + 1):
            value = lookup(match.group())
            if value is None:
                warn(match.group())
            out.append(value or "")
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> Optional[int]:
    depth, i = 1, start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _braced(expression: str, lookup, warn, depth: int = 0) -> str:
    match = _VAR.match(expression)
    if not match:
        raise ComposeError(f"invalid interpolation ${{{expression}}}")
    name, rest = match.group(), expression[match.end():]
    value = lookup(name)
    if not rest:
        if value is None:
            warn(name)
        return value or ""
    operator = next((op for op in (":-", ":?", ":+", "-", "?", "+") if rest.startswith(op)), None)
    if operator is None:
        raise ComposeError(f"unsupported interpolation ${{{expression}}} (Compose has no ${{VAR/...}} forms)")
    operand = rest[len(operator):]
    present = value is not None and (value != "" or ":" not in operator)
    if operator.endswith("-"):
        return value if present else interpolate(operand, lookup, warn, depth + 1)
    if operator.endswith("+"):
        return interpolate(operand, lookup, warn, depth + 1) if present else ""
    if not present:
        message = interpolate(operand, lookup, warn, depth + 1) or "required"
        raise ComposeError(f"variable {name} is not set: {message} (set it in .env or pass --env-file)")
    return value


def interpolate_all(node: object, lookup, warn) -> object:
    """Interpolate every string value (never a key) of the Compose data."""
    if isinstance(node, dict):
        return {key: interpolate_all(value, lookup, warn) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, lookup, warn) for value in node]
    if isinstance(node, str):
        return interpolate(node, lookup, warn)
    return node


# --- small parsers: durations, byte values, ports, volumes ------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m(?!s)|s|ms|us|µs|ns)")
_SECONDS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration_seconds(value: object) -> float:
    """Compose duration ('1m30s', '10s', '500ms') or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(a + u for a, u in parts) != text:
        raise ValueError(f"'{value}' is not a duration like 10s or 1m30s")
    return sum(float(amount) * _SECONDS[unit] for amount, unit in parts)


_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$", re.IGNORECASE)


def mebibytes(value: object) -> int:
    """Compose byte value ('512M', '1gb', '300m', 1073741824) in MiB, rounded up (Docker's units are 1024-based)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount, unit = value, ""
    else:
        match = _BYTES.match(str(value).strip())
        if not match:
            raise ValueError(f"'{value}' is not a byte value like 512M or 1g")
        amount, unit = float(match.group(1)), match.group(2).lower()
    try:
        mib = amount * 1024 ** " kmgt".index(unit or " ") / 2**20
    except OverflowError:  # an integer too large for a float
        raise ValueError(f"'{value}' is not a byte value a host could have") from None
    if not math.isfinite(mib):  # .inf, .nan, 1e400
        raise ValueError(f"'{value}' is not a byte value a host could have")
    return max(1, math.ceil(mib))


def cpu_units(value: object) -> int:
    """Compose cpus (a fraction of a CPU) in ECS CPU units (1024 per vCPU)."""
    try:
        cpus = float(value)
    except OverflowError:  # an integer too large for a float
        raise ValueError(f"'{value}' is not a number of CPUs a host could have") from None
    if not math.isfinite(cpus) or cpus < 0:  # .inf and .nan are floats too
        raise ValueError(f"'{value}' is not a number of CPUs")
    return round(cpus * 1024)


@dataclass(frozen=True)
class Port:
    target: int
    published: Optional[int]  # None: not published, or published on a random host port
    is_published: bool
    protocol: str = "tcp"
    host_ip: str = ""
    ranged: bool = False


def _first_port(text: str) -> tuple[int, bool]:
    first, _, last = text.partition("-")
    return int(first), bool(last)


# An `expose` range opens each of its ports to the service's peers (one security group rule each): a short range
# of workers' ports is carried whole, a wider one only by its first port, with a warning.
EXPOSE_RANGE_MOST = 32


def _exposed(entry: object) -> tuple[list[int], int]:
    """The ports an `expose` entry opens ('5222', '3000-3005', '9000/tcp') and the range's size."""
    first, _, last = str(entry).partition("/")[0].partition("-")
    low, high = int(first), int(last or first)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"'{entry}' is not a port or a range of ports")
    count = high - low + 1
    return list(range(low, high + 1)) if count <= EXPOSE_RANGE_MOST else [low], count


def parse_port(entry: object) -> Port:
    if isinstance(entry, dict):
        if "target" not in entry:
            raise ValueError("a long-syntax port needs `target`")
        target, ranged = _first_port(str(entry["target"]))
        published = entry.get("published")
        host, host_ranged = _first_port(str(published)) if published not in (None, "") else (None, False)
        return Port(target, host, True, str(entry.get("protocol", "tcp")).lower(), str(entry.get("host_ip", "")),
                    ranged or host_ranged)
    text = str(entry)
    text, _, protocol = text.partition("/")
    parts = text.rsplit(":", 2)
    target, ranged = _first_port(parts[-1])
    published, host_ranged = _first_port(parts[-2]) if len(parts) >= 2 and parts[-2] else (None, False)
    host_ip = parts[0].strip("[]") if len(parts) == 3 else ""
    return Port(target, published, True, (protocol or "tcp").lower(), host_ip, ranged or host_ranged)


class WideRange(ValueError):
    """A port range with more ports than may be carried; `count` says how many."""

    def __init__(self, count: int):
        self.count = count
        super().__init__(f"{count} ports")


def parse_ports(entry: object, most: Optional[int] = None) -> list[Port]:
    """Every port of a mapping: a range (`7000-7002:7000-7002`) is one Port per container port (WideRange past
    `most`, before any is made)."""
    first = parse_port(entry)
    if not first.ranged:
        return [first]
    if isinstance(entry, dict):
        target, published = str(entry["target"]), str(entry.get("published") or "")
    else:
        parts = str(entry).partition("/")[0].rsplit(":", 2)
        target, published = parts[-1], (parts[-2] if len(parts) >= 2 else "")
    targets = _port_range(target)
    hosts = _port_range(published) if published else None
    if hosts is not None and len(hosts) != len(targets):
        raise ValueError(f"{len(hosts)} host ports for {len(targets)} container ports")
    if most is not None and len(targets) > most:
        raise WideRange(len(targets))
    return [dataclasses.replace(first, target=t, published=hosts[i] if hosts is not None else None)
            for i, t in enumerate(targets)]


def _port_range(text: str) -> range:
    low, _, high = text.partition("-")
    found = range(int(low), int(high or low) + 1)
    if not found or not 0 <= found.start <= found.stop - 1 <= 65535:
        raise ValueError(f"'{text}' is not a port range")
    return found


@dataclass(frozen=True)
class Mount:
    kind: str  # volume, bind, tmpfs, anonymous, or another Compose mount type
    source: str
    target: str


def parse_volume(entry: object, declared: dict) -> Mount:
    if isinstance(entry, dict):
        kind = str(entry.get("type", "volume"))
        source = str(entry.get("source") or "")
        if kind == "volume" and not source:
            kind = "anonymous"
        return Mount(kind, source, str(entry.get("target", "")))
    text = str(entry)
    if ":" not in text:
        return Mount("anonymous", "", text)
    # SOURCE:TARGET[:MODE]; a Windows drive letter is not expected on ECS hosts.
    pieces = text.split(":")
    source, target = pieces[0], pieces[1]
    bind = source.startswith((".", "/", "~", "$")) or (source not in declared and "/" in source)
    return Mount("bind" if bind else "volume", source, target)


# --- the conversion ---------------------------------------------------------------------------------------


@dataclass
class _Context:
    compose: dict
    source_dir: Path
    out_dir: Path
    variables: dict[str, str]
    # Compose profiles to start, as `docker compose --profile` (or COMPOSE_PROFILES in .env) names them.
    profiles: frozenset[str] = frozenset()
    warnings: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    # (service, variable) the import itself set (not the user's text: no password hides in them).
    generated: set[tuple[str, str]] = field(default_factory=set)
    file_contents: dict[str, str] = field(default_factory=dict)
    secret_values: set[str] = field(default_factory=set)
    # Compose secrets a service reads from a file: service -> [(where, path, secret)], for `_mounts` to write
    # them as files (or, with no entrypoint to hand over to, give them as variables).
    secret_mounts: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    # What a build makes (context, Dockerfile, target, args) -> (the first service built so, its repository).
    builds: dict[tuple, tuple[str, str]] = field(default_factory=dict)
    # Compose service -> the Compose services its environment or command names as a host.
    named_hosts: dict[str, set[str]] = field(default_factory=dict)
    # Compose service -> ports other services address it on (host:port, scheme://host:port).
    addressed: dict[str, set[int]] = field(default_factory=dict)

    def warn(self, service: str, key: str, message: str) -> None:
        self.warnings.append(Finding(service, key, message))

    def note(self, service: str, key: str, message: str) -> None:
        self.notes.append(Finding(service, key, message))


def convert(compose: dict, source_dir: Path, out_dir: Path, variables: Optional[dict[str, str]] = None,
            name: Optional[str] = None, source_name: str = "docker-compose.yaml",
            profiles: tuple[str, ...] = ()) -> Imported:
    """Compose data (already interpolated) -> config data and findings. Reads env_files and mounted files.

    `files` name their sources relative to `source_dir`, the Compose project's folder; `run` copies
    them beside app.yaml when it goes elsewhere.
    """
    active = profiles or tuple(p for p in (variables or {}).get("COMPOSE_PROFILES", "").split(",") if p.strip())
    ctx = _Context(compose, source_dir, out_dir, dict(variables or {}), frozenset(p.strip() for p in active))
    try:
        return _convert(ctx, name, source_name)
    except (TypeError, ValueError, AttributeError, KeyError) as err:
        # A value of a shape the Compose specification does not allow, deep inside a key `load` checked.
        raise ComposeError(f"a value the import cannot read: {err!r}") from None


def _convert(ctx: _Context, name: Optional[str], source_name: str) -> Imported:
    services: dict[str, dict] = ctx.compose["services"]
    for var, value in ctx.variables.items():  # .env values a message might meet inside other text
        _shown(ctx, var, value)
    _top_level(ctx)
    chosen = _select(ctx, services)
    ports = {key: _ports(ctx, key, services[key]) for key in chosen}
    public = {key: port for key, port in ((k, _public_port(ctx, k, services[k], ports[k])) for k in chosen) if port}
    nlb = {key: found for key in chosen
           if (found := _published(ctx, key, services[key], ports[key], public.get(key)))}
    renamed = _names(ctx, chosen, public)
    app_name = _app_name(ctx, name)
    namespace = f"{app_name}.local"
    secrets: dict[str, dict] = {}
    out_services = []
    for key in chosen:
        svc = services[key]
        out = {"name": renamed[key]}
        out.update(_image(ctx, key, svc, renamed[key]))
        out["port"] = ports[key][0]
        out.update(_resources(ctx, key, svc))
        out.update(_environment(ctx, key, svc, renamed, public))
        out.update(_secrets(ctx, key, svc, out, secrets))
        out.update(_healthcheck(ctx, key, svc, out["port"], key in public))
        out.update(_depends_on(ctx, key, svc, chosen, renamed, services))
        out.update(_program(ctx, key, svc))
        out.update(_mounts(ctx, key, svc, out))
        out.update(_deploy(ctx, key, svc, out))
        out.update(_privileges(ctx, key, svc))
        _other_keys(ctx, key, svc)
        _host_references_in_commands(ctx, key, svc, renamed, namespace)
        out_services.append(out)
    _default_privileges(ctx, chosen, services)
    _password_secrets(ctx, out_services, secrets, chosen)
    _listeners(ctx, chosen, out_services, public, services)
    _network_listeners(ctx, chosen, out_services, nlb)
    _network_modes(ctx, chosen, out_services)
    _bridge_udp(ctx, chosen, out_services)
    _reach(ctx, chosen, services, out_services, namespace)
    data = {
        "name": app_name,
        "description": f"Imported from {source_name}",
        "namespace": namespace,
        "cluster": _cluster(ctx, out_services),
        **({"secrets": secrets} if secrets else {}),
        "services": [_ordered(svc) for svc in out_services],
    }
    return Imported(data, ctx.warnings, ctx.notes, dict(renamed), ctx.file_contents, ctx.secret_values,
                    ctx.source_dir)


SERVICE_KEYS = ("name", "image", "repository", "architectures", "port", "ports", "cpu", "memory", "desired_count",
                "network_mode", "environment", "secrets", "health_check", "public", "published", "url_output",
                "depends_on", "reaches", "entrypoint", "command", "files", "secret_files", "data", "deployment", "user",
                "read_only", "writable",
                "capabilities", "init")


def _ordered(svc: dict) -> dict:
    """The service's keys in the schema's order; a key not listed still comes last, never dropped."""
    keys = [key for key in SERVICE_KEYS if key in svc] + [key for key in svc if key not in SERVICE_KEYS]
    return {key: svc[key] for key in keys if svc[key] not in (None, {}, [])}


def _top_level(ctx: _Context) -> None:
    for key in ctx.compose:
        if key in ("services", "name", "volumes", "secrets", "configs"):
            continue
        if key == "version":
            ctx.note("", "version", "obsolete in the Compose specification; ignored")
        elif key == "networks":
            _top_level_networks(ctx)
        elif key == "include":
            ctx.warn("", "include", "included files are not followed: import the output of `docker compose config`")
        elif key.startswith("x-"):
            ctx.warn("", key, "extension field ignored (its anchors were merged where used)")
        else:
            ctx.warn("", key, "not carried over")
    for volume, spec in (ctx.compose.get("volumes") or {}).items():
        if isinstance(spec, dict) and spec.get("external"):
            ctx.warn("", f"volumes.{volume}", "external volume: its data is not reachable from ECS tasks")


def _select(ctx: _Context, services: dict[str, dict]) -> list[str]:
    """Services `docker compose up` starts and that keep running: profiles and one-off jobs stay behind."""
    jobs = set()
    for key, svc in services.items():
        for dep, spec in _dependencies(svc).items():
            if spec.get("condition") == "service_completed_successfully":
                jobs.add(dep)
    chosen = []
    for key, svc in services.items():
        profiles = {str(p) for p in svc.get("profiles") or []}
        if profiles and not (profiles & ctx.profiles or "*" in ctx.profiles):
            ctx.warn(key, "profiles", f"runs only with profile {', '.join(sorted(profiles))}: not imported (--profile "
                                      "starts it, as with docker compose)")
        elif key in jobs:
            ctx.warn(key, "", "a one-off job (others wait for it to complete): not imported, because an ECS service "
                              "restarts tasks that exit; run it as a standalone task (aws ecs run-task) or fold it "
                              "into the command of the service that needs it")
        else:
            chosen.append(key)
    if not chosen and any(svc.get("profiles") for svc in services.values()):
        names = sorted({str(p) for svc in services.values() for p in svc.get("profiles") or []})
        raise ComposeError(f"every service runs only under a profile ({', '.join(names)}): choose the ones to "
                           "import with --profile NAME, as `docker compose --profile NAME up` starts them")
    return chosen


def _dependencies(svc: dict) -> dict[str, dict]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {str(dep): {"condition": "service_started"} for dep in deps}
    if isinstance(deps, dict):
        return {str(dep): (spec if isinstance(spec, dict) else {}) for dep, spec in deps.items()}
    return {}


def _image_name(svc: dict) -> str:
    """The repository name of the image without registry, namespace or tag: 'postgres' for postgres:16."""
    image = str(svc.get("image") or "")
    last = image.split("@")[0].rsplit("/", 1)[-1]
    return last.split(":")[0].lower()


def _known(svc: dict) -> Optional[Image]:
    return None if svc.get("build") else KNOWN_IMAGES.get(_image_name(svc))


def _is_data_store(svc: dict, port: int) -> bool:
    known = KNOWN_IMAGES.get(_image_name(svc))
    return known.data_store if known else port in DATA_STORE_PORTS


def _ports(ctx: _Context, key: str, svc: dict) -> tuple[int, list[Port]]:
    """The container port the service listens on (its HTTP one when it publishes one), and its published ports."""
    published: list[Port] = []
    targets: list[int] = []  # TCP ports the container listens on, in Compose's order
    for i, entry in enumerate(svc.get("ports") or []):
        try:
            found = parse_ports(entry, most=config.TARGET_GROUPS_PER_SERVICE)
        except WideRange as wide:
            ctx.warn(key, f"ports[{i}]", f"port range '{entry}' ({wide.count} ports) is not carried over: an ECS "
                                         f"service registers with at most {config.TARGET_GROUPS_PER_SERVICE} target "
                                         "groups, one per load-balanced port")
            continue
        except (ValueError, TypeError) as err:
            ctx.warn(key, f"ports[{i}]", f"'{entry}' is not a port mapping ({err}): ignored")
            continue
        if found[0].protocol not in ("tcp", "udp"):
            ctx.warn(key, f"ports[{i}]", f"{found[0].protocol} port {found[0].target} is not carried over: the Network "
                                         "Load Balancer forwards TCP and UDP")
            continue
        published += found
        targets += [port.target for port in found if port.protocol == "tcp"]
    exposed: list[int] = []
    for i, entry in enumerate(svc.get("expose") or []):
        try:
            ports, count = _exposed(entry)
        except ValueError:
            ctx.warn(key, f"expose[{i}]", f"'{entry}' is not a port: ignored")
            continue
        if count > len(ports):
            ctx.warn(key, f"expose[{i}]", f"port range '{entry}' ({count} ports): only {ports[0]} is opened to the "
                                          f"services that reach it (a range of at most {EXPOSE_RANGE_MOST} is "
                                          "carried whole)")
        exposed += ports
    distinct = list(dict.fromkeys([*targets, *exposed]))
    if distinct:
        # The ALB's health check goes to the service's port: it must be the HTTP one when there is one. The
        # others become `ports`, opened to the services that reach this one (_reach).
        port = next((t for t in distinct if t in targets and _is_http(svc, t)), distinct[0])
        unpublished = [t for t in distinct if t != port and t not in {p.target for p in published}]
        if unpublished and svc.get("network_mode") == "bridge":
            ctx.warn(key, "ports", f"listens on {', '.join(map(str, distinct))}; a bridge-mode service is reached "
                                   f"on its port only: {port} is carried over, {', '.join(map(str, unpublished))} not")
        return port, published
    known = _known(svc) or KNOWN_IMAGES.get(_image_name(svc))
    if known:
        ctx.note(key, "ports", f"no port in Compose; {known.port}, the port {_image_name(svc)} listens on")
        return known.port, published
    ctx.warn(key, "ports", "no port in Compose: port 8080 is a placeholder (only peers' security group rules and "
                           "the discovery record use it); set `port` to what the container listens on")
    return 8080, published


def _is_http(svc: dict, port: int) -> bool:
    """Whether the container serves plain HTTP on `port`, as far as Compose and the image say."""
    known = _known(svc) or KNOWN_IMAGES.get(_image_name(svc))
    if known and port == known.port:
        return not known.data_store
    if port in TLS_PORTS:
        return False
    test = (svc.get("healthcheck") or {}).get("test") if isinstance(svc.get("healthcheck"), dict) else None
    text = " ".join(map(str, test)) if isinstance(test, list) else str(test or "")
    if any(int(found.group(1) or 80) == port for found in LOCALHOST_URL_PATH.finditer(text)):
        return True
    return port in HTTP_PORTS


def _local(port: Port) -> bool:
    return port.host_ip in ("127.0.0.1", "::1", "localhost")


def _public_port(ctx: _Context, key: str, svc: dict, ports: tuple[int, list[Port]]) -> Optional[Port]:
    """The published HTTP port that makes this service public on the ALB, if any."""
    target, published = ports
    candidates = [p for p in published if p.target == target and p.protocol == "tcp"]
    if not candidates or not _is_http(svc, target):
        return None
    local = [p for p in candidates if _local(p)]
    if len(local) == len(candidates):
        ctx.warn(key, "ports", f"published on {local[0].host_ip} only (this machine): not made public")
        return None
    if _is_data_store(svc, target):
        ctx.warn(key, "ports", f"publishes {target}, a data store's port: not made public (a database open to the "
                               "internet invites attacks); peers reach it at its discovery name")
        return None
    return next(p for p in candidates if not _local(p))


def _published(ctx: _Context, key: str, svc: dict, ports: tuple[int, list[Port]],
               public: Optional[Port]) -> list[Port]:
    """The published ports the Network Load Balancer carries: every one but the ALB's, the ones bound to this
    machine and data stores' ports, at most one protocol per container port and as many as ECS registers."""
    port, published = ports
    chosen: dict[int, Port] = {}
    seen: set[tuple[int, Optional[int], str]] = set()
    for p in published:
        if p.protocol == "tcp" and p.target == port and _is_http(svc, port):
            continue  # the ALB's port: made public there, or _public_port said why not
        if (p.target, p.published, p.protocol) in seen:
            continue
        seen.add((p.target, p.published, p.protocol))
        what = f"{p.target}/{p.protocol}"
        if _local(p):
            ctx.warn(key, "ports", f"{what} is published on {p.host_ip} only (this machine): not made public")
            continue
        if _is_data_store(svc, p.target):
            ctx.warn(key, "ports", f"publishes {p.target}, a data store's port: not made public (a database open to "
                                   "the internet invites attacks); peers reach it at its discovery name")
            continue
        other = chosen.get(p.target)
        if other is not None:
            if other.protocol == p.protocol:
                continue  # the same container port on a second host port: one listener carries it
            keep = p if (p.protocol == "udp") == (p.target in UDP_FIRST) else other
            dropped = other if keep is p else p
            # https://github.com/aws/amazon-ecs-agent/issues/3428
            ctx.warn(key, "ports", f"{p.target} is published over TCP and UDP; an ECS container maps a port over one "
                                   f"of them: {keep.protocol.upper()} is carried over, {dropped.protocol.upper()} not")
            chosen[p.target] = keep
            continue
        chosen[p.target] = p
    kept: list[Port] = []
    for p in chosen.values():
        if p.protocol == "udp" and (p.target == port or not _tcp_port(svc, port, published)):
            ctx.warn(key, "ports", f"{p.target}/udp is not made public: a Network Load Balancer checks a UDP target's "
                                   "health over TCP, and the service has no TCP port to check; add a TCP port it "
                                   "listens on as `port` and the UDP one under `published` (health_port)")
            continue
        kept.append(p)
    room = config.TARGET_GROUPS_PER_SERVICE - (1 if public else 0)
    if len(kept) > room:
        ctx.warn(key, "ports", f"{', '.join(f'{p.target}/{p.protocol}' for p in kept[room:])} not made public: an ECS "
                               f"service registers with at most {config.TARGET_GROUPS_PER_SERVICE} target groups")
        kept = kept[:room]
    for p in kept:
        if p.protocol == "tcp" and _is_http(svc, p.target):
            ctx.note(key, "ports", f"{p.target} serves HTTP too; the config has one HTTP port per service, so the "
                                   "Network Load Balancer forwards it as TCP (health-checked by a TCP connection)")
    return kept


def _tcp_port(svc: dict, port: int, published: list[Port]) -> bool:
    """Whether the service's port is one Compose or the image says it listens on over TCP (a UDP target's health
    check goes there)."""
    known = _known(svc) or KNOWN_IMAGES.get(_image_name(svc))
    exposed = {str(e).partition("/")[0] for e in svc.get("expose") or []}
    return any(p.target == port and p.protocol == "tcp" for p in published) or str(port) in exposed \
        or bool(known and known.port == port)


def _names(ctx: _Context, chosen: list[str], public: dict[str, Port]) -> dict[str, str]:
    taken: set[str] = set()
    out = {}
    for key in chosen:
        base = _label(key) or "svc"
        candidate = _fit_name(base, key in public)
        n = 2
        while candidate in taken or config.logical_id(candidate) in {config.logical_id(t) for t in taken}:
            candidate = _fit_name(f"{base}-{n}", key in public)
            n += 1
        taken.add(candidate)
        out[key] = candidate
        if candidate != key:
            ctx.note(key, "", f"named '{candidate}' (config names are DNS labels that fit AWS name limits)")
    return out


def _label(text: str) -> str:
    label = re.sub(r"[^a-z0-9]+", "-", text.lower())
    return re.sub(r"^[^a-z]+", "", label).strip("-")


def _fit_name(name: str, public: bool) -> str:
    """Shorten `name` until every AWS name made from it fits (target group names are the tightest)."""
    while True:
        svc = config.Service(name=name, port=1, cpu=1, memory=1)
        made = [names.task_role(svc), names.task_family(svc), names.log_group(svc)]
        made += [names.target_group(svc)] if public else []
        if all(n.longest <= n.limit for n in made) and len(name) <= 63:
            return name
        name = name[:-1].rstrip("-")


def _app_name(ctx: _Context, name: Optional[str]) -> str:
    given = name or ctx.compose.get("name") or ctx.source_dir.resolve().name
    label = _label(str(given))[:names.ENVIRONMENT_MAX].rstrip("-") or "app"
    if names.RESERVED_PREFIX.match(label):
        label = ("app-" + label)[:names.ENVIRONMENT_MAX].rstrip("-")
    if label != given:
        ctx.note("", "name", f"app name '{label}' (from '{given}': lowercase, at most {names.ENVIRONMENT_MAX} "
                             "characters, the default EnvironmentName)")
    return label


def _image(ctx: _Context, key: str, svc: dict, name: str) -> dict:
    build = svc.get("build")
    out: dict = {}
    platform = str(svc.get("platform") or "")
    if build is not None:
        spec = {"context": build} if isinstance(build, str) else (build if isinstance(build, dict) else {})
        context = spec.get("context", ".")
        details = [f"context {context}"]
        if spec.get("dockerfile"):
            details.append(f"Dockerfile {spec['dockerfile']}")
        if spec.get("target"):
            details.append(f"target {spec['target']}")
        args = _pairs(spec.get("args"))
        if args:
            details.append("args " + ", ".join(f"{k}={_shown(ctx, k, v)}" if v is not None else k
                                               for k, v in args.items()))
        # Services that share an image (web and worker from one Dockerfile) share its repository: the
        # same build, or the same image name in Compose.
        build_id = (os.path.normpath(str(context)), str(spec.get("dockerfile") or "Dockerfile"),
                    str(spec.get("target") or ""), tuple(sorted(args.items())))
        repository = _label(_image_name(svc)) if svc.get("image") else name
        repository = repository if config.NAME.match(repository or "") else name
        first, repository = ctx.builds.setdefault(build_id, (key, repository))
        if first != key:
            ctx.note(key, "build", f"the same build as {first}: the image in its ECR repository "
                                   f"${{EnvironmentName}}/{repository}")
            return {"repository": repository}
        ctx.warn(key, "build", f"built from {'; '.join(details)}: build it for the hosts' architecture and push it to "
                               f"the ECR repository ${{EnvironmentName}}/{repository} (registry.yaml) before deploying")
        for arg, value in args.items():
            if value and re.search(r"//(localhost|127\.0\.0\.1)\b", str(value)):
                ctx.warn(key, f"build.args.{arg}", f"'{_shown(ctx, arg, str(value))}' is baked into the image at "
                                                   "build time and points at "
                                                   "this machine: build with the deployed URL (the stack's outputs)")
        if svc.get("image"):
            ctx.note(key, "image", f"'{svc['image']}' names the built image in Compose: repository '{repository}'")
        out["repository"] = repository
        if platform:
            ctx.warn(key, "platform", f"{platform}: repository images must be built for the hosts' architecture "
                                      "(x86_64 for the default t3 hosts)")
    elif svc.get("image"):
        out["image"] = str(svc["image"])
        arch = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}.get(
            platform.split("/")[1] if "/" in platform else "", None)
        if arch:
            out["architectures"] = [arch]
        elif platform:
            ctx.warn(key, "platform", f"{platform}: not an architecture ECS hosts run (x86_64 or arm64)")
    else:
        ctx.warn(key, "image", "neither image nor build: set image or repository")
        out["image"] = "REPLACE-ME"
    return out


def _pairs(value: object) -> dict[str, Optional[str]]:
    """A Compose map-or-list (environment, args, labels) as a dict; None for a bare KEY."""
    if isinstance(value, dict):
        return {str(k): (None if v is None else _scalar(v)) for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, Optional[str]] = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            out[key] = val if sep else None
        return out
    return {}


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _resources(ctx: _Context, key: str, svc: dict) -> dict:
    resources = ((svc.get("deploy") or {}).get("resources") or {})
    limits = resources.get("limits") or {}
    reservations = resources.get("reservations") or {}
    cpus = limits.get("cpus", svc.get("cpus"))
    memory = limits.get("memory", svc.get("mem_limit"))
    where_cpu = "cpus" if "cpus" in svc and "cpus" not in limits else "deploy.resources.limits.cpus"
    where_mem = "mem_limit" if "mem_limit" in svc and "memory" not in limits else "deploy.resources.limits.memory"
    if cpus is None and reservations.get("cpus") is not None:
        cpus, where_cpu = reservations["cpus"], "deploy.resources.reservations.cpus"
    if memory is None and reservations.get("memory") is not None:
        memory, where_mem = reservations["memory"], "deploy.resources.reservations.memory"
    out = {}
    try:
        cpu = cpu_units(cpus) if cpus is not None and float(cpus) > 0 else None
    except (TypeError, ValueError, OverflowError):
        ctx.warn(key, where_cpu, f"'{cpus}' is not a number of CPUs: ignored")
        cpu = None
    if cpu is None:
        ctx.warn(key, where_cpu, f"no CPU limit in Compose: {DEFAULT_CPU} CPU units (0.25 vCPU); set `cpu`")
        cpu = DEFAULT_CPU
    elif cpu < config.TASK_CPU[0]:
        ctx.warn(key, where_cpu, f"{cpus} CPUs is {cpu} CPU units, below the ECS minimum: {config.TASK_CPU[0]}")
        cpu = config.TASK_CPU[0]
    out["cpu"] = cpu
    try:
        mib = mebibytes(memory) if memory is not None else None
    except (TypeError, ValueError):
        ctx.warn(key, where_mem, f"'{memory}' is not a byte value: ignored")
        mib = None
    if mib is None:
        ctx.warn(key, where_mem, f"no memory limit in Compose: {DEFAULT_MEMORY} MiB; set `memory` (ECS stops a task "
                                 "that exceeds it)")
        mib = DEFAULT_MEMORY
    elif mib < config.TASK_MEMORY[0]:
        ctx.warn(key, where_mem, f"{memory} is below the ECS minimum: {config.TASK_MEMORY[0]} MiB")
        mib = config.TASK_MEMORY[0]
    out["memory"] = mib
    if limits and ({"cpus", "memory"} & set(limits)) and reservations:
        ctx.warn(key, "deploy.resources.reservations", "not carried over: the task's cpu and memory are both what "
                                                       "ECS reserves and the limit")
    for extra in sorted(set(limits) - {"cpus", "memory"}):
        ctx.warn(key, f"deploy.resources.limits.{extra}", "not carried over")
    for extra in sorted(set(reservations) - {"cpus", "memory"}):
        ctx.warn(key, f"deploy.resources.reservations.{extra}", "not carried over (no devices or GPUs in the config)")
    return out


# Variable names whose whole value is a host name (DB_HOST=db, POSTGRES_SEEDS=postgresql), not a word that
# happens to be one: the word begins or ends a part of the name (PGHOST, HOSTNAME, REDIS_ADDR), so "URI"
# inside SECURITY is none.
_HOST_WORD = "HOSTS?|HOSTNAME|SERVERS?|ADDR|ADDRESS|ENDPOINTS?|URLS?|URI|DSN|BROKERS?|SEEDS?"
HOST_VARIABLE = re.compile(rf"(?:^|[^A-Za-z0-9])(?:{_HOST_WORD})|(?:{_HOST_WORD})(?:$|[^A-Za-z0-9])", re.IGNORECASE)
# What follows a URL's "://": [user[:password]@]host.
URL_AUTHORITY = re.compile(r"(?:[^/@\s]*@)?(?P<host>[A-Za-z0-9._-]+)")
_SCHEME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_LETTER = re.compile(r"[A-Za-z]")


def url_hosts(value: str, replace: Callable[[str], str]) -> str:
    """`value` with the host of each scheme://[user@]host in it replaced by replace(host).

    Found from each "://" outwards, so the work is linear in the value: a regular expression that
    starts a scheme at every letter rescans a long run of letters with no "://" from each of them
    (an 80 KB value took 10 s).
    """
    out, done, at = [], 0, value.find("://")
    while at != -1:
        start = at
        while start > done and value[start - 1] in _SCHEME:
            start -= 1
        letter = _LETTER.search(value, start, at)  # a scheme starts with a letter
        authority = URL_AUTHORITY.match(value, at + 3) if letter else None
        if authority is None:
            at = value.find("://", at + 3)
            continue
        out += [value[done:authority.start("host")], replace(authority.group("host"))]
        done = authority.end()
        at = value.find("://", done)
    return "".join(out) + value[done:]


LOCAL_URL = re.compile(r"^(https?://)(localhost|127\.0\.0\.1|0\.0\.0\.0)(?::(\d+))?(/.*)?$")


def _inside(path: Path, project: Path) -> Path:
    """`path`, or Refused when it (or a link on the way) leads out of the Compose project's folder.

    An env file's values land in app.yaml, so like a bind it is read only inside the project: not
    /proc/self/environ (the importer's own environment), not ../../home/me/.aws/credentials, not a
    link to either. An --env-file given on the command line is the user's choice and is not checked.
    """
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: a symlink loop (before Python 3.13)
        raise bounded.Refused(f"cannot read {printable(str(path))}: {getattr(err, 'strerror', None) or err}") from None
    if not resolved.is_relative_to(project.resolve()):
        raise bounded.Refused(f"{printable(str(path))} leads to {printable(str(resolved))}, outside the Compose "
                              f"project's folder ({printable(str(project.resolve()))}): refused")
    return resolved


def _environment(ctx: _Context, key: str, svc: dict, renamed: dict[str, str], public: dict[str, Port]) -> dict:
    merged: dict[str, Optional[str]] = {}
    files = svc.get("env_file")
    for i, entry in enumerate([files] if isinstance(files, (str, dict)) else (files or [])):
        spec = entry if isinstance(entry, dict) else {"path": entry}
        path = ctx.source_dir / str(spec.get("path", ""))
        try:
            text = bounded.read_text(_inside(path, ctx.source_dir), bounded.COMPOSE_BYTES, "env_file")
        except bounded.Refused as err:
            if spec.get("required", True):
                ctx.warn(key, "env_file", f"{err}; its variables are missing")
            continue
        if spec.get("format") == "raw":
            merged.update({k: v for k, _, v in (line.partition("=") for line in text.splitlines()
                                                if line.strip() and not line.startswith("#"))})
        else:
            merged.update(parse_env_file(text, ctx.variables.get,
                                         lambda name: _unset(ctx, key, f"env_file {spec.get('path')}", name)))
    merged.update(_pairs(svc.get("environment")))
    environment: dict[str, str] = {}
    absent: list[str] = []
    by_published = {port.published: k for k, port in public.items() if port.published}
    for var, value in merged.items():
        if value is None:
            value = ctx.variables.get(var)
            if value is None:
                absent.append(var)
                continue
        environment[var] = _rewrite_hosts(ctx, key, var, value, renamed, by_published, public)
    if absent:
        # `- NAME` passes the variable through from where Compose runs; set nowhere, the container does not get
        # it (https://docs.docker.com/compose/how-tos/environment-variables/set-environment-variables/):
        # the same here, and one sentence for them all, not one per variable (Jitsi lists 400).
        ctx.warn(key, "environment", f"{plural(len(absent), 'variable')} with no value in Compose, .env or "
                                     f"env_file left out, as `docker compose up` leaves them out when the shell "
                                     f"does not set them: {', '.join(absent)}; give the ones the app needs a value")
    return {"environment": environment}


def _unset(ctx: _Context, service: str, where: str, name: str) -> None:
    ctx.warn(service, where, f"variable {name} is not set (no .env value, no default): replaced by an empty string")


def _rewrite_hosts(ctx: _Context, key: str, var: str, value: str, renamed: dict[str, str],
                   by_published: dict[int, str], public: dict[str, Port]) -> str:
    """This machine's published URLs become {svc.url}. A Compose service name in a value resolves as it is
    (the VPC's search domain is the namespace: network.py) and stays; only a service whose config name
    differs (my_db is my-db) becomes {svc.host}, its Cloud Map name. Every name used as a host is remembered
    (which services others reach by name), with the port it is addressed on."""
    local = LOCAL_URL.match(value)
    if local:
        port = int(local.group(3) or 80)
        target = by_published.get(port)
        if target:
            new = "{" + renamed[target] + ".url}" + (local.group(4) or "").rstrip("/")
            ctx.note(key, f"environment.{var}", f"'{_shown(ctx, var, value)}' (a port published on this machine) "
                                                f"becomes {new}, the "
                                                "service's URL through the load balancer")
            return new
        ctx.warn(key, f"environment.{var}", f"'{_shown(ctx, var, value)}' points at this machine; no public "
                                            "service answers there")
        return value
    original = value

    def host(name: str) -> str:
        if name not in renamed or name == key:
            return name
        ctx.named_hosts.setdefault(key, set()).add(name)
        return name if renamed[name] == name else "{" + renamed[name] + ".host}"

    # In a URL the authority names a host, whatever the variable is called (scheme://[user@]host[:port]).
    value = url_hosts(value, host)
    for found in ADDRESSED.finditer(original):
        # A URL's authority, or the whole value: not an image reference (redis:7) inside other text.
        whole = found.span() == (0, len(original))
        if found.group("host") in renamed and found.group("host") != key and (
                whole or original[found.start() - 1] in "/@"):
            ctx.addressed.setdefault(found.group("host"), set()).add(int(found.group("port")))
    bare = re.fullmatch(r"(?P<host>[A-Za-z0-9._-]+)(?P<port>:\d+)?", value)
    if bare and bare.group("host") in renamed and (HOST_VARIABLE.search(var) or bare.group("port")):
        value = host(bare.group("host")) + (bare.group("port") or "")
    if value != original:
        ctx.note(key, f"environment.{var}", f"'{_shown(ctx, var, original)}' becomes '{_shown(ctx, var, value)}' "
                                            "(the service's config name differs from its Compose name, which would "
                                            "not resolve)")
    return value


# host:port, alone or as a URL's authority: the port a service is addressed on (http://n8n:5679).
ADDRESSED = re.compile(r"(?:(?<=//)|(?<=@)|(?<![\w.@/-]))(?P<host>[A-Za-z][A-Za-z0-9_-]*):(?P<port>\d{1,5})\b")


def _shown(ctx: _Context, var: str, value: str) -> str:
    """A value as a message may quote it: a secret's withheld, a URL's password masked (and both remembered)."""
    if _secret_kind(var, value):
        ctx.secret_values.add(value)
        return "(a secret's value, not shown)"
    for found in URL_PASSWORD.finditer(value):
        ctx.secret_values.add(found.group("password"))
    return URL_PASSWORD.sub(lambda m: m.group("head") + ":***@", value)


def _secrets(ctx: _Context, key: str, svc: dict, out: dict, secrets: dict[str, dict]) -> dict:
    """Compose secrets become generated secrets, written where Compose mounted them (`secret_files`):
    a program that reads /run/secrets/x, or X_FILE=/run/secrets/x, reads the same path on ECS."""
    declared = ctx.compose.get("secrets") or {}
    files: dict[str, str] = {}
    for i, entry in enumerate(svc.get("secrets") or []):
        source = str(entry.get("source", "")) if isinstance(entry, dict) else str(entry)
        target = str(entry.get("target") or source) if isinstance(entry, dict) else source
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        spec = declared.get(source)
        if spec is None:
            ctx.warn(key, f"secrets[{i}]", f"secret '{source}' is not declared at the top level: left out")
            continue
        secret = _label(source) or "secret"
        if secret not in secrets:
            origin = (f"from {spec['file']}" if isinstance(spec, dict) and spec.get("file") else
                      f"from ${spec['environment']}" if isinstance(spec, dict) and spec.get("environment") else
                      "external" if isinstance(spec, dict) and spec.get("external") else "")
            secrets[secret] = {"description": f"Compose secret {source}"}
            ctx.warn("", f"secrets.{source}", f"becomes the generated secret '{secret}': Secrets Manager generates "
                                              f"its value at deploy time (32 letters and digits); the Compose value "
                                              f"({origin or 'not given'}) is not copied. A value that must be exact "
                                              "(an API key) has to be set in Secrets Manager after deploying")
        files[path] = secret
        ctx.secret_mounts.setdefault(key, []).append((f"secrets[{i}]", path, secret))
    return {"secret_files": files} if files else {}


def _secret_files_as_variables(ctx: _Context, key: str, out: dict) -> None:
    """With no program to hand over to, no wrapper writes the secret files: each secret is given as an
    environment variable instead, which the app must read."""
    environment = out["environment"]
    given = out.setdefault("secrets", {})
    for where, path, secret in ctx.secret_mounts.get(key, []):
        pointer = next((var for var, value in environment.items() if value == path and var.endswith("_FILE")), None)
        if pointer:
            variable = pointer[:-len("_FILE")]
            del environment[pointer]
            ctx.note(key, where, f"{pointer}={path} becomes {variable} from the secret '{secret}': the image's "
                                 "entrypoint is unknown, so no wrapper can write the file before it starts")
        else:
            variable = re.sub(r"[^A-Za-z0-9_]", "_", path.rsplit("/", 1)[-1]).upper()
            if not re.match(r"[A-Z_]", variable):
                variable = f"SECRET_{variable}"
            ctx.warn(key, where, f"the container read the secret from the file {path}; it now gets it in the "
                                 f"environment variable {variable}, since the image's entrypoint is unknown and no "
                                 "wrapper can write the file before it starts: the app must read the variable "
                                 "instead, or set entrypoint to what the image runs")
        for var, value in environment.items():
            if value == path:  # a path, not a password: never made a secret of its own
                ctx.generated.add((out["name"], var))
                ctx.warn(key, f"environment.{var}", f"names the secret file {path}, which is not written (see "
                                                    f"{where})")
        environment.pop(variable, None)
        given[variable] = secret
    out.pop("secret_files", None)


# A password the app and its peers share: a value Secrets Manager generates serves as well.
# (PWD alone is the shell's working directory.)
PASSWORD_VARIABLE = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|_(PWD|PASS|AUTH)$|^PASS$", re.IGNORECASE)
# Services whose *_KEY variables hold a key they issued (STRIPE_KEY, SENDGRID_API_KEY, AWS_SECRET_ACCESS_KEY).
KEYED_SERVICES = ("AWS", "AZURE", "GOOGLE", "GCP", "STRIPE", "PAYPAL", "SENDGRID", "MAILGUN", "MAILCHIMP", "POSTMARK",
                  "TWILIO", "GITHUB", "GITLAB", "SLACK", "OPENAI", "ANTHROPIC", "DATADOG", "DD", "SENTRY", "ALGOLIA",
                  "PUSHER", "MAPBOX", "CLOUDFLARE", "HEROKU", "NPM", "DOCKER", "SEGMENT", "SHOPIFY", "FIREBASE")
# A key or token someone issued: secret too, but exact, so its value is set in Secrets Manager after deploying.
SECRET_LOOKING = re.compile(r"SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|SIGNING_?KEY|ENCRYPTION_?KEY|CREDENTIAL"
                            rf"|^({'|'.join(KEYED_SERVICES)})_(\w*_)?KEY$", re.IGNORECASE)
# Endings that make such a name hold something else: POSTGRES_PASSWORD_FILE is a path, JWT_SECRET_TTL a
# number, AWS_ACCESS_KEY_ID an identifier, TOKEN_URL an address (a password in a URL is found below).
NOT_A_SECRET_VARIABLE = re.compile(r"_(FILE|PATH|DIR|METHOD|TYPE|ALGORITHM|ALG|ID|LENGTH|TTL|EXPIRY|EXPIRES|"
                                   r"LIFETIME|HEADER|NAME|URL|URI|HOST|PORT|USER|USERNAME|ENABLED|REQUIRED|POLICY|"
                                   r"BACKEND|MODE)$", re.IGNORECASE)
NOT_A_PASSWORD = {"", "true", "false", "yes", "no", "0", "1", "on", "off"}
# scheme://user:password@host: the password, whatever the variable is called. Anchored at "://", not at
# the scheme: a match may start only there, so a long value is scanned once (see url_hosts).
URL_PASSWORD = re.compile(r"(?P<head>://[^/@\s:]*):(?P<password>[^/@\s]+)@")


def _secret_kind(var: str, value: str) -> Optional[str]:
    """"password" or "key" for a variable whose value is a secret; None for any other."""
    if value.lower() in NOT_A_PASSWORD or "{" in value or NOT_A_SECRET_VARIABLE.search(var):
        return None
    if PASSWORD_VARIABLE.search(var):
        return "password"
    return "key" if SECRET_LOOKING.search(var) else None


def _distinctive(value: str) -> bool:
    """Whether a secret's value, found inside other text, is that secret rather than a word it happens to be.

    A password of letters alone shorter than 12 ("postgres") appears in many values that are no
    secret (postgres://db/app) and in every message about the image of that name.
    """
    return len(value) >= 12 or (len(value) >= 4 and not value.isalpha())


def _password_secrets(ctx: _Context, services: list[dict], secrets: dict[str, dict], chosen: list[str]) -> None:
    """Every value that is, or holds, a secret becomes a generated secret; one per distinct value among services
    that connect (see `_groups`), under whatever name it is repeated, and every health check, command,
    entrypoint and file holding it follows it or is reported. Nothing of its value is written to app.yaml or
    said in a message.

    A secret fills a whole variable (ECS's `secrets`), never part of one: a URL's password moves to a
    variable of its own, and any other value holding a secret becomes a secret as a whole.
    """
    compose_name = dict(zip((s["name"] for s in services), chosen))
    for svc in services:
        for var, value in list(svc["environment"].items()):
            found = URL_PASSWORD.search(value)
            if not found or (svc["name"], var) in ctx.generated or "{" in found.group("password") \
                    or found.group("password").lower() in NOT_A_PASSWORD:
                continue
            holder = _unique(f"{var}_PASSWORD", svc["environment"], "_")
            ctx.secret_values.update((value, found.group("password")))
            svc["environment"][var] = URL_PASSWORD.sub(lambda m: m.group("head") + "@", value)
            svc["environment"][holder] = found.group("password")
            ctx.warn(compose_name[svc["name"]], f"environment.{var}",
                     f"its URL held a password: the URL keeps the rest, and the password is in {holder}, from a "
                     "generated secret (ECS fills a whole variable from a secret, never part of one); the app must "
                     f"read it from {holder}, or set the whole URL in Secrets Manager after deploying")
    config_name = dict(zip(chosen, (s["name"] for s in services)))
    links = _links(services, {config_name[key]: {config_name[n] for n in names if n in config_name}
                              for key, names in ctx.named_hosts.items() if key in config_name})
    # value -> its uses (service, variable, why it is a secret): "password", "key", "same" (the value of a
    # secret under any other name) or "whole" (a value with a secret inside).
    holders: dict[str, list[tuple[dict, str, str]]] = {}
    held: set[tuple[str, str]] = set()
    for svc in services:
        paths = svc.get("secret_files") or {}
        for var, value in svc["environment"].items():
            kind = None if (svc["name"], var) in ctx.generated or value in paths else _secret_kind(var, value)
            if kind:
                holders.setdefault(value, []).append((svc, var, kind))
                held.add((svc["name"], var))
    # Words a short value may be without being that secret: a user named like its password (postgres).
    words = {str(name).lower() for name in chosen} | {_image_name(ctx.compose["services"][name]) for name in chosen}
    words |= {value.lower() for svc in services for var, value in svc["environment"].items()
              if NOT_A_SECRET_VARIABLE.search(var)}
    for value in list(holders):
        inside, same = _distinctive(value), len(value) >= 8 and value.lower() not in words
        for svc in services:
            for var, other in svc["environment"].items():
                if (svc["name"], var) in held or (svc["name"], var) in ctx.generated:
                    continue
                if other == value and (inside or same):
                    holders[value].append((svc, var, "same"))
                elif inside and value in other:
                    holders.setdefault(other, []).append((svc, var, "whole"))
                else:
                    continue
                held.add((svc["name"], var))
    chosen_secret: dict[tuple[str, str], str] = {}  # (value, service) -> the secret its uses there became
    for value, uses in holders.items():
        ctx.secret_values.add(value)
        groups = _groups(uses, links)
        for group in groups:
            first_svc, first_var, _ = group[0]
            secret = _unique(_label(first_var), secrets)
            secrets[secret] = {"description": f"{first_var} of {first_svc['name']} (imported from Compose)"}
            apart = [f"{compose_name[s['name']]}.{v}" for other in groups if other is not group for s, v, _ in other]
            for svc, var, kind in group:
                del svc["environment"][var]
                svc.setdefault("secrets", {})[var] = secret
                chosen_secret.setdefault((value, svc["name"]), secret)
                _said_secret(ctx, (compose_name[svc["name"]], f"environment.{var}"), secret, kind,
                             [f"{compose_name[s['name']]}.{v}" for s, v, _ in group
                              if (s["name"], v) != (svc["name"], var)], apart)
    # Where a value is looked for in commands and files: anywhere when distinctive, else as a word of its own;
    # a commands' word of 8 characters or more that is no name is taken for the secret, a shorter one is said.
    patterns = {value: re.compile(re.escape(value) if _distinctive(value) else rf"(?<![\w.-]){re.escape(value)}"
                                  r"(?![\w.-])") for value in sorted(holders, key=len, reverse=True)
                if _distinctive(value) or len(value) >= 4 and value.lower() not in words}
    sure = {value: pattern for value, pattern in patterns.items() if _distinctive(value) or len(value) >= 8}
    _secrets_in_commands(ctx, services, holders, chosen_secret, links, compose_name, sure)
    # A file is no command: a word such as "password" in it is left there, and said.
    _secrets_in_files(ctx, services, holders, compose_name, {v: p for v, p in patterns.items() if _distinctive(v)})
    _unsure_secrets(ctx, services, holders, compose_name, {v: p for v, p in patterns.items() if v not in sure},
                    {v: p for v, p in patterns.items() if not _distinctive(v)})


def _said_secret(ctx: _Context, where: tuple[str, str], secret: str, kind: str, shared: list[str],
                 apart: list[str]) -> None:
    """What became of one variable; a warning where the user has something to do or decide, a note otherwise."""
    together = f", shared with {', '.join(shared)}" if shared else ""
    if apart:
        together += (f"; {', '.join(apart)} had the same value in Compose, under another name, but do not connect "
                     "to this service (no depends_on or name between them), so theirs is a secret of its own: set "
                     "them equal in Secrets Manager if they must match")
    message = {
        "password": f"a plain password in Compose; now the generated secret '{secret}'{together} (the Compose value "
                    "is not copied)",
        "key": f"looks secret; now the generated secret '{secret}'{together} (the Compose value is not copied): if "
               "it must be exact (a key someone issued), set it in Secrets Manager after deploying",
        "same": f"held the same value as a secret, so it is that secret: the generated secret '{secret}'{together} "
                "(the Compose value is not copied)",
        "whole": f"holds a secret's value, so it is a secret as a whole: the generated secret '{secret}'{together} "
                 "(the Compose value is not copied); set its exact value in Secrets Manager after deploying",
    }[kind]
    (ctx.warn if apart or kind in ("key", "whole") else ctx.note)(*where, message)


def _links(services: list[dict], hosts: dict[str, set[str]]) -> dict[str, set[str]]:
    """Which services connect, either way: depends_on, or a name in the environment ({svc.host}, {svc.url}, or
    a service's own name, which resolves as written: `hosts`, by config name)."""
    links: dict[str, set[str]] = {svc["name"]: set() for svc in services}
    for svc in services:
        named = {ref.service for value in svc["environment"].values() for ref in config.references(str(value))}
        named |= hosts.get(svc["name"], set())
        for other in (set(svc.get("depends_on") or ()) | named) & set(links) - {svc["name"]}:
            links[svc["name"]].add(other)
            links[other].add(svc["name"])
    return links


def _groups(uses: list[tuple[dict, str, str]], links: dict[str, set[str]]) -> list[list[tuple[dict, str, str]]]:
    """The uses of one value, grouped: one secret per group. Two uses are in one group when they are the same
    variable (SECRET_KEY of a web and a worker process: one setting of the app), both keys or tokens (nobody
    picks the same random key twice by chance), or in services that connect (a client's DB_PASSWORD and the
    database's POSTGRES_PASSWORD: one credential), or through another use.

    Compose gives every service its own value; equal passwords under different names in services that never
    talk (a dashboard's admin login and a database's superuser password) are a coincidence of the kind people
    make ("changeme"): one secret would tie them together for no reason, and a leak of either would open both."""
    parent = list(range(len(uses)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (svc, var, kind) in enumerate(uses):
        for j in range(i):
            other, other_var, other_kind = uses[j]
            if var == other_var or kind == other_kind == "key" or svc["name"] == other["name"] \
                    or other["name"] in links[svc["name"]]:
                parent[root(i)] = root(j)
    groups: dict[int, list] = {}
    for i, use in enumerate(uses):
        groups.setdefault(root(i), []).append(use)
    return list(groups.values())


def _shell_substitute(text: str, value: re.Pattern, variable: str) -> str:
    """A shell command with each `value` in it read from $variable instead, wherever it stands: unquoted it
    becomes "${variable}", in double quotes ${variable}, and in single quotes, where the shell expands
    nothing, the quotes are closed around "${variable}"."""
    reference = "${" + variable + "}"
    out, i, quote = [], 0, None
    while i < len(text):
        found = value.match(text, i)
        if found:
            out.append({None: f'"{reference}"', '"': reference, "'": f"'\"{reference}\"'"}[quote])
            i = found.end()
            continue
        char = text[i]
        if char == "\\" and quote != "'" and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
            continue
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        out.append(char)
        i += 1
    return "".join(out)


def _shell_word(arg: str, found: list[tuple[re.Pattern, str]]) -> str:
    """One argument of an exec form as a shell word, with each secret value in it read from its variable."""
    for value, variable in found:
        if value.search(arg):
            return f'"${{{variable}}}"'.join(_shell_word(piece, found) if piece else "" for piece in value.split(arg))
    return shlex.quote(arg)


def _variable_for(svc: dict, value: str, holders: dict[str, list[tuple[dict, str, str]]],
                  chosen_secret: dict[tuple[str, str], str], links: dict[str, set[str]]) -> tuple[str, str]:
    """The variable that holds `value`'s secret in `svc` (added from the secret when it has none), and the secret."""
    secret = chosen_secret.get((value, svc["name"]))
    if secret is None:  # not in this service's environment: the secret of a service it connects to, or the first
        near = [(other, var) for other, var, _ in holders[value] if other["name"] in links[svc["name"]]]
        other, var = (near or [holders[value][0][:2]])[0]
        secret = other["secrets"][var]
    given = svc.setdefault("secrets", {})
    for variable, name in given.items():
        if name == secret:
            return variable, secret
    variable = _unique(holders[value][0][1], {**svc["environment"], **given}, "_")
    given[variable] = secret
    return variable, secret


def _secrets_in_commands(ctx: _Context, services: list[dict], holders: dict[str, list[tuple[dict, str, str]]],
                         chosen_secret: dict[tuple[str, str], str], links: dict[str, set[str]],
                         compose_name: dict[str, str], patterns: dict[str, re.Pattern]) -> None:
    """A secret's value written into a health check, command or entrypoint (Compose interpolates ${VAR} from
    .env at import time) is read from the variable that holds it instead; the container has it from the
    secret (ECS injects secrets as environment variables,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html).

    A health check runs through the container's shell (CMD-SHELL). A command or entrypoint runs without
    one, as an exec form: it is run through /bin/sh -c "exec ..." with the program's words quoted, which
    needs the program's entrypoint (Compose's, or a known image's) and a shell in the image."""
    for svc in services:
        key = compose_name[svc["name"]]
        check = svc.get("health_check") or {}
        for value, pattern in patterns.items():
            if pattern.search(check.get("command") or ""):
                variable, secret = _variable_for(svc, value, holders, chosen_secret, links)
                check["command"] = _shell_substitute(check["command"], pattern, variable)
                ctx.note(key, "healthcheck.test", f"held the value of the secret '{secret}': now ${{{variable}}}, "
                                                  "which the container's shell reads from the secret")
        words = [str(part) for part in (svc.get("entrypoint") or []) + (svc.get("command") or [])]
        inside = [value for value, pattern in patterns.items() if any(pattern.search(word) for word in words)]
        if not inside:
            continue
        where = "entrypoint" if any(patterns[value].search(str(part)) for value in inside
                                    for part in svc.get("entrypoint") or []) else "command"
        known = _known(ctx.compose["services"][key])
        program: Optional[list[str]] = None
        if svc.get("entrypoint"):
            program = words
        elif known and known.entrypoint:
            program = [*known.entrypoint, *(svc.get("command") or known.command)]
        found = [(patterns[value], _variable_for(svc, value, holders, chosen_secret, links)[0]) for value in inside]
        if program is None:
            # The Compose value is written nowhere: the words hold the variable's name, which the user wires up.
            for name in ("entrypoint", "command"):
                for pattern, variable in found:
                    if svc.get(name):
                        svc[name] = [pattern.sub(f"${{{variable}}}", str(part)) for part in svc[name]]
            variables = ", ".join(variable for _, variable in found)
            ctx.warn(key, where, f"held the value of {variables}, a secret now, and holds ${{...}} in its place, which "
                                 "nothing expands: ECS runs it without a shell, and the image's entrypoint is unknown, "
                                 "so it cannot be run through one; set entrypoint in the Compose file to what the "
                                 f"image runs and import again, or change the {where} to read {variables}")
            continue
        svc["entrypoint"] = ["/bin/sh", "-c", "exec " + " ".join(_shell_word(word, found) for word in program)]
        svc.pop("command", None)
        ctx.note(key, where, f"held the value of {', '.join(v for _, v in found)}, a secret now: it runs through "
                             f"/bin/sh -c \"exec ...\" so the shell reads {', '.join('$' + v for _, v in found)} from "
                             "the secret (ECS runs a command without a shell; the image needs /bin/sh)")


def _secrets_in_files(ctx: _Context, services: list[dict], holders: dict[str, list[tuple[dict, str, str]]],
                      compose_name: dict[str, str], patterns: dict[str, re.Pattern]) -> None:
    """A carried file holding a secret's value is not carried: its text would sit in the task definition in
    plain text, and it would hold the Compose value, not the generated secret's."""
    for svc in services:
        for target, source in list((svc.get("files") or {}).items()):
            text = ctx.file_contents.get(source, "")
            secret_of = next((holders[v][0][0]["secrets"][holders[v][0][1]] for v, pattern in patterns.items()
                              if pattern.search(text)), None)
            if secret_of is None:
                continue
            del svc["files"][target]
            ctx.warn(compose_name[svc["name"]], f"files.{target}", f"{source} holds the value of the secret "
                     f"'{secret_of}': not carried over (its text would sit in plain text in the task definition, "
                     "with the Compose value rather than the generated one); have the program read the secret's "
                     "variable, or put the file in the image and set the secret's value in Secrets Manager")
    used = {source for svc in services for source in (svc.get("files") or {}).values()}
    for source in [name for name in ctx.file_contents if name not in used]:
        del ctx.file_contents[source]


def _unsure_secrets(ctx: _Context, services: list[dict], holders: dict[str, list[tuple[dict, str, str]]],
                    compose_name: dict[str, str], in_commands: dict[str, re.Pattern],
                    in_files: dict[str, re.Pattern]) -> None:
    """A short secret value standing as a word in a check, command or file may be that secret or a word
    that happens to be the same: it is left, and said."""
    for svc in services:
        texts = [("healthcheck.test", (svc.get("health_check") or {}).get("command") or "", in_commands)]
        texts += [(name, " ".join(map(str, svc.get(name) or [])), in_commands) for name in ("entrypoint", "command")]
        texts += [(f"files.{target}", ctx.file_contents.get(source, ""), in_files) for target, source in
                  (svc.get("files") or {}).items()]
        for where, text, patterns in texts:
            for value, pattern in patterns.items():
                if pattern.search(text):
                    first_svc, first_var, _ = holders[value][0]
                    ctx.warn(compose_name[svc["name"]], where, f"holds a word equal to the value of "
                             f"{compose_name[first_svc['name']]}.{first_var}, a generated secret now, too short to "
                             "tell it from a word that happens to be the same: left as it was; if it is that "
                             "password, read it from the secret's variable, or make the value 12 characters or "
                             "more in Compose and import again")


def _unique(base: str, taken: dict, joiner: str = "-") -> str:
    candidate, n = base or "secret", 2
    while candidate in taken:
        candidate = f"{base}{joiner}{n}"
        n += 1
    return candidate


LOCALHOST_URL_PATH = re.compile(r"https?://(?:localhost|127\.0\.0\.1)(?::(\d+))?(/[^\s'\"|;&]*)?")


def _healthcheck(ctx: _Context, key: str, svc: dict, port: int, public: bool) -> dict:
    spec = svc.get("healthcheck")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        ctx.warn(key, "healthcheck", "not a mapping: ignored")
        return {}
    if spec.get("disable") is True:
        ctx.note(key, "healthcheck", "disabled: no container health check")
        return {}
    test = spec.get("test")
    command = None
    if isinstance(test, str):
        command = test
    elif isinstance(test, list) and test:
        head, args = str(test[0]), [str(a) for a in test[1:]]
        if head == "NONE":
            ctx.note(key, "healthcheck.test", "NONE: no container health check")
            return {}
        if head == "CMD-SHELL":
            command = " ".join(args)
        elif head == "CMD":
            command = shlex.join(args)
            ctx.note(key, "healthcheck.test", f"CMD form runs as the shell command: {command}")
        else:
            ctx.warn(key, "healthcheck.test", f"'{head}' is not NONE, CMD or CMD-SHELL: ignored")
    if command is None:
        ctx.warn(key, "healthcheck", "no test: ECS does not run an image's own HEALTHCHECK, so the timings alone "
                                     "are not carried over")
        return {}
    check: dict = {"command": command}
    for name in ("interval", "timeout", "retries", "start_period"):
        if spec.get(name) is None:
            continue
        try:
            value = int(spec[name]) if name == "retries" else round(duration_seconds(spec[name]))
        except (TypeError, ValueError) as err:
            ctx.warn(key, f"healthcheck.{name}", f"{err}: ignored")
            continue
        low, high = HEALTH_LIMITS[name]
        if not low <= value <= high:
            clamped = min(max(value, low), high)
            ctx.warn(key, f"healthcheck.{name}", f"{spec[name]} is outside what ECS allows ({low}-{high}): {clamped}")
            value = clamped
        check[name] = value
    interval = check.get("interval", config.HealthCheck.interval)
    if check.get("timeout", config.HealthCheck.timeout) >= interval:
        timeout = max(HEALTH_LIMITS["timeout"][0], interval - 1)
        ctx.warn(key, "healthcheck.timeout", f"ECS needs the timeout shorter than the interval ({interval} s): {timeout}")
        check["timeout"] = timeout
    if spec.get("start_interval") is not None:
        ctx.warn(key, "healthcheck.start_interval", "not carried over (ECS has no start interval)")
    if public:
        found = LOCALHOST_URL_PATH.search(command)
        if found and int(found.group(1) or 80) == port:
            check["path"] = found.group(2) or "/"
            if check["path"] != "/":
                ctx.note(key, "healthcheck", f"the load balancer probes {check['path']}, the path the health check "
                                             "calls")
    return {"health_check": check}


def _depends_on(ctx: _Context, key: str, svc: dict, chosen: list[str], renamed: dict[str, str],
                services: dict[str, dict]) -> dict:
    result = []
    for dep, spec in _dependencies(svc).items():
        condition = spec.get("condition", "service_started")
        where = f"depends_on.{dep}"
        if dep not in services:
            ctx.warn(key, where, f"unknown service '{dep}': left out")
            continue
        if condition == "service_completed_successfully":
            ctx.warn(key, where, f"waits for the one-off job '{dep}' to complete, which is not imported: run it "
                                 "before deploying")
            continue
        if dep not in chosen:
            ctx.warn(key, where, f"'{dep}' is not imported (see its warning): dependency left out")
            continue
        if condition == "service_healthy" and not (services[dep].get("healthcheck") or {}).get("test"):
            ctx.warn(key, where, f"service_healthy, but '{dep}' has no health check test in Compose: ECS waits only "
                                 "for its tasks to run")
        elif condition not in ("service_started", "service_healthy"):
            ctx.warn(key, where, f"unknown condition '{condition}': treated as service_started")
        if spec.get("required") is False:
            ctx.warn(key, f"{where}.required", "false is not carried over: the dependency is required")
        if spec.get("restart"):
            ctx.warn(key, f"{where}.restart", "not carried over: ECS does not restart dependents when a dependency "
                                              "is redeployed")
        result.append(renamed[dep])
    return {"depends_on": result} if result else {}


def _program(ctx: _Context, key: str, svc: dict) -> dict:
    out = {}
    for name in ("entrypoint", "command"):
        value = svc.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as err:
                ctx.warn(key, name, f"cannot split '{value}' like a shell would ({err}): ignored")
                continue
        if not isinstance(value, list):
            ctx.warn(key, name, "expected a string or a list: ignored")
            continue
        if not value:
            ctx.warn(key, name, f"empty: clearing the image's {name} is not expressible; the image's own is used")
            continue
        out[name] = [_scalar(v) for v in value]
    return out


def _owner(svc: dict) -> Optional[tuple[int, int]]:
    owners = DATA_OWNERS.get(_image_name(svc))
    if owners is None or svc.get("build"):
        return None
    alpine = "alpine" in str(svc.get("image") or "").split(":", 1)[-1]
    return owners[1] if alpine else owners[0]


def _named_volume(ctx: _Context, key: str, where: str, svc: dict, mount, out: dict, files: dict) -> None:
    """The first named volume of a service whose image's user is known becomes its EFS `data`."""
    owner = _owner(svc)
    if "data" in out or owner is None:
        reason = ("a service keeps one data directory on EFS" if "data" in out else
                  "the image's user id is unknown, so the data's owner is too: add data: {path, uid, gid} by hand")
        ctx.warn(key, where, f"named volume '{mount.source}' at {mount.target}: not carried over ({reason}); "
                             "its data would not outlive the task")
        return
    out["data"] = {"path": mount.target, "uid": owner[0], "gid": owner[1]}
    ctx.note(key, where, f"named volume '{mount.source}' at {mount.target}: kept on the app's EFS file system, "
                         f"owned by {owner[0]}:{owner[1]} (the image's user)")
    if _image_name(svc) == "postgres" and "PGDATA" not in out.get("environment", {}):
        out.setdefault("environment", {})["PGDATA"] = mount.target.rstrip("/") + "/pgdata"
        ctx.generated.add((out["name"], "PGDATA"))
        ctx.note(key, where, "PGDATA set to a subdirectory of the volume, as postgres advises for mounted storage")


def _mounts(ctx: _Context, key: str, svc: dict, out: dict) -> dict:
    """A named volume becomes `data` on EFS when the image's user is known (warned otherwise); small
    bind-mounted files and configs become `files`."""
    declared = ctx.compose.get("volumes") or {}
    files: dict[str, str] = {}
    texts: dict[str, str] = {}
    carried: list[tuple[str, str, list[str]]] = []  # (where, source, targets) of each bind that can become files
    for i, entry in enumerate(svc.get("volumes") or []):
        where = f"volumes[{i}]"
        mount = parse_volume(entry, declared)
        if mount.kind == "volume":
            _named_volume(ctx, key, where, svc, mount, out, files)
        elif mount.kind == "anonymous":
            ctx.warn(key, where, f"anonymous volume at {mount.target}: its data does not outlive the task")
        elif mount.kind == "bind":
            before = set(files)
            if _bind(ctx, key, where, mount, files, texts):
                carried.append((where, mount.source, sorted(set(files) - before)))
        else:
            ctx.warn(key, where, f"{mount.kind} mount at {mount.target}: not carried over")
    declared_configs = ctx.compose.get("configs") or {}
    for i, entry in enumerate(svc.get("configs") or []):
        where = f"configs[{i}]"
        source = str(entry.get("source", "")) if isinstance(entry, dict) else str(entry)
        target = str(entry.get("target") or f"/{source}") if isinstance(entry, dict) else f"/{source}"
        spec = declared_configs.get(source)
        if isinstance(spec, dict) and spec.get("file"):
            before = set(files)
            if _bind(ctx, key, where, Mount("bind", str(spec["file"]), target), files, texts):
                carried.append((where, str(spec["file"]), sorted(set(files) - before)))
        else:
            ctx.warn(key, where, f"config '{source}' is not a file in Compose (content, environment or external): "
                                 "not carried over")
    if not files and not out.get("secret_files"):
        return {}
    # The wrapper that writes the files replaces the entrypoint, then must run what the image runs.
    known = _known(svc)
    if not out.get("entrypoint") and (not known or not known.entrypoint):
        for where, source, targets in carried:
            ctx.warn(key, where, f"{source} at {', '.join(targets)}: "
                                 "not carried over: written into the container by a wrapper that then hands over to "
                                 "the image's entrypoint, which is unknown for this image; set entrypoint (and "
                                 "command) to what the image runs and add the files under `files`")
        _secret_files_as_variables(ctx, key, out)
        return {}
    for where, source, _ in carried:
        ctx.note(key, where, f"{source} becomes `files` (written into the container at start; changes on this "
                             "machine need a new deployment)")
    for where, path, secret in ctx.secret_mounts.get(key, []):
        ctx.note(key, where, f"{path} is written at start from the generated secret '{secret}' (readable by all, "
                             "as Compose mounts it), so what read it under Compose reads it here")
    ctx.file_contents.update(texts)
    result = {"files": files} if files else {}
    if out.get("entrypoint"):
        return result
    command = out.get("command") or list(known.command)
    ctx.note(key, "volumes" if files else "secrets", f"entrypoint {shlex.join(known.entrypoint)} (what "
             f"{_image_name(svc)} runs) set explicitly, so the files are written before it starts")
    return {"entrypoint": list(known.entrypoint), "command": command, **result}


# The Docker daemon's socket, at either of the paths Linux hosts give it (/var/run is commonly a link to /run).
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
# Paths that hold credentials or keys: a bind of one is refused, never read, wherever it is.
SECRET_PATH = re.compile(
    r"(^|/)(\.aws|\.ssh|\.gnupg|\.kube|\.docker|\.azure|\.gcloud|gcloud|\.password-store|\.vault-token)(/|$)"
    r"|(^|/)(\.netrc|\.pgpass|\.my\.cnf|\.git-credentials|\.npmrc|\.pypirc|\.htpasswd|\.env(\.[^/]*)?"
    r"|id_(rsa|dsa|ecdsa|ed25519)[^/]*|authorized_keys|known_hosts|credentials(\.[^/]*)?"
    r"|[^/]*\.(pem|key|p12|pfx|jks|keystore|kdbx|ovpn))$", re.IGNORECASE)


def _bind(ctx: _Context, key: str, where: str, mount: Mount, files: dict[str, str], texts: dict[str, str]) -> bool:
    """Whether a bind mount of files inside the Compose project's folder can become `files` (target -> source,
    source -> text, for `_mounts` to keep or drop); anything else is refused without reading it: their text
    would sit in plain text in the task definition."""
    raw = mount.source
    if not raw.startswith((".", "~")) and Path(raw).is_absolute():
        if os.path.normpath(raw) in DOCKER_SOCKETS:
            ctx.warn(key, where, f"the Docker socket {raw} at {mount.target}: not carried over. ECS hosts have it, but "
                                 "whoever holds it commands the host's Docker, so every task on that host and the "
                                 "host itself; the config mounts no host path, and giving a container that is a "
                                 "decision to make by hand in the task definition, knowingly")
        else:
            ctx.warn(key, where, f"host path {raw} at {mount.target}: not carried over (the config mounts no host "
                                 "path: a task may start on any host, which holds only what the AMI put there)")
        return False
    refused = f"bind mount of {raw} at {mount.target}: refused, nothing from it is read:"
    if SECRET_PATH.search(os.path.normpath(raw)):
        ctx.warn(key, where, f"{refused} it looks like credentials or keys; give the app what it needs as a Compose "
                             "secret (it becomes a Secrets Manager secret)")
        return False
    root = ctx.source_dir.resolve()
    relative = os.path.relpath(os.path.normpath(root / os.path.expanduser(raw)), root)
    if relative == ".." or relative.startswith(("../", "/")):
        ctx.warn(key, where, f"{refused} it is outside the Compose project's folder ({root}); files are read from "
                             "there only")
        return False
    path = root / relative
    if not path.exists():
        ctx.warn(key, where, f"bind mount of {raw}, which does not exist here: not carried over")
        return False
    if path.is_dir() and not path.is_symlink():
        found = []
        for folder, dirs, names in os.walk(path):  # never into a linked folder; read_file refuses it below
            found += [Path(folder, name) for name in names + [d for d in dirs if Path(folder, d).is_symlink()]]
        found = [(p, f"{mount.target.rstrip('/')}/{p.relative_to(path).as_posix()}") for p in sorted(found)]
    else:
        found = [(path, mount.target)]
    if len(found) > MAX_FILES:
        ctx.warn(key, where, f"bind mount of {raw} at {mount.target} ({len(found)} files): only up to {MAX_FILES} "
                             f"text files of {MAX_FILES_BYTES // 1024} KiB in all are carried over as `files`; the "
                             "image must contain the rest")
        return False
    read: dict[str, str] = {}
    for file, _ in found:
        name = file.relative_to(root).as_posix()
        real = file.resolve()  # a link inside the project to its .env is the .env
        if SECRET_PATH.search(name) or real.is_relative_to(root) \
                and SECRET_PATH.search(real.relative_to(root).as_posix()):
            ctx.warn(key, where, f"{refused} {name} looks like credentials or keys; give the app what it needs as a "
                                 "Compose secret (it becomes a Secrets Manager secret)")
            return False
        try:
            read[name] = config.read_file(root, name, "the Compose project's folder")
        except config.NotText as err:
            ctx.warn(key, where, f"bind mount of {raw} at {mount.target}: {err}; only up to {MAX_FILES} text files "
                                 f"of {MAX_FILES_BYTES // 1024} KiB in all are carried over as `files`; the image "
                                 "must contain the rest")
            return False
        except config.FileRefused as err:
            ctx.warn(key, where, f"{refused} {err}")
            return False
    if not found:
        ctx.warn(key, where, f"bind mount of {raw} at {mount.target}: the folder is empty here, so there is nothing to "
                             f"carry over; the container sees what the image has at {mount.target}, not an empty "
                             "folder")
        return False
    size = sum(config.file_bytes(text) for text in read.values())
    if size > MAX_FILES_BYTES:
        ctx.warn(key, where, f"bind mount of {raw} at {mount.target} ({len(found)} files, {size} bytes): "
                             f"only up to {MAX_FILES} text files of {MAX_FILES_BYTES // 1024} KiB in all are carried "
                             "over as `files`; the image must contain the rest")
        return False
    for (_, target), (name, text) in zip(found, read.items()):
        files[target] = name
        texts[name] = text
    return True


def _deploy(ctx: _Context, key: str, svc: dict, out: dict) -> dict:
    deploy = svc.get("deploy") or {}
    result: dict = {}
    replicas = deploy.get("replicas", svc.get("scale"))
    if replicas is not None:
        if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 0:
            result["desired_count"] = replicas
        else:
            ctx.warn(key, "deploy.replicas", f"'{replicas}' is not a number of tasks: ignored")
    mode = deploy.get("mode")
    if mode not in (None, "replicated"):
        ctx.warn(key, "deploy.mode", f"{mode} is not carried over: the service runs desired_count tasks")
    update = deploy.get("update_config") or {}
    order = update.get("order")
    if order == "stop-first":
        result["deployment"] = {"min_healthy_percent": 0, "max_percent": 100}
    elif order not in (None, "start-first"):
        ctx.warn(key, "deploy.update_config.order", f"unknown order '{order}': ignored")
    elif order is None and (_is_data_store(svc, out["port"]) or "data" in out):
        result["deployment"] = {"min_healthy_percent": 0, "max_percent": 100}
        ctx.note(key, "deploy", ("a data store" if "data" not in out else "its data is on EFS")
                 + ": a deployment stops the old task before starting the new one (two must never share its data)")
    if "data" in out and (result.get("deployment", {}).get("max_percent", 100) > 100
                          or result.get("desired_count", 1) > 1):
        result["deployment"] = {"min_healthy_percent": 0, "max_percent": 100}
        result["desired_count"] = min(result.get("desired_count", 1), 1)
        ctx.warn(key, "deploy", "its data is on EFS, which one task at a time may write: one task, stopped before "
                                "its replacement starts (replicas and start-first are not carried over)")
    for extra in sorted(set(update) - {"order"}):
        ctx.warn(key, f"deploy.update_config.{extra}", "not carried over: ECS replaces tasks as the deployment's "
                                                       "min_healthy_percent and max_percent allow")
    reasons = {"restart_policy": "ECS replaces every task that stops",
               "rollback_config": "the deployment circuit breaker rolls back a failed deployment",
               "placement": "tasks spread over availability zones, then bin-pack on memory",
               "labels": "not carried over", "endpoint_mode": "services resolve through Cloud Map"}
    for extra in sorted(set(deploy) - {"replicas", "mode", "update_config", "resources"}):
        ctx.warn(key, f"deploy.{extra}", reasons.get(extra, "not carried over"))
    return result


# What `docker compose up` gives a container that names no capability (moby's defaults, listed under
# "Runtime privilege and Linux capabilities", https://docs.docker.com/engine/containers/run/), less NET_RAW:
# raw sockets let a container forge packets to its neighbours on the host, and no program of an app needs
# them (ping works without, through the ping_group_range sysctl Docker sets). The same set is the
# Kubernetes Pod Security Standards' baseline (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
COMPOSE_CAPABILITIES = ("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")


def _privileges(ctx: _Context, key: str, svc: dict) -> dict:
    """read_only, tmpfs, cap_add / cap_drop, user and init onto the config's least-privilege keys.

    The config's defaults (a read-only root, no capability) are for images whose needs are known; an
    imported image was made and tried under Compose's (a writable root, Docker's capabilities: the
    official postgres image chowns its directories and steps down to its user with them), so where the
    Compose file says nothing the service keeps those, less NET_RAW, and a note says how to tighten it.
    privileged is refused by the hosts (ECS_DISABLE_PRIVILEGED): it is reported, never carried over.
    """
    out: dict = {"read_only": bool(svc.get("read_only", False))}
    tmpfs = svc.get("tmpfs")
    entries = [str(entry) for entry in ([tmpfs] if isinstance(tmpfs, str) else tmpfs or [])]
    if entries:
        out["writable"] = list(dict.fromkeys(entry.split(":", 1)[0] for entry in entries))
        ctx.note(key, "tmpfs", f"{', '.join(out['writable'])}: writable, a tmpfs each"
                 + (" (Compose's options are not carried over)" if any(":" in entry for entry in entries) else ""))
    dropped = {str(c).upper().removeprefix("CAP_") for c in svc.get("cap_drop") or []}
    added = []
    for entry in svc.get("cap_add") or []:
        name = str(entry).upper().removeprefix("CAP_")
        if name == "ALL":
            ctx.warn(key, "cap_add", "ALL is not carried over: name the capabilities the program needs under "
                                     "capabilities")
        else:
            added.append(name)
    kept = [] if "ALL" in dropped else [name for name in COMPOSE_CAPABILITIES if name not in dropped]
    out["capabilities"] = list(dict.fromkeys(kept + added))
    if svc.get("user") is not None:
        out["user"] = str(svc["user"])
    if "init" in svc:
        out["init"] = bool(svc["init"])
    if svc.get("privileged"):
        ctx.warn(key, "privileged", "not carried over: the hosts refuse privileged containers; list the "
                                    "capabilities the program needs under capabilities")
    return out


def _default_privileges(ctx: _Context, chosen: list[str], services: dict[str, dict]) -> None:
    """Where Compose says nothing, the service keeps what Compose gave it: say so, and how to tighten it."""
    open_root = [key for key in chosen if "read_only" not in services[key]]
    default_caps = [key for key in chosen if "ALL" not in
                    {str(c).upper().removeprefix("CAP_") for c in services[key].get("cap_drop") or []}]
    if open_root:
        ctx.note("", "read_only", f"{', '.join(open_root)}: a writable root file system, as under Compose; "
                                  "read_only: true with the directories a program writes under writable "
                                  "makes it read-only")
    if default_caps:
        ctx.note("", "cap_drop", f"{', '.join(default_caps)}: Docker's default capabilities but NET_RAW, as "
                                 "under Compose; list only what a program needs under capabilities (none for "
                                 "most; SETUID and SETGID to switch user, CHOWN, NET_BIND_SERVICE below 1024)")


def _other_keys(ctx: _Context, key: str, svc: dict) -> None:
    for name in svc:
        if name == "restart":
            policy = str(svc[name])
            if policy in RESTART_COVERED:
                ctx.note(key, "restart", f"{policy}: ECS replaces every task that stops")
            else:
                ctx.warn(key, "restart", f"'{policy}' is not carried over: ECS replaces every task that stops, so a "
                                         "container that exits is started again")
        elif name not in HANDLED:
            ctx.warn(key, name, UNSUPPORTED.get(name, "not part of the config; not carried over"))


def _host_references_in_commands(ctx: _Context, key: str, svc: dict, renamed: dict[str, str], namespace: str) -> None:
    """A command naming another service as a host: it resolves as it is, unless the config renamed that service;
    the port it is addressed on is opened like one an environment value names."""
    texts = []
    for name in ("command", "entrypoint"):
        value = svc.get(name)
        texts += [(name, v) for v in ([value] if isinstance(value, str) else value or [])]
    test = (svc.get("healthcheck") or {}).get("test") if isinstance(svc.get("healthcheck"), dict) else None
    texts += [("healthcheck.test", v) for v in ([test] if isinstance(test, str) else test or [])]
    for where, text in texts:
        for found in ADDRESSED.finditer(str(text)):
            if found.group("host") in renamed and found.group("host") != key:
                ctx.addressed.setdefault(found.group("host"), set()).add(int(found.group("port")))
        for service, new in renamed.items():
            if service == key or not re.search(rf"(?<![\w.-]){re.escape(service)}:\d+|//{re.escape(service)}\b",
                                               str(text)):
                continue
            ctx.named_hosts.setdefault(key, set()).add(service)
            if new != service:
                ctx.warn(key, where, f"names the host '{service}', which is '{new}' here (config names are DNS "
                                     f"labels): it resolves as {new} or {new}.{namespace}; change the command")


def _listeners(ctx: _Context, chosen: list[str], services: list[dict], public: dict[str, Port],
               compose: dict[str, dict]) -> None:
    """The entry service answers on port 80; other public services keep their published port."""
    if not public:
        return
    by_key = dict(zip(chosen, services))
    needed_by_public = {dep for k in public for dep in _dependencies(compose[k])}
    entry = next((k for k, p in public.items() if p.published == ENTRY_LISTENER), None) \
        or next((k for k in public if k not in needed_by_public), next(iter(public)))
    taken = {ENTRY_LISTENER}
    for key, port in public.items():
        svc = by_key[key]
        if key == entry:
            listener = ENTRY_LISTENER
            svc["url_output"] = ENTRY_URL_OUTPUT
        else:
            listener = port.published if port.published and port.published not in taken | {443} else None
            if listener is None:
                listener = next(p for p in [port.target, *range(8080, 65536)] if p not in taken | {443})
        taken.add(listener)
        svc["public"] = {"port": listener}
        shown = f"published on {port.published}" if port.published else "published on a random host port"
        if listener != port.published:
            ctx.note(key, "ports", f"{shown} in Compose; the load balancer listens on {listener} (HTTP)")
    for key, svc in by_key.items():
        if key not in public:
            continue
        if "path" not in (svc.get("health_check") or {}):
            ctx.warn(key, "healthcheck", "the load balancer probes GET / (any 200-399 answer is healthy): set "
                                         "health_check.path if the app answers elsewhere")


def _network_listeners(ctx: _Context, chosen: list[str], services: list[dict], nlb: dict[str, list[Port]]) -> None:
    """Each port the Network Load Balancer carries listens on its published port (the container port when Compose
    picks a random one), or on the next free one when another service took it."""
    taken: set[int] = set()
    for key, svc in zip(chosen, services):
        entries = []
        for port in nlb.get(key, []):
            wanted = port.published or port.target
            listener = next(p for p in [wanted, *range(max(wanted, 1024), 65536), *range(1, 1024)] if p not in taken)
            taken.add(listener)
            entry: dict = {"port": listener}
            if port.protocol == "udp":
                entry["protocol"] = "UDP"
            if port.target != listener:
                entry["target"] = port.target
            entries.append(entry)
            shown = f"published on {port.published}" if port.published else "published on a random host port"
            if listener != port.published:
                ctx.note(key, "ports", f"{port.target}/{port.protocol} {shown} in Compose; the Network Load Balancer "
                                       f"listens on {listener}")
        if entries:
            svc["published"] = entries
            shown = ", ".join(f"{e['port']}/{e.get('protocol', 'TCP')}" for e in entries)
            ctx.note(key, "ports", f"{shown}: Network Load Balancer listener(s), forwarded as they come (not HTTP)")


def _bridge_udp(ctx: _Context, chosen: list[str], services: list[dict]) -> None:
    """A bridge task's UDP port cannot be health-checked on another port (Docker maps each to a host port the load
    balancer cannot know): it is left out, said so."""
    for key, svc in zip(chosen, services):
        if svc.get("network_mode") != "bridge" or not svc.get("published"):
            continue
        udp = [e for e in svc["published"] if e.get("protocol") == "UDP"]
        if udp:
            svc["published"] = [e for e in svc["published"] if e.get("protocol") != "UDP"]
            ctx.warn(key, "ports", f"{', '.join(str(e.get('target', e['port'])) for e in udp)}/udp not made public: "
                                   "the service runs with bridge networking, where a UDP port's TCP health check "
                                   "cannot be aimed")


def _network_modes(ctx: _Context, chosen: list[str], services: list[dict]) -> None:
    """A service whose environment names a public URL ({svc.url}: a port published on this machine)
    calls the app through the load balancer from inside its container, as it called localhost under
    Compose. An awsvpc task has no public IP and the VPC no NAT, so it could not: bridge networking
    gives it the host's. Unless another service reaches it by name, which bridge would take away."""
    names = dict(zip(chosen, (svc["name"] for svc in services)))
    named = {ref.service for svc in services for value in svc.get("environment", {}).values()
             for ref in config.references(str(value)) if ref.attribute in ("host", "port")}
    named |= {names[target] for targets in ctx.named_hosts.values() for target in targets if target in names}
    for key, svc in zip(chosen, services):
        calls = sorted({ref.service for value in svc.get("environment", {}).values()
                        for ref in config.references(str(value)) if ref.attribute == "url"})
        if not calls:
            continue
        if svc["name"] in named:
            ctx.warn(key, "environment", f"calls {', '.join(calls)} by public URL, which an awsvpc task cannot reach "
                                         "(no public IP, no NAT); it stays awsvpc because other services reach it "
                                         "by name: point it at their service names instead")
            continue
        svc["network_mode"] = "bridge"
        ctx.note(key, "network_mode", f"bridge: it calls {', '.join(calls)} by public URL from inside the container, "
                                      "through the host's public IP (an awsvpc task has none, and there is no NAT); "
                                      "it has no name or address another service could reach")


def _top_level_networks(ctx: _Context) -> None:
    networks = ctx.compose.get("networks") or {}
    for name, spec in (networks.items() if isinstance(networks, dict) else ()):
        spec = spec if isinstance(spec, dict) else {}
        if spec.get("external"):
            ctx.warn("", f"networks.{name}", "external network: what else is on it is outside the app and not "
                                             "reachable; the app's own services on it reach each other")
        elif set(spec) - {"name", "internal", "labels"}:
            ctx.note("", f"networks.{name}", f"{', '.join(sorted(set(spec) - {'name', 'internal', 'labels'}))} not "
                                             "carried over (one VPC); who shares the network is: see reaches")


def _networks_of(ctx: _Context, key: str, svc: dict) -> set[str]:
    """The Compose networks a service is on: `default` when it names none (Compose's own default)."""
    if "network_mode" in svc:
        return set()  # host, none, service:x: not on the project's networks (the key is warned about)
    value = svc.get("networks")
    if value is None:
        return {"default"}
    if isinstance(value, dict):
        for name, spec in value.items():
            extra = sorted(set(spec) - {"priority"}) if isinstance(spec, dict) else []
            if extra:
                ctx.warn(key, f"networks.{name}", f"{', '.join(extra)} not carried over: the service is reached by "
                                                  "its own name, at the address ECS gives its task")
        return {str(name) for name in value}
    return {str(name) for name in value} if isinstance(value, list) else {"default"}


def _listening(svc: dict) -> list[int]:
    """The TCP ports the Compose file says the container listens on (ports' targets, expose), in order."""
    found = []
    for entry in svc.get("ports") or []:
        try:
            port = parse_port(entry)
        except (ValueError, TypeError):
            continue
        if port.protocol == "tcp":
            found.append(port.target)
    for entry in svc.get("expose") or []:
        try:
            found += _exposed(entry)[0]
        except ValueError:
            continue
    return list(dict.fromkeys(found))


def _reach(ctx: _Context, chosen: list[str], compose: dict[str, dict], services: list[dict], namespace: str) -> None:
    """Compose lets every service reach every other on a network they share (the default one included), on
    any port: each service `reaches` those (beyond its depends_on), and a target's other ports — exposed,
    published or addressed by a peer (http://n8n:5679) — become its `ports`, opened to them only.
    The header says, per service, what it reaches."""
    by_key = dict(zip(chosen, services))
    networks = {key: _networks_of(ctx, key, compose[key]) for key in chosen}
    bridge = {key for key, svc in by_key.items() if svc.get("network_mode") == "bridge"}
    for key, svc in by_key.items():
        if key in bridge:
            continue
        addressed = sorted(ctx.addressed.get(key, set()))
        if addressed and not _listening(compose[key]) and not KNOWN_IMAGES.get(_image_name(compose[key])):
            # No port in Compose, but the others call it on one: that is the port, not the placeholder.
            svc["port"] = addressed[0]
            ctx.warnings = [w for w in ctx.warnings
                            if not (w.service == key and w.key == "ports" and "placeholder" in w.message)]
            ctx.note(key, "ports", f"no port in Compose; {addressed[0]}, the port other services address it on")
        extra = sorted((set(_listening(compose[key])) | set(addressed)) - {svc["port"]})
        extra = [port for port in extra if 1 <= port <= 65535]
        if extra:
            svc["ports"] = extra
            ctx.note(key, "ports", f"also listens on {', '.join(map(str, extra))}: opened to the services that reach "
                                   "it, not published")
    for key, svc in by_key.items():
        peers = sorted(other for other in chosen if other != key and networks[key] & networks[other])
        reached = [by_key[p]["name"] for p in peers if p not in bridge]
        waits = set(svc.get("depends_on") or [])
        reaches = [name for name in reached if name not in waits]
        if reaches:
            svc["reaches"] = reaches
        shared = sorted(networks[key])
        if reached:
            ctx.note(key, "networks", f"on {', '.join(shared)}: reaches {', '.join(reached)} by name, on every port "
                                      "each listens on")
        elif not networks[key]:
            ctx.note(key, "networks", "on no Compose network: reaches no other service")
        else:
            ctx.note(key, "networks", f"on {', '.join(shared)}, which no other reachable service shares: reaches "
                                      "none")
        unreachable = sorted(name for name in ctx.named_hosts.get(key, set()) if name in bridge)
        if unreachable:
            ctx.warn(key, "", f"names {', '.join(unreachable)} as a host, which runs with network_mode bridge: it has "
                              "no name or address of its own on ECS")
        cut = sorted(name for name in ctx.named_hosts.get(key, set())
                     if name in networks and name not in bridge and not networks[key] & networks[name])
        if cut:
            ctx.warn(key, "", f"names {', '.join(cut)} as a host but shares no Compose network with it: not "
                              "reachable, as under Compose")
    if chosen:
        example = by_key[chosen[0]]["name"]
        ctx.note("", "networks", f"service names resolve as written: the VPC's DNS search domain is {namespace}, so "
                                 f"{example} is {example}.{namespace}")


def _cluster(ctx: _Context, services: list[dict]) -> dict:
    """t3.medium (the default), or t4g.medium when every image is declared arm64 only."""
    arm = all(s.get("architectures") == ["arm64"] for s in services)
    if arm:
        ctx.note("", "cluster", "every image is arm64 (platform): Graviton hosts, t4g.medium")
    return {"instance_type": "t4g.medium" if arm else config.Cluster.instance_type}


# --- sizing, validating, writing --------------------------------------------------------------------------


def size_cluster(data: dict, base_dir: Path, file_contents: Optional[dict[str, str]] = None
                 ) -> tuple[dict, Optional[str]]:
    """The cluster sized for the tasks: max_size fits the deployment peak plus one host (managed scaling keeps
    the steady state). The extra host is headroom for ECS's own placement (spread over AZs, then binpack),
    which packs less tightly than the fit check's, and for an instance refresh's replacement host.

    Returns the data unchanged (and None) when the tasks cannot be placed at all; validation says why.
    """
    from templates_src import capacity, instance_types

    try:
        app = config.parse(data, base_dir=base_dir, file_contents=file_contents)
    except config.ConfigError:
        return data, None
    if any(not 0 <= svc.desired_count <= config.MAX_DESIRED_COUNT for svc in app.services):
        return data, None  # placing a billion tasks would never end; validation refuses the count
    itype = instance_types.TYPES.get(app.cluster.instance_type)
    if itype is None:
        return data, None
    offer = capacity.host(itype, app.cluster.reserved_memory_mib)
    tasks = capacity.peak_tasks(app)
    peak = capacity.place(tasks, offer)
    steady = capacity.place([t for t in tasks if not t.surge], offer)
    if peak is None or steady is None:
        return data, None
    high, low = max(1, len(peak)), max(1, len(steady))
    cluster = {**data["cluster"], "min_size": 1, "max_size": min(high + 1, config.MAX_INSTANCES)}
    message = (f"{len(tasks)} tasks at the deployment peak ({sum(t.surge for t in tasks)} of them rolling-deployment "
               f"surge) need {high} x {itype.name}; {len(tasks) - sum(t.surge for t in tasks)} run on {low}; "
               f"max_size {cluster['max_size']} keeps one more for ECS's placement and instance refreshes")
    return {**data, "cluster": cluster}, message


def describe_problems(err: config.ConfigError, data: dict) -> list[str]:
    """Config problems with service indexes named (ConfigError.named), by the imported data's names."""
    return config.ConfigError(err.problems, config.service_names(data)).described()


class _Dumper(yaml.SafeDumper):
    """Block style like the hand-written configs: sequences indented under their key, short lists inline."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper, value: list):
    inline = all(isinstance(item, (str, int)) for item in value) and len(str(value)) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=inline)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def to_yaml(imported: Imported, source: str) -> str:
    """app.yaml text: a header naming the Compose file, the findings as comments, then the config."""
    lines = [f"# Imported from {printable(source)} by `python -m templates_src import-compose`.",
             "# Review it before building: schema and defaults in templates_src/config.py.", "#"]
    for title, findings in (("Not carried over, or needs a decision", imported.warnings),
                            ("Changed on the way", imported.notes)):
        if findings:
            lines.append(f"# {title}:")
            for finding in findings:
                lines += _comment(imported.say(finding))
            lines.append("#")
    body = yaml.dump(imported.data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=True)
    # A blank line before each section and between services: the file reads like the DKS app.yaml.
    body = re.sub(r"\n(?=(cluster|secrets|services):|  - name: )", "\n\n", body).replace("services:\n\n", "services:\n")
    return "\n".join(lines).rstrip("#\n") + "\n\n" + body


def printable(text: str) -> str:
    """Text with every character that is not printable written as its escape (\\n, \\u2028, \\x1b).

    A comment ends at a line break, and YAML breaks lines at \\r, \\x85, \\u2028 and \\u2029 as well as
    \\n (YAML 1.1, 5.4 Line Break Characters, https://yaml.org/spec/1.1/; PyYAML reads 1.1): a Compose
    key or value holding one would end its comment line and write live YAML after it. On a terminal,
    an escape sequence would rewrite what the line shows. str.isprintable is false for all of them,
    and for format characters such as the bidirectional overrides."""
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def mask(text: str, secrets: set[str]) -> str:
    """`text` with each secret value replaced by ***: a backstop behind the messages, which quote no secret.

    A value that is not distinctive ("postgres") is left: the messages use that word for other
    things (the image's name), and masking it would garble them.
    """
    for value in sorted(secrets, key=len, reverse=True):
        if _distinctive(value):
            text = text.replace(value, "***")
    return text


def _comment(text: str, width: int = 116) -> list[str]:
    import textwrap

    wrapped = textwrap.wrap(printable(text), width=width, subsequent_indent="    ", break_long_words=False,
                            break_on_hyphens=False)
    return [f"#   {line}" for line in wrapped]


# --- the command ----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.is_dir():
        print(f"error: {printable(str(out))} is a folder; -o names the app config file to write "
              f"(e.g. {printable(str(out / 'app.yaml'))})", file=sys.stderr)
        return 2
    if out.is_symlink() and not args.force:
        # Written through, the link would put the config wherever it points; --force replaces the link.
        print(f"error: {printable(str(out))} is a symbolic link (to {printable(os.readlink(out))}); pass --force to "
              "replace the link with the config", file=sys.stderr)
        return 2
    if (out.exists() or out.is_symlink()) and not args.force:
        print(f"error: {printable(str(out))} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    try:
        imported = import_file(args.compose, out, env_file=args.env_file, name=args.name,
                               instance_type=args.instance_type, profiles=tuple(args.profile or ()))
    except ComposeError as err:
        print(f"error: {printable(str(err))}", file=sys.stderr)
        return 2
    data, sizing = size_cluster(imported.data, out.parent, imported.file_contents)
    imported.data = data
    if sizing:
        imported.notes.append(Finding("", "cluster", sizing))
    for finding in imported.warnings:
        print(f"warning: {imported.say(finding)}", file=sys.stderr)
    for finding in imported.notes:
        print(f"note: {imported.say(finding)}", file=sys.stderr)
    try:
        app = config.parse(data, base_dir=out.parent, file_contents=imported.file_contents)
        config.validate(app)
    except config.ConfigError as err:
        print(f"error: {printable(str(args.compose))} imports as a config the build would refuse "
              f"({printable(str(out))} not written):", file=sys.stderr)
        for line in describe_problems(err, data):
            print(f"  {printable(mask(line, imported.secret_values))}", file=sys.stderr)
        print("Change the Compose file (deploy.resources.limits, ports, names) or pass --instance-type, --name; "
              "the fields above are the imported config's.", file=sys.stderr)
        return 2
    copies = _copies(imported, out.parent)
    clashing = [path for path, text in copies.items() if path.is_symlink() or path.exists() and (
        not path.is_file() or path.read_bytes() != text.encode())]
    if clashing and not args.force:
        print(f"error: {', '.join(printable(str(p)) for p in clashing)} exist(s) beside {printable(str(out))} and "
              "differ from the Compose project's; pass --force to overwrite them", file=sys.stderr)
        return 2
    try:
        for path, text in copies.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                path.unlink()
            path.write_text(text, encoding="utf-8")
        if not _write_checked(to_yaml(imported, str(args.compose)), out, app):
            return 2
    except OSError as err:
        reason = (f"{out.parent} is a file, not a folder" if out.parent.exists() and not out.parent.is_dir()
                  else err.strerror or err)
        print(f"error: cannot write {printable(str(out))}: {printable(str(reason))}", file=sys.stderr)
        return 2
    copied = f", {len(copies)} files copied beside it" if copies else ""
    print(f"wrote {printable(str(out))}: {len(data['services'])} services, {len(imported.warnings)} warnings{copied}; "
          f"build it with: python -m templates_src build --config {printable(str(out))}", file=sys.stderr)
    return 0


def _copies(imported: Imported, folder: Path) -> dict[Path, str]:
    """The `files` to write beside app.yaml: none when it goes into the Compose project's own folder."""
    if folder.resolve() == imported.source_dir.resolve():
        return {}
    return {folder / name: text for name, text in imported.file_contents.items()
            if not ((folder / name).is_file() and not (folder / name).is_symlink()
                    and (folder / name).read_bytes() == text.encode())}


def _write_checked(text: str, out: Path, validated: config.App) -> bool:
    """Write app.yaml only once the text, read back as the build reads it, is the config that was validated:
    nothing a Compose value holds may change what the file says."""
    from templates_src import render

    out.parent.mkdir(parents=True, exist_ok=True)
    # A new file renamed over `out`: a link there is replaced, not written through, and a failed
    # write (a full disk) leaves the old config whole.
    temporary = render.stage(out.parent, f".{out.name}.", text.encode())
    try:
        try:
            written = config.load(temporary)
        except config.ConfigError as err:
            written, problems = None, err.problems
        if written != validated or (written and written.file_contents != validated.file_contents):
            print(f"error: the config written for {printable(str(out))} would not read back as the one validated "
                  f"({'; '.join(printable(f'{w}: {r}') for w, r in problems) if written is None else 'it differs'}); "
                  "not written", file=sys.stderr)
            return False
        os.replace(temporary, out)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def import_file(compose_path: Path, out: Path, env_file: Optional[Path] = None, name: Optional[str] = None,
                instance_type: Optional[str] = None, profiles: tuple[str, ...] = ()) -> Imported:
    """Load, interpolate and convert a Compose file; the config lands beside `out` (paths relative to it)."""
    compose = load(compose_path)
    source_dir = compose_path.parent
    dotenv = env_file or source_dir / ".env"
    variables: dict[str, str] = {}
    unset: list[str] = []
    if env_file or dotenv.is_file():
        try:
            text = bounded.read_text(dotenv if env_file else _inside(dotenv, source_dir), bounded.COMPOSE_BYTES,
                                     "env file")
        except bounded.Refused as err:
            raise ComposeError(str(err)) from None
        variables = {k: v for k, v in parse_env_file(text, warn=unset.append).items() if v is not None}
    compose = interpolate_all(compose, variables.get, unset.append)
    imported = convert(compose, source_dir, out.parent, variables, name, compose_path.name, profiles)
    for variable in dict.fromkeys(unset):
        imported.warnings.insert(0, Finding("", "", f"variable {variable} is not set (no .env value, no default): "
                                                    "replaced by an empty string"))
    if instance_type:
        imported.data["cluster"]["instance_type"] = instance_type
    return imported

