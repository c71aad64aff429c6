"""Bad input, generated: every config either renders templates cfn-lint passes or is refused.

Hypothesis writes app configs the way a user would (YAML files, dicts and lists): a coherent app
of one to five services, then none, one or two mistakes of the kinds people make — a wrong type
anywhere, an unknown or misspelt key, a dependency cycle, a port out of range, a task too big for
the hosts, a dangling `{svc.host}` reference, an undeclared secret, a name AWS would refuse, broken
YAML, a document that is not a mapping, one nested or aliased past the loader's bounds. Each config
goes through `loading.load` from a file under tmp_path, and then:

- refused: the project's ConfigError (or, from the render, its QuotaError), never anything else;
  every problem is (path, reason), the path names a field that is in the file (or a required one
  missing from a mapping that is), and the mistake that was made is reported at its own field;
- accepted: only when no mistake was made that must be refused; every template, and the
  local-URL variant of the root (nested parameter checks), passes cfn-lint with no error and no
  warning, in-process with the rules `make lint` uses (scripts/lint.py).

The run is derandomized (same examples every time, nothing learnt is stored) and must both accept
and refuse a good share of its examples, so neither branch is vacuous.
"""
from __future__ import annotations

import copy
import dataclasses
import gc
import hashlib
import multiprocessing
import os
import re
import types
import typing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import lint
from templates_src import render
from templates_src.app import config, instance_types, loading
from templates_src.app.config import ConfigError
from templates_src.app.quotas import QuotaError


# FUZZ_EXAMPLES=N runs more examples (or fewer, while working on the strategies). make test runs 350: about a
# hundred accepted apps, each linted, which is most of the suite's cfn-lint time.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 350))
# Each branch must take at least this share of the examples.
MIN_SHARE = 0.2

# --- a coherent app, as a user writes it ---------------------------------------------------------

SERVICE_NAMES = ["web", "api", "db", "cache", "worker", "auth", "search", "queue", "admin", "a-1", "a1"]
IMAGES = ["nginx:1.27", "public.ecr.aws/nginx/nginx:1.27", "postgres:16.4-alpine", "redis:7-alpine",
          "ghcr.io/acme/app@sha256:" + "a" * 64]
PORTS = [80, 3000, 5432, 6379, 8080, 9000, 65535, 1]
LISTENER_PORTS = [80, 8080, 8443, 443]
# Types on which a task of up to 1024 CPU units and 1024 MiB fits, so a base app always fits.
ROOMY_TYPES = sorted(name for name, t in instance_types.TYPES.items() if t.vcpus >= 1 and t.memory_mib >= 2048)
SURE_DEPLOYMENTS = {(100, 200), (0, 100), (50, 200)}  # each leaves room to replace one task
INIT_FILE = "init.sh"  # written beside every generated config


def unique_names(draw, count: int) -> list[str]:
    generated = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
    pool = st.one_of(st.sampled_from(SERVICE_NAMES), generated) if count else st.nothing()
    # Names giving the same logical ID (a-1 and a1) are a mistake of their own, made on purpose below.
    return draw(st.lists(pool, min_size=count, max_size=count, unique_by=config.logical_id))


@st.composite
def health_checks(draw, public: bool) -> dict:
    check = {}
    interval = draw(st.sampled_from([5, 10, 30, 300]))
    if draw(st.booleans()):
        check["interval"] = interval
        check["timeout"] = draw(st.integers(2, min(60, interval - 1)))
    if draw(st.booleans()):
        check["retries"] = draw(st.integers(2 if public else 1, 10))  # the load balancer's threshold is 2 to 10
    if draw(st.booleans()):
        check["start_period"] = draw(st.integers(0, 300))
    if public and draw(st.booleans()):
        check["path"] = draw(st.sampled_from(["/", "/health", "/actuator/health", "/a/b?c=d"]))
        check["grace_period"] = draw(st.integers(0, 600))
    if draw(st.booleans()):
        check["command"] = draw(st.sampled_from(["curl -f http://localhost/ || exit 1", 'pg_isready -U "$U"']))
    return check


