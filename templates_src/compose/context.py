"""The conversion's shared state: what Compose keys the import handles, the images it knows, the
findings (warnings and notes) it collects, and the text helpers every part uses to say them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from templates_src.app import names


# --- what the config cannot say, and defaults for what Compose leaves open ---------------------------

# Task size when Compose sets no limit: enough for a small web process; a warning says it was chosen.
DEFAULT_CPU = 256
DEFAULT_MEMORY = 512


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


# The shapes the Compose specification allows for the keys the import reads.
SHAPES: dict[str, tuple[type, ...]] = {
    "ports": (list,), "expose": (list,), "volumes": (list,), "secrets": (list,), "configs": (list,),
    "profiles": (list,), "env_file": (str, list), "depends_on": (list, dict), "environment": (list, dict),
    "healthcheck": (dict,), "deploy": (dict,), "build": (str, dict), "command": (str, list),
    "entrypoint": (str, list), "image": (str,), "platform": (str,),
}


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


def _label(text: str) -> str:
    label = re.sub(r"[^a-z0-9]+", "-", text.lower())
    return re.sub(r"^[^a-z]+", "", label).strip("-")


def _distinctive(value: str) -> bool:
    """Whether a secret's value, found inside other text, is that secret rather than a word it happens to be.

    A password of letters alone shorter than 12 ("postgres") appears in many values that are no
    secret (postgres://db/app) and in every message about the image of that name.
    """
    return len(value) >= 12 or (len(value) >= 4 and not value.isalpha())


def _unique(base: str, taken: dict, joiner: str = "-") -> str:
    candidate, n = base or "secret", 2
    while candidate in taken:
        candidate = f"{base}{joiner}{n}"
        n += 1
    return candidate


LOCALHOST_URL_PATH = re.compile(r"https?://(?:localhost|127\.0\.0\.1)(?::(\d+))?(/[^\s'\"|;&]*)?")


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
