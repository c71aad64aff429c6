"""Volumes and files: named volumes on EFS, bind-mounted files carried in the task definition,
and the binds that cannot be carried (sockets, secrets, folders).
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from templates_src.app import bounded, config, names
from templates_src.compose.context import _Context, _image_name, _known, printable
from templates_src.compose.secrets import _secret_files_as_variables


# Bind-mounted folders are carried over as `files` (written at container start from environment
# variables of the task definition, whose whole size ECS caps at 64 KiB) only when this small.
MAX_FILES = 10
MAX_FILES_BYTES = 32 * 1024


# The user the official images run as (uid, gid), for the owner of their data on EFS: alpine tags
# differ from the Debian ones where noted.
DATA_OWNERS = {"postgres": ((999, 999), (70, 70)), "mysql": ((999, 999), None), "mariadb": ((999, 999), None),
               "mongo": ((999, 999), None), "redis": ((999, 999), (999, 1000)), "valkey": ((999, 999), (999, 1000)),
               "rabbitmq": ((999, 999), (100, 101)), "wordpress": ((33, 33), (82, 82))}


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