@st.composite
def apps(draw) -> dict:
    """A config that must be accepted: every reference resolves and the tasks fit the cluster."""
    count = draw(st.integers(1, 5))
    names = unique_names(draw, count)
    secrets = draw(st.lists(st.sampled_from(["db-password", "api-token", "s3cret-2"]), max_size=3, unique=True))
    services, claims = [], set()
    for i, name in enumerate(names):
        svc: dict = {"name": name}
        if draw(st.integers(0, 3)) == 0:
            svc["repository"] = draw(st.sampled_from([name, names[0]]))
        else:
            svc["image"] = draw(st.sampled_from(IMAGES))
        svc["port"] = draw(st.sampled_from(PORTS))
        svc["cpu"] = draw(st.sampled_from([128, 256, 512, 1024]))
        svc["memory"] = draw(st.sampled_from([6, 128, 512, 1024]))
        desired = draw(st.sampled_from([None, 0, 1, 2]))
        if desired is not None:
            svc["desired_count"] = desired
        if draw(st.booleans()):
            minimum, maximum = draw(st.sampled_from(sorted(SURE_DEPLOYMENTS)))
            svc["deployment"] = {"min_healthy_percent": minimum, "max_percent": maximum}
        if i and draw(st.booleans()):
            svc["depends_on"] = draw(st.lists(st.sampled_from(names[:i]), min_size=1, max_size=i, unique=True))
        if draw(st.integers(0, 2)) == 0:
            port = draw(st.sampled_from(LISTENER_PORTS))
            path = None if (port, None) not in claims and draw(st.booleans()) else f"/{name}/*"
            claims.add((port, path))
            svc["public"] = {"port": port} if path is None else {"port": port, "path": path}
            if draw(st.booleans()):
                svc["url_output"] = config.logical_id(name) + "Endpoint"
        check = draw(health_checks("public" in svc))
        if check:
            svc["health_check"] = check
        services.append(svc)
    for i, svc in enumerate(services):
        environment = {}
        for key in draw(st.lists(st.sampled_from(["MODE", "PEER", "PEER_PORT", "FLAG", "COUNT", "URL"]),
                                 max_size=3, unique=True)):
            other = draw(st.sampled_from(services))
            value = {"MODE": "production", "FLAG": draw(st.booleans()), "COUNT": draw(st.integers(0, 99)),
                     "PEER": f"{{{other['name']}.host}}", "PEER_PORT": f"{{{other['name']}.port}}",
                     "URL": f"{{{other['name']}.url}}" if "public" in other else "http://example.com"}[key]
            environment[key] = value
        if environment:
            svc["environment"] = environment
        if secrets and draw(st.booleans()):
            svc["secrets"] = {"SECRET_" + str(n): s for n, s in enumerate(
                draw(st.lists(st.sampled_from(secrets), min_size=1, max_size=2)))}
    # Bridge networking for a service nobody reaches by name (a reference to a bridge service's host or
    # port is a mistake of its own).
    named = {value.split(".")[0].lstrip("{") for svc in services for value in svc.get("environment", {}).values()
             if isinstance(value, str) and value.endswith((".host}", ".port}"))}
    for svc in services:
        if svc["name"] not in named and draw(st.integers(0, 3)) == 0:
            svc["network_mode"] = "bridge"
        if draw(st.integers(0, 3)) == 0:
            svc["files"] = {"/etc/app/init.sh": INIT_FILE}
            svc[draw(st.sampled_from(["entrypoint", "command"]))] = ["/bin/sh", "-c", "exec app"]
    itype = draw(st.sampled_from(ROOMY_TYPES))
    arch = instance_types.TYPES[itype].architecture
    for svc in services:
        if draw(st.integers(0, 4)) == 0:
            svc["architectures"] = draw(st.sampled_from([[arch], ["x86_64", "arm64"]]))
    # One host per task at the deployment peak always fits (every listed type takes one such task).
    peak = sum(s.get("desired_count", 1) + 1 for s in services)
    maximum = min(config.MAX_INSTANCES, peak + draw(st.integers(0, 3)))
    minimum = draw(st.integers(0, min(maximum, 3)))
    cluster = {"instance_type": itype, "max_size": maximum, "min_size": minimum}
    data: dict = {"name": draw(st.sampled_from(["app", "shop", "a", "dks", "twelve-chars"])), "services": services,
                  "cluster": cluster}
    if secrets:
        data["secrets"] = {s: {"description": "generated"} if s != "api-token" else {"length": 64} for s in secrets}
    if draw(st.booleans()):
        data["description"] = draw(st.sampled_from(["Shop", "An app: with a colon", "x" * 200]))
    if draw(st.booleans()):
        data["namespace"] = draw(st.sampled_from(["shop.local", "corp.internal", "a.b.c"]))
    if draw(st.booleans()):
        cidr, prefix = draw(st.sampled_from([("10.20.0.0/16", 16), ("172.16.0.0/20", 20), ("192.168.4.0/24", 24)]))
        zones = draw(st.integers(2, 6))
        bits = (zones - 1).bit_length()
        data["network"] = {"cidr": cidr, "availability_zones": zones,
                           "subnet_prefix": draw(st.integers(max(prefix + bits, 20), 27))}
    if draw(st.booleans()):
        data["log_retention_days"] = draw(st.sampled_from(config.LOG_RETENTION))
    return data


# --- the mistakes ------------------------------------------------------------------------------


@dataclass
class Mistake:
    """What was done to the config, and where the refusal must point.

    `where` is a regular expression one reported path must match in full; `must_refuse` False
    marks a change that may be fine (a smaller cluster may still fit).
    """

    what: str
    where: str = ""
    must_refuse: bool = True
    says: str = ""  # a fact the reason at `where` must contain
    # Whether the mistake is still in the config: a second mistake may undo the first (a rename).
    holds: typing.Callable[[dict], bool] = lambda data: True


@dataclass
class Case:
    data: object
    mistakes: list[Mistake] = field(default_factory=list)
    text: str | None = None  # the file as written, when it is not a dump of `data`


