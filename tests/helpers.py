"""Test helpers: the default DKS config as data, variants of it, rendered templates, cfn-lint."""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from templates_src import render
from templates_src.app import checks, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import lint  # noqa: E402  (scripts/lint.py: cfn-lint with make lint's rules)
BUILD = ROOT / "build"
DKS_DIR = config.DEFAULT_CONFIG.parent


def as_typed(**env: str) -> dict[str, str]:
    """The environment of a command typed at a terminal: `make test` runs the tests under make, whose
    MAKELEVEL and MAKEFLAGS would make a make they start a sub-make (`make[2]: ...`), not the one a person runs."""
    outer = {name: value for name, value in os.environ.items()
             if name not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")}
    return {**outer, **env}


def interruptible() -> None:
    """A Popen preexec_fn: in the child, Ctrl-C as a terminal delivers it. A run started in the background by a
    non-interactive shell (nohup, `&`, some CI runners) inherits SIGINT ignored, and so would the command and
    Python in it (no KeyboardInterrupt then); a test that sends SIGINT means the user's Ctrl-C, not that
    inheritance."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def dks_data() -> dict:
    """The default app config as plain data (a fresh copy each call)."""
    return copy.deepcopy(_DKS)


_DKS = yaml.safe_load(config.DEFAULT_CONFIG.read_text())


def app_from(data: dict) -> config.App:
    """Parse and validate config data; `files` resolve next to the DKS config."""
    app = config.parse(data, base_dir=DKS_DIR)
    checks.validate(app)
    return app


def service(data: dict, name: str) -> dict:
    return next(s for s in data["services"] if s["name"] == name)


def templates(app: config.App) -> dict[str, dict]:
    """File name -> template data, rendered the way build/ is."""
    return render.stacks(app)


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def cfn_lint(paths: list[Path], *ignore: str) -> subprocess.CompletedProcess:
    """cfn-lint over the files, in this process with the rules `make lint` loads (scripts/lint.py): loading
    them is most of a cfn-lint command's second, paid here once per worker. Exit code 0 when nothing is
    found, 2 otherwise; one finding per line, each with its rule (E3043, W3002...) and file."""
    found = [f"{path}: {finding}" for path in paths for finding in lint.findings(Path(path), tuple(ignore))]
    return subprocess.CompletedProcess(["cfn-lint", *map(str, paths)], 2 if found else 0, "\n".join(found), "")


def write_build(app: config.App, out: Path, local_urls: bool = False) -> Path:
    render.write(render.render(app, "test", local_urls=local_urls), out)
    return out


def stand_in_docker(tmp_path: Path, script: str) -> dict[str, str]:
    """Environment with `script` as `docker` first on PATH (it logs to DOCKER_LOG) and two git checkouts,
    dks-api and dks-ui, as the sources (DKS_API_DIR, DKS_UI_DIR): no Docker engine runs in the tests."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(script)
    (bin_dir / "docker").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DOCKER_LOG": str(tmp_path / "docker.log")}
    for repo in ("dks-api", "dks-ui"):
        source = tmp_path / repo
        source.mkdir()
        (source / "Dockerfile").write_text("FROM scratch\n")
        git = ["git", "-C", str(source), "-c", "user.email=ci@example.com", "-c", "user.name=ci"]
        subprocess.run(["git", "init", "-q", str(source)], check=True)
        subprocess.run(git + ["add", "."], check=True)
        subprocess.run(git + ["commit", "-qm", "source"], check=True)
        env[repo.upper().replace("-", "_") + "_DIR"] = str(source)
    return env
