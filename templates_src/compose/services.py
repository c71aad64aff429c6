"""Services: `convert` turns parsed Compose data into config data, service by service (image,
resources, environment, health check, dependencies, deploy, privileges), calling the other parts
for ports, secrets and volumes.
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Callable, Optional

from templates_src.app import bounded, config, names
from templates_src.app.words import plural
from templates_src.compose.context import (
    _Context, _dependencies, _image_name, _label, DEFAULT_CPU, DEFAULT_MEMORY, HANDLED, HEALTH_LIMITS, Imported,
    LOCALHOST_URL_PATH, RESTART_COVERED, UNSUPPORTED,
)
from templates_src.compose.reading import ComposeError, cpu_units, duration_seconds, mebibytes, parse_env_file
from templates_src.compose.networks import (
    _bridge_udp, _is_data_store, _listeners, _network_listeners, _network_modes, _ports, _public_port, _published,
    _reach, _top_level_networks, Port,
)
from templates_src.compose.secrets import _password_secrets, _secret_kind, _secrets, URL_PASSWORD
from templates_src.compose.volumes import _inside, _mounts


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


def _cluster(ctx: _Context, services: list[dict]) -> dict:
    """t3.medium (the default), or t4g.medium when every image is declared arm64 only."""
    arm = all(s.get("architectures") == ["arm64"] for s in services)
    if arm:
        ctx.note("", "cluster", "every image is arm64 (platform): Graviton hosts, t4g.medium")
    return {"instance_type": "t4g.medium" if arm else config.Cluster.instance_type}