def at(*parts: object) -> str:
    """A config path, as a regular expression: at('services', 1, 'port') -> services\\[1\\]\\.port."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return re.escape(out)


INT_FIELDS = {
    (): ["log_retention_days", "keep_images"],
    ("cluster",): ["min_size", "max_size", "root_volume_gib", "reserved_memory_mib"],
    ("network",): ["availability_zones", "subnet_prefix"],
    ("service",): ["port", "cpu", "memory", "desired_count"],
    ("service", "health_check"): ["interval", "timeout", "retries", "start_period", "grace_period"],
    ("service", "deployment"): ["min_healthy_percent", "max_percent"],
}
NOT_INTEGERS = ["abc", "12", 1.5, 256.0, True, False, None, [1], {"a": 1}, ""]
NOT_STRINGS = [[], ["x"], {"k": "v"}]
NOT_LISTS = ["web", 5, {"a": 1}, True]
NOT_MAPPINGS = ["text", 5, ["a"], True]


def where_in(data: dict, draw, kind: tuple[str, ...]) -> tuple[dict, tuple]:
    """The mapping a field group lives in (created if missing) and its path parts."""
    if kind and kind[0] == "service":
        i = draw(st.integers(0, len(data["services"]) - 1))
        node, parts = data["services"][i], ("services", i)
        kind = kind[1:]
    else:
        node, parts = data, ()
    for key in kind:
        node = node.setdefault(key, {})
        parts += (key,)
    return node, parts


def wrong_int(draw, data):
    kind = draw(st.sampled_from(sorted(INT_FIELDS)))
    node, parts = where_in(data, draw, kind)
    key, value = draw(st.sampled_from(INT_FIELDS[kind])), draw(st.sampled_from(NOT_INTEGERS))
    node[key] = value
    return Mistake(f"{key}: {value!r}", at(*parts, key), says="expected an integer")


def wrong_str(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    node, parts = draw(st.sampled_from([(data, ("name",)), (data["cluster"], ("cluster", "instance_type")),
                                        (data["services"][i], ("services", i, "name"))]))
    node[parts[-1]] = draw(st.sampled_from(NOT_STRINGS))
    return Mistake(f"{parts[-1]} not a string", at(*parts), says="expected a string")


def wrong_list(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    key = draw(st.sampled_from(["depends_on", "entrypoint", "command", "architectures", "services"]))
    node, parts = (data, ("services",)) if key == "services" else (data["services"][i], ("services", i, key))
    node[key] = draw(st.sampled_from(NOT_LISTS))
    return Mistake(f"{key} not a list", at(*parts), says="expected a list")


def wrong_mapping(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    key = draw(st.sampled_from(["environment", "secrets", "files", "health_check", "deployment", "public",
                                "cluster", "network", "app secrets", "service"]))
    value = draw(st.sampled_from(NOT_MAPPINGS))
    if key in ("cluster", "network"):
        data[key], parts = value, (key,)
    elif key == "app secrets":
        data["secrets"], parts = value, ("secrets",)
    elif key == "service":
        data["services"][i], parts = value, ("services", i)
    else:
        data["services"][i][key], parts = value, ("services", i, key)
    return Mistake(f"{key} not a mapping", at(*parts), says="expected a mapping")


def null_required(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    node, parts = draw(st.sampled_from([(data, ("services",)), (data, ("network",)),
                                        (data["services"][i], ("services", i, "port")),
                                        (data["services"][i], ("services", i, "environment")),
                                        (data["services"][i], ("services", i, "health_check"))]))
    node[parts[-1]] = None
    return Mistake(f"{parts[-1]}: null", at(*parts), says="got nothing")


def missing_required(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    key = draw(st.sampled_from(["name", "port", "cpu", "memory"]))
    del data["services"][i][key]
    return Mistake(f"no {key}", at("services", i, key), says="required")


MISSPELT = {"imagee": "image", "prot": "port", "memroy": "memory", "depends-on": "depends_on",
            "enviroment": "environment", "max_sise": "max_size", "avilability_zones": "availability_zones"}


def unknown_key(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    spot = draw(st.sampled_from(["top", "service", "cluster", "network", "health_check", "deployment", "public",
                                 "secret"]))
    node, parts = {
        "top": (data, ()), "service": (svc, ("services", i)),
        "cluster": (data["cluster"], ("cluster",)),
        "network": (data.setdefault("network", {}), ("network",)),
        "health_check": (svc.setdefault("health_check", {}), ("services", i, "health_check")),
        "deployment": (svc.setdefault("deployment", {}), ("services", i, "deployment")),
        "public": (svc.setdefault("public", {"port": 81}), ("services", i, "public")),
        "secret": (data.setdefault("secrets", {}).setdefault("extra", {}), ("secrets", "extra")),
    }[spot]
    misspelt = {"service": ["imagee", "prot", "memroy", "depends-on", "enviroment"], "cluster": ["max_sise"],
                "network": ["avilability_zones"]}.get(spot, [])
    key = draw(st.sampled_from(misspelt + ["zzz_unknown", "Name", "x y"]))
    node[key] = draw(st.sampled_from([1, "v", None, {"k": 1}]))
    return Mistake(f"unknown key {key}", at(*parts, key),
                   says=f"did you mean '{MISSPELT[key]}'" if key in MISSPELT else "unknown key")


def not_a_string_key(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    key = draw(st.sampled_from([5, True, None, 1.5]))
    spot = draw(st.sampled_from(["environment", "files", "service"]))
    if spot == "service":
        svc[key] = 1
        return Mistake(f"key {key!r}", at("services", i, str(key)))
    svc.setdefault(spot, {})[key] = "x"
    return Mistake(f"{spot} key {key!r}", at("services", i, spot, str(key)))


def service_field(draw, data, key, values, says=""):
    i = draw(st.integers(0, len(data["services"]) - 1))
    data["services"][i][key] = draw(st.sampled_from(values))
    return Mistake(f"{key}: {data['services'][i][key]!r}", at("services", i, key), says=says)


def bad_port(draw, data):
    return service_field(draw, data, "port", [0, -1, 65536, 70000, 22, 2375, 51678])


def bad_task_size(draw, data):
    key = draw(st.sampled_from(["cpu", "memory"]))
    values = {"cpu": [0, 64, 127, 196609], "memory": [0, 5, 3_145_729]}[key]
    return service_field(draw, data, key, values, says="outside what ECS accepts")


def huge_task(draw, data):
    # Within ECS's limits, larger than the host: refused by the fit check, on the service.
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    key, value = draw(st.sampled_from([("cpu", 196608), ("memory", 3_000_000)]))
    svc[key] = value
    svc["desired_count"] = 1
    return Mistake("task larger than a host", f"{at('services', i)}|cluster")


def bad_service_name(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    name = draw(st.sampled_from(["Web", "web_1", "-web", "web-", "1web", "", "w" * 64, "a.b", "wéb"]))
    data["services"][i]["name"] = name
    # Whatever named the old name now dangles too; the name itself must be among the problems.
    return Mistake(f"service name {name!r}", at("services", i, "name"), says="DNS label",
                   holds=lambda now: now["services"][i].get("name") == name)


def rename(data: dict, i: int, new: str) -> None:
    """Rename services[i] everywhere it is named: depends_on and {svc.*} references too."""
    old = data["services"][i]["name"]
    data["services"][i]["name"] = new
    for svc in data["services"]:
        svc["depends_on"] = [new if dep == old else dep for dep in svc.get("depends_on", [])]
        svc["environment"] = {key: value.replace("{" + old + ".", "{" + new + ".") if isinstance(value, str) else value
                              for key, value in svc.get("environment", {}).items()}


def long_service_name(draw, data):
    # A DNS label, too long for the target group (public) or the task role name. Names are checked
    # against AWS limits once nothing else is wrong, so it is renamed everywhere.
    i = draw(st.integers(0, len(data["services"]) - 1))
    rename(data, i, draw(st.sampled_from(["p" * 20, "q" * 31, "r" * 63])))
    data["services"][i]["public"] = {"port": 9999, "path": "/long/*"}
    data["services"][i].pop("url_output", None)
    check = data["services"][i].get("health_check") or {}
    if check.get("retries", 2) < 2:  # fine for a private service; public, it would be a second mistake
        check["retries"] = 2
    return Mistake("long service name", at("services", i, "name"), says="AWS limit")


def bad_app_name(draw, data):
    data["name"] = draw(st.sampled_from(["App", "app_1", "thirteen-char", "aws-app", "ecs", "fargate1", "1app", "",
                                         "app-"]))
    return Mistake(f"app name {data['name']!r}", at("name"))


def duplicate_name(draw, data):
    if len(data["services"]) < 2:
        data["services"].append(copy.deepcopy(data["services"][0]))
        return Mistake("duplicate service", at("services", 1, "name"), says="duplicate")
    i, j = sorted(draw(st.lists(st.integers(0, len(data["services"]) - 1), min_size=2, max_size=2, unique=True)))
    data["services"][j]["name"] = data["services"][i]["name"]
    return Mistake("duplicate service", at("services", j, "name"), says="duplicate")


def same_logical_id(draw, data):
    data["services"].append({"name": "x-1", "image": "nginx", "port": 80, "cpu": 128, "memory": 128})
    data["services"].append({"name": "x1", "image": "nginx", "port": 80, "cpu": 128, "memory": 128})
    return Mistake("names with one logical ID", at("services", len(data["services"]) - 1, "name"),
                   says="same resource names")


def self_dependency(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    deps = data["services"][i].setdefault("depends_on", [])
    deps.append(data["services"][i]["name"])
    return Mistake("depends on itself", at("services", i, "depends_on", len(deps) - 1), says="itself")


def unknown_dependency(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    deps = data["services"][i].setdefault("depends_on", [])
    deps.append(draw(st.sampled_from(["nope", "Web", ""])))
    return Mistake("unknown dependency", at("services", i, "depends_on", len(deps) - 1), says="unknown service")


def cycle(draw, data):
    services = data["services"]
    if len(services) < 2:
        services.append({"name": "other", "image": "nginx", "port": 80, "cpu": 128, "memory": 128})
    i, j = sorted(draw(st.lists(st.integers(0, len(services) - 1), min_size=2, max_size=2, unique=True)))
    services[i].setdefault("depends_on", []).append(services[j]["name"])
    if services[i]["name"] not in services[j].setdefault("depends_on", []):
        services[j]["depends_on"].append(services[i]["name"])
    return Mistake("dependency cycle", r"services\[\d+\]\.depends_on", says="cyclic dependency")


def dangling_reference(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    private = [s["name"] for s in data["services"] if "public" not in s]
    target = draw(st.sampled_from(["nope.host", "nope.port", "Nope.url"] + [f"{n}.url" for n in private]))
    if target == "Nope.url":  # not a reference at all (names are lowercase): passed through as text
        svc.setdefault("environment", {})["REF"] = "{Nope.url}"
        return Mistake("text in braces", must_refuse=False)
    svc.setdefault("environment", {})["REF"] = f"x={{{target}}}/y"
    return Mistake(f"reference {{{target}}}", at("services", i, "environment", "REF"))


def missing_secret(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    if draw(st.booleans()):
        svc.setdefault("secrets", {})["TOKEN"] = "undeclared"
        return Mistake("undeclared secret", at("services", i, "secrets", "TOKEN"), says="unknown secret")
    data.setdefault("secrets", {})["shared"] = {}
    svc.setdefault("environment", {})["TOKEN"] = "plain"
    svc.setdefault("secrets", {})["TOKEN"] = "shared"
    return Mistake("variable from two places", at("services", i, "secrets", "TOKEN"), says="also set")


def bad_secret(draw, data):
    key, length = draw(st.sampled_from([("DB_PASS", None), ("db-pass", 19), ("db-pass", 4097)]))
    data.setdefault("secrets", {})[key] = {} if length is None else {"length": length}
    return Mistake(f"secret {key}", at("secrets", key) if length is None else at("secrets", key, "length"))


def bad_files(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    kind = draw(st.sampled_from(["no program", "relative", "directory", "unreadable"]))
    if kind == "no program":
        svc.pop("entrypoint", None)
        svc.pop("command", None)
        svc["files"] = {"/etc/x.conf": INIT_FILE}
        return Mistake("files without a program", at("services", i, "files"))
    svc["command"] = ["run"]
    target = {"relative": "etc/x.conf", "directory": "/etc/x/", "unreadable": "/etc/x.conf"}[kind]
    svc["files"] = {target: "missing.sh" if kind == "unreadable" else INIT_FILE}
    return Mistake(f"files: {kind}", at("services", i, "files", target))


def bad_deployment(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    minimum, maximum = draw(st.sampled_from([(-1, 200), (101, 200), (100, 99), (100, 201), (100, 100)]))
    svc["deployment"] = {"min_healthy_percent": minimum, "max_percent": maximum}
    if (minimum, maximum) == (100, 100):
        svc["desired_count"] = draw(st.integers(1, 3))
        return Mistake("no room to deploy", at("services", i, "deployment"), says="no room")
    key = "min_healthy_percent" if minimum != 100 else "max_percent"
    return Mistake(f"{key} out of range", at("services", i, "deployment", key))


def any_deployment(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    svc["deployment"] = {"min_healthy_percent": draw(st.integers(0, 100)), "max_percent": draw(st.integers(100, 200))}
    svc["desired_count"] = draw(st.integers(0, 4))
    return Mistake("any deployment", r"services\[\d+\](\.deployment)?|cluster", must_refuse=False)


def bad_network(draw, data):
    net = data.setdefault("network", {})
    key, value = draw(st.sampled_from([
        ("cidr", "8.8.0.0/16"), ("cidr", "10.0.0.0/8"), ("cidr", "10.0.0.1/16"), ("cidr", "not-a-cidr"),
        ("cidr", "fd00::/64"), ("cidr", "10.0.0.0/29"), ("cidr", "300.0.0.0/16"),
        ("availability_zones", 1), ("availability_zones", 7), ("availability_zones", 0),
        ("subnet_prefix", 28), ("subnet_prefix", 8), ("subnet_prefix", 33), ("subnet_prefix", -1),
    ]))
    net[key] = value
    return Mistake(f"network.{key}: {value!r}", at("network", key) if key == "cidr" else r"network\.\w+")


def bad_cluster(draw, data):
    cluster = data["cluster"]
    kind = draw(st.sampled_from(["order", "too many", "volume", "reserved", "type"]))
    if kind == "order":
        cluster.update(min_size=4, max_size=draw(st.sampled_from([1, 3])))
        return Mistake("sizes out of order", r"cluster(\.max_size)?", says="")
    if kind == "too many":
        cluster["max_size"] = draw(st.sampled_from([0, config.MAX_INSTANCES + 1, 10**12]))
        return Mistake("max_size out of range", r"cluster(\.max_size)?")
    if kind == "volume":
        cluster["root_volume_gib"] = draw(st.sampled_from([29, 16385]))
        return Mistake("root volume", at("cluster", "root_volume_gib"))
    if kind == "reserved":
        cluster["reserved_memory_mib"] = draw(st.sampled_from([-1, 4097]))
        return Mistake("reserved memory", at("cluster", "reserved_memory_mib"))
    cluster["instance_type"] = draw(st.sampled_from(["t3.mediun", "m5.large ", "T3.MEDIUM", "p4d.24xlarge", "t3"]))
    return Mistake(f"instance type {cluster['instance_type']!r}", at("cluster", "instance_type"),
                   says="unknown instance type")


def any_instance_type(draw, data):
    # Any type this project knows, small ones too: fits or is refused by the fit check.
    data["cluster"]["instance_type"] = draw(st.sampled_from(sorted(instance_types.TYPES)))
    return Mistake("any instance type", r"services\[\d+\](\.architectures)?|cluster", must_refuse=False)


def small_cluster(draw, data):
    data["cluster"].update(min_size=0, max_size=draw(st.integers(1, 3)))
    return Mistake("smaller cluster", r"cluster", must_refuse=False)


def more_services(draw, data):
    # Up to ten services of every shape at once: more security group rules, listener rules, stacks.
    count = draw(st.integers(3, 8))
    for n in range(count):
        name = f"extra-{n}"
        data["services"].append({
            "name": name, "image": "nginx", "port": 8000 + n, "cpu": 128, "memory": 128,
            "depends_on": [data["services"][-1]["name"]] if n % 2 else [],
            "environment": {"NEXT": f"{{{data['services'][0]['name']}.host}}"},
            **({"public": {"port": 80, "path": f"/{name}/*"}} if n % 3 == 0 else {}),
        })
    data["cluster"].update(instance_type="m5.4xlarge", max_size=config.MAX_INSTANCES)
    for svc in data["services"]:  # images pinned to arm64 would not run on the x86_64 hosts chosen here
        svc.pop("architectures", None)
    return Mistake("more services", r"cluster", must_refuse=False)


def bad_public(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    kind = draw(st.sampled_from(["port", "path", "conflict", "url_output", "private url", "taken output"]))
    if kind == "port":
        svc["public"] = {"port": draw(st.sampled_from([0, 65536, -80]))}
        return Mistake("listener port", at("services", i, "public", "port"))
    if kind == "path":
        svc["public"] = {"port": 80, "path": draw(st.sampled_from(["api/*", "/a b", "/" + "p" * 128, "", "/é"]))}
        return Mistake("listener path", at("services", i, "public", "path"))
    if kind == "conflict":
        data["services"].append({"name": "twin", "image": "nginx", "port": 80, "cpu": 128, "memory": 128,
                                 "public": dict(svc.setdefault("public", {"port": 80}))})
        n = len(data["services"]) - 1
        return Mistake("listener conflict", f"{at('services', n, 'public')}|{at('services', i, 'public')}",
                       says="port conflict")
    if kind == "url_output":
        svc["public"] = svc.get("public") or {"port": 9000}
        svc["url_output"] = draw(st.sampled_from(["Has-Dash", "1Url", "U" * 256]))
        return Mistake("url_output name", at("services", i, "url_output"))
    if kind == "private url":
        svc.pop("public", None)
        svc["url_output"] = "SomeUrl"
        return Mistake("url_output of a private service", at("services", i, "url_output"))
    svc["public"] = svc.get("public") or {"port": 9000}
    svc["url_output"] = draw(st.sampled_from(["ClusterName", "NamespaceName", "ServiceNames"]))
    return Mistake(f"url_output {svc['url_output']}", at("services", i, "url_output"))


def bad_health_check(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    key, value = draw(st.sampled_from([("interval", 4), ("interval", 301), ("timeout", 1), ("timeout", 61),
                                       ("retries", 0), ("retries", 11), ("start_period", -1), ("start_period", 301),
                                       ("grace_period", -1), ("path", "health"), ("path", "/" * 1025)]))
    check = data["services"][i].setdefault("health_check", {})
    check.pop("interval", None)
    check.pop("timeout", None)
    check[key] = value
    return Mistake(f"health_check.{key}: {value!r}", at("services", i, "health_check", key))


def bad_architectures(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    arch = instance_types.TYPES[data["cluster"]["instance_type"]].architecture
    other = "arm64" if arch == "x86_64" else "x86_64"
    value = draw(st.sampled_from([[other], [], ["sparc"], ["X86_64"]]))
    data["services"][i]["architectures"] = value
    return Mistake(f"architectures {value}", rf"{at('services', i, 'architectures')}(\[0\])?")


def image_and_repository(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    if draw(st.booleans()):
        svc["image"], svc["repository"] = "nginx", "repo"
    else:
        svc.pop("image", None)
        svc.pop("repository", None)
    return Mistake("image and repository", at("services", i))


def bad_repository(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    svc.pop("image", None)
    svc["repository"] = draw(st.sampled_from(["Repo", "repo_1", "-repo", "r/1"]))
    return Mistake(f"repository {svc['repository']!r}", at("services", i, "repository"))


def colliding_repositories(draw, data):
    # Two repositories whose names give one logical ID (and one output name) in registry.yaml.
    data["services"].append({"name": "x-one", "repository": "r-1", "port": 80, "cpu": 128, "memory": 128})
    data["services"].append({"name": "x-two", "repository": "r1", "port": 80, "cpu": 128, "memory": 128})
    return Mistake("repositories with one logical ID", r"services\[\d+\]\.repository|cluster", must_refuse=False)


def bad_env_name(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    key = draw(st.sampled_from(["1ABC", "A-B", "A B", ""]))
    spot = draw(st.sampled_from(["environment", "secrets"]))
    if spot == "secrets":
        data.setdefault("secrets", {})["env-secret"] = {}
    data["services"][i].setdefault(spot, {})[key] = "env-secret" if spot == "secrets" else "v"
    return Mistake(f"{spot} name {key!r}", at("services", i, spot, key), says="environment variable name")


def bad_network_mode(draw, data):
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    if len(data["services"]) > 1 and draw(st.booleans()):
        # Another service names a bridge service's host: nobody can resolve or reach it.
        svc["network_mode"] = "bridge"
        j = (i + 1) % len(data["services"])
        data["services"][j].setdefault("environment", {})["BRIDGE_PEER"] = f"{{{svc['name']}.host}}"
        name = svc["name"]
        return Mistake("a reference to a bridge service", at("services", j, "environment", "BRIDGE_PEER"),
                       says="network_mode bridge",
                       holds=lambda now: any(s.get("name") == name and s.get("network_mode") == "bridge"
                                             for s in now["services"] if isinstance(s, dict)))
    svc["network_mode"] = draw(st.sampled_from(["host", "Bridge", "none", ""]))
    return Mistake(f"network_mode {svc['network_mode']!r}", at("services", i, "network_mode"))


def bad_top_level(draw, data):
    key, value = draw(st.sampled_from([("log_retention_days", 13), ("log_retention_days", 0), ("keep_images", 0),
                                       ("keep_images", 1001), ("namespace", "Not A Domain"), ("namespace", "local"),
                                       ("namespace", "a..b"), ("namespace", "n" * 64 + ".local"),
                                       ("namespace", ".".join(["n" * 60] * 5))]))
    data[key] = value
    return Mistake(f"{key}: {value!r}", at(key))


def no_services(draw, data):
    data["services"] = []
    return Mistake("no services", at("services"))


def long_text(draw, data):
    # Free text lands in template descriptions, which have AWS length limits.
    spot = draw(st.sampled_from(["description", "secret"]))
    text = "d" * draw(st.sampled_from([1000, 1100, 2100, 5000]))
    if spot == "description":
        data["description"] = text
        return Mistake("long description", at("description"), must_refuse=False)
    data.setdefault("secrets", {})["long"] = {"description": text}
    return Mistake("long secret description", at("secrets", "long", "description"), must_refuse=False)


def odd_values(draw, data):
    # Values that are strange but not wrong: whatever is accepted must still lint clean.
    i = draw(st.integers(0, len(data["services"]) - 1))
    svc = data["services"][i]
    kind = draw(st.sampled_from(["empty program", "empty args", "scalars", "unicode", "null optional", "ports"]))
    if kind == "empty program":
        svc["entrypoint"] = []
    elif kind == "empty args":
        svc["command"] = ["", " "]
    elif kind == "scalars":
        svc["environment"] = {"F": 1.5, "B": False, "I": 10**20, "S": "", "Q": "'\"${X}\\n"}
    elif kind == "unicode":
        data["description"] = "Ünïcödé ☃ app"
        svc.setdefault("environment", {})["GREETING"] = "héllo ☃"
    elif kind == "null optional":
        svc.update({"public": None, "entrypoint": None, "command": None, "url_output": None, "architectures": None})
        svc.pop("files", None)
    else:
        svc["port"] = draw(st.sampled_from([1, 65535, 443]))
    return Mistake(kind, r".*", must_refuse=False)


SEMANTIC = [bad_port, bad_task_size, huge_task, bad_service_name, long_service_name, bad_app_name, duplicate_name,
            same_logical_id, self_dependency, unknown_dependency, cycle, dangling_reference, missing_secret,
            bad_secret, bad_files, bad_deployment, bad_network, bad_cluster, bad_public, bad_health_check,
            bad_architectures, image_and_repository, bad_repository, bad_env_name, bad_network_mode, bad_top_level]
# These change the shape other mistakes rely on (a mapping becomes a string, no services): last, alone.
SHAPE = [wrong_int, wrong_str, wrong_list, wrong_mapping, null_required, missing_required, unknown_key,
         not_a_string_key, no_services]
MAYBE = [any_deployment, any_instance_type, small_cluster, more_services, colliding_repositories, long_text,
         odd_values]


def broken_yaml(draw, text: str) -> tuple[str, Mistake]:
    lines = text.splitlines()
    n = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["tab", "unclosed", "colon", "indent", "alias", "directive"]))
    if kind in ("tab", "unclosed"):
        lines[n] = "\t" + lines[n] if kind == "tab" else lines[n] + ' ["open'
    else:
        lines.insert(n, {"colon": "key: value: more", "indent": "   bad: indent\n  other: 1",
                         "alias": "key: *nowhere", "directive": "%YAML 9.9"}[kind])
    text = "\n".join(lines) + "\n"
    try:
        yaml.safe_load(text)
    except yaml.YAMLError:
        return text, Mistake(f"broken YAML ({kind})", "", says="not valid YAML")
    return text, Mistake(f"odd YAML ({kind})", must_refuse=False)  # still YAML, maybe a wrong value


# Files that once crashed or hung the loader: nesting past the C stack (a segfault), an alias bomb
# (9**9 values once expanded), an alias inside its own anchor (walked forever).
HOSTILE_DOCUMENTS = [
    "name: a\nservices: " + "[" * 30_000 + "]" * 30_000 + "\n",
    "x: &a0 [a, a, a, a, a, a, a, a, a]\n" + "".join(
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)) + "name: a\nservices: *a8\n",
    "name: a\nservices: &s [*s]\n",
]


@st.composite
def cases(draw) -> Case:
    data = draw(apps())
    # Hypothesis favours small integers, so the kind of case is an even pick: about 35% as
    # generated, 15% changed in a way that may be fine, 40% with mistakes, 10% broken files.
    choice = draw(st.sampled_from(["mistake"] * 8 + ["clean"] * 7 + ["maybe"] * 3 + ["broken"] + ["not an app"]))
    if choice == "clean":  # as generated: must be accepted
        return Case(data)
    if choice == "maybe":
        return Case(data, [draw(st.sampled_from(MAYBE))(draw, data)])
    if choice == "mistake":
        mistakes = [draw(st.sampled_from(SEMANTIC))(draw, data)] if draw(st.integers(0, 3)) == 0 else []
        mistakes.append(draw(st.sampled_from(SEMANTIC + SHAPE))(draw, data))
        return Case(data, mistakes)
    if choice == "broken":
        text = yaml.safe_dump(data, sort_keys=False)
        text, mistake = broken_yaml(draw, text)
        return Case(data, [mistake], text)
    document = draw(st.sampled_from(["", "# only a comment\n", "- a list\n", "just text\n", "42\n", "null\n",
                                     "--- {}\n", "---\nname: a\n---\nname: b\n", *HOSTILE_DOCUMENTS]))
    return Case(None, [Mistake("not an app", "")], document)


# --- the oracle ----------------------------------------------------------------------------------


def paths_in(node: object, path: str = "") -> set[str]:
    """Every field path the file has, in the loader's notation: services[1].environment.KEY."""
    found = {path}
    if isinstance(node, dict):
        for key, value in node.items():
            found |= paths_in(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found |= paths_in(value, f"{path}[{i}]")
    return found


def is_default(path: str, present: set[str]) -> bool:
    """Whether `path` is a field the file leaves at its default, under a part of the file that is there.

    A refusal may name the field to set (network.subnet_prefix) though the file relies on its default.
    """
    absent = []
    while path not in present:
        path, _, key = path.rpartition(".") if "." in path else ("", "", path)
        if not key or "[" in key:
            return False
        absent.insert(0, key)
    kind = config.App
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        kind = typing.get_args(kind)[0] if token.startswith("[") else field_type(kind, token)
    for key in absent:
        if not dataclasses.is_dataclass(kind) or key not in typing.get_type_hints(kind):
            return False
        kind = field_type(kind, key)
    return True


def field_type(kind: type, name: str) -> type:
    """The type of a config field, Optional unwrapped."""
    hint = typing.get_type_hints(kind)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def assert_well_said(problems: list, case: Case) -> None:
    assert problems, "refused without a single problem"
    present = paths_in(case.data) if case.data is not None else {""}
    for problem in problems:
        assert isinstance(problem, tuple) and len(problem) == 2, problem
        path, reason = problem
        assert isinstance(path, str) and isinstance(reason, str) and reason.strip(), problem
        assert "Traceback" not in reason, problem
        if reason == "required":
            parent = path.rpartition(".")[0] if "." in path else ""
            assert parent in present, f"{path}: required, but {parent!r} is not in the file"
        else:
            assert path in present or is_default(path, present), f"{path!r} names no field of the file: {problem}"
    undone = [m for m in case.mistakes if not m.holds(case.data)]
    for mistake in case.mistakes:
        # An undone mistake leaves side effects (references to a name no longer there) that the
        # loader reports first; the later checks (name lengths, capacity) then do not run.
        if undone:
            continue
        if mistake.where and not any(re.fullmatch(m.where, p) for m in case.mistakes for p, _ in problems):
            raise AssertionError(f"{mistake.what}: no problem at {mistake.where}: {problems}")
    if len(case.mistakes) == 1 and case.mistakes[0].says:
        mistake = case.mistakes[0]
        said = [r for p, r in problems if re.fullmatch(mistake.where, p)]
        assert any(mistake.says in r for r in said), f"{mistake.what}: expected {mistake.says!r} in {said}"


# cfn-lint's findings by the hash of what was linted: many configs share identical stacks.
_LINTED: dict[str, list[str]] = {}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def linters():
    """One cfn-lint process per core, forked after the rules are loaded here (so they load once).

    What the worker holds by then is frozen out of the collector's sight first: a child's collections then
    leave the parent's objects alone, instead of visiting (and so copying) them, as
    https://docs.python.org/3/library/gc.html#gc.freeze advises before a fork (the fuzz: 43.6 -> 41.4 CPU-s).
    Left frozen afterwards, as the emulator fixture leaves its own: unfreezing would undo that one too."""
    lint.findings("Resources: {}\n")
    gc.freeze()
    with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


def assert_lints_clean(app: config.App, local: Path, linters: ProcessPoolExecutor) -> None:
    """Every template, the root as its local-URL variant (nested parameter checks, E3043).

    The variant's root is the root but for the children's TemplateURLs, which are the same expression for
    every app (and linted as built by `make lint`): linting the root twice would find nothing more."""
    files = render.render(app, "fuzz")
    root = render.HEADER.format(config="fuzz") + render.to_yaml(render.stacks(app, local_urls=True)["main.yaml"])
    variant = {**files, "main.yaml": root}
    jobs = {name: (text, digest(text), ()) for name, text in files.items() if name != "main.yaml"}
    key = digest("\0".join(f"{name}\0{text}" for name, text in sorted(variant.items())))
    if key not in _LINTED:
        render.write(variant, local)
    jobs["main.yaml, local-URL variant"] = (local / "main.yaml", key, tuple(lint.LOCAL_VARIANT_IGNORES))
    running = {key: linters.submit(lint.findings, template, ignore)
               for template, key, ignore in jobs.values() if key not in _LINTED}
    _LINTED.update({key: future.result() for key, future in running.items()})
    for name, (_, key, _) in jobs.items():
        assert not _LINTED[key], f"{name}: {_LINTED[key]}"


def test_every_generated_config_renders_clean_or_is_refused_with_its_path(hypothesis_home, tmp_path, linters):
    outcomes = {"accepted": 0, "refused": 0}
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / INIT_FILE).write_text("#!/bin/sh\necho init\n")
    source = folder / "app.yaml"

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cases())
    def check(case: Case):
        source.write_text(case.text if case.text is not None else yaml.safe_dump(case.data, sort_keys=False))
        for mistake in case.mistakes:
            event(mistake.what.split(":")[0])
        try:
            app = loading.load(source)
            assert_lints_clean(app, tmp_path / "local", linters)
        except ConfigError as err:  # anything else fails the test
            assert_well_said(err.problems, case)
            if any(m.what.startswith("broken YAML") for m in case.mistakes):
                [(path, reason)] = err.problems
                assert str(source) in reason and re.search(r"line \d+, column \d+", reason), reason
            outcomes["refused"] += 1
            event("refused")
            return
        except QuotaError as err:
            assert err.problems and all(isinstance(p, str) and p for p in err.problems), err.problems
            outcomes["refused"] += 1
            event("refused by a quota")
            return
        refusable = [m.what for m in case.mistakes if m.must_refuse]
        assert not refusable, f"accepted despite {refusable}"
        outcomes["accepted"] += 1
        event("accepted")

    check()
    total = sum(outcomes.values())
    print(f"config fuzz: {total} examples, {outcomes['accepted']} accepted and linted clean, "
          f"{outcomes['refused']} refused; {len(_LINTED)} distinct templates linted")
    assert total >= EXAMPLES, outcomes
    assert min(outcomes.values()) >= MIN_SHARE * total, outcomes
