"""The `import-compose` command: load, convert, size the cluster, check the result with the build's
own checks and write app.yaml (and the files it needs) without overwriting what it should not.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from templates_src.app import bounded, checks, config, loading
from templates_src.compose.context import Finding, Imported, mask, printable
from templates_src.compose.reading import ComposeError, interpolate_all, load, parse_env_file
from templates_src.compose.volumes import _inside
from templates_src.compose.explain import describe_problems, to_yaml
from templates_src.compose.services import convert


# --- sizing, validating, writing --------------------------------------------------------------------------


def size_cluster(data: dict, base_dir: Path, file_contents: Optional[dict[str, str]] = None
                 ) -> tuple[dict, Optional[str]]:
    """The cluster sized for the tasks: max_size fits the deployment peak plus one host (managed scaling keeps
    the steady state). The extra host is headroom for ECS's own placement (spread over AZs, then binpack),
    which packs less tightly than the fit check's, and for an instance refresh's replacement host.

    Returns the data unchanged (and None) when the tasks cannot be placed at all; validation says why.
    """
    from templates_src.app import capacity, instance_types

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
        checks.validate(app)
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
            written = loading.load(temporary)
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
