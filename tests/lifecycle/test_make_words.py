"""What make itself says and does: help in aligned columns, one sentence for a missing import argument,
diagram drawing the build OUT= names (as templates and lint take OUT=), the package index and the
interpreter the environments are made with."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT, as_typed


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          env=as_typed(), timeout=300)


def recipe(target: str, changed: str, env: dict[str, str]) -> str:
    """What make would run to make target, were `changed` newer (make -n -W), in that environment."""
    done = subprocess.run(["make", "--no-print-directory", "-n", "-W", changed, target], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_help_rows_are_aligned():
    rows = make("help").stdout.splitlines()
    assert len(rows) > 10
    starts = {re.match(r"  make \S+ +", row).end() for row in rows}  # where each description begins
    assert len(starts) == 1, rows


@pytest.mark.parametrize("given, missing", [
    ({}, "needs COMPOSE= (the Compose file to read) and OUT= (the app config to write)"),
    ({"COMPOSE": "docker-compose.yaml"}, "needs OUT= (the app config to write)"),
    ({"OUT": "app.yaml"}, "needs COMPOSE= (the Compose file to read):"),
])
def test_import_compose_without_its_files_says_so_in_one_sentence(given, missing):
    done = make("import-compose", *(f"{k}={v}" for k, v in given.items()))
    assert done.returncode == 2
    said = [line for line in done.stderr.splitlines() if not line.startswith("make: ***")]
    assert len(said) == 1 and missing in said[0] and "expected one argument" not in done.stderr, done.stderr


@pytest.mark.skipif(not shutil.which("dot"), reason="Graphviz is not installed")
def test_diagram_draws_the_build_out_names_there(tmp_path):
    docs = {p.name: p.stat().st_mtime_ns for p in (ROOT / "docs").glob("architecture.*")}
    out = tmp_path / "other-build"
    assert make("templates", f"OUT={out}").returncode == 0
    drawn = make("diagram", f"OUT={out}")
    assert drawn.returncode == 0, drawn.stderr
    assert {p.name for p in out.glob("architecture.*")} >= {"architecture.dot", "architecture.svg"}
    assert {p.name: p.stat().st_mtime_ns for p in (ROOT / "docs").glob("architecture.*")} == docs, "docs/ untouched"


@pytest.mark.parametrize("how", ["PIP_INDEX_URL", "pip.conf", "none"])
def test_the_environments_come_from_the_package_index_pip_is_set_to(tmp_path, how):
    """uv reads none of pip's settings: the index a user gave pip reaches uv, and without one uv uses PyPI.
    make -n prints the recipe that would make the environment (-W: as if requirements.txt had changed)."""
    mirror = "https://mirror.example.org/pypi/simple"
    # os.devnull as pip's config file: no other pip.conf is read (https://pip.pypa.io/en/stable/topics/configuration/)
    env = {k: v for k, v in as_typed(PIP_CONFIG_FILE=os.devnull).items() if k != "PIP_INDEX_URL"}
    if how == "PIP_INDEX_URL":
        env["PIP_INDEX_URL"] = mirror
    elif how == "pip.conf":
        (tmp_path / "pip.conf").write_text(f"[global]\nindex-url = {mirror}\n")
        env["PIP_CONFIG_FILE"] = str(tmp_path / "pip.conf")
    (install,) = [line for line in recipe(".venv/.runtime", "requirements.txt", env).splitlines()
                  if " pip install " in line]
    if how == "none":
        assert "--default-index" not in install, install
    else:
        assert f"--default-index {mirror} " in install, install


OTHER_PYTHON = """#!/bin/sh
# a Python 3.99, as far as the Makefile's question goes
exec {python} -c 'import sys; sys.version_info = (3, 99, 0); exec(sys.argv[2])' "$@"
"""


@pytest.mark.parametrize("system, given, expected", [
    ("same", None, "same"),  # the system's python3 is PYTHON's version: .venv is made on it
    ("other", None, "python3"),  # another version: on PYTHON (python3 by default), which the pins were made on
    ("missing", None, "python3"),
    ("same", "python3", "python3"),  # PYTHON given: that one, whatever the system has
])
def test_the_tools_environment_is_made_on_the_system_python_when_it_is_the_same_version_unless_python_is_given(
        tmp_path, system, given, expected):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").symlink_to(sys.executable)  # PYTHON's default, python3, is this one
    other = tmp_path / "python3.99"
    other.write_text(OTHER_PYTHON.format(python=sys.executable))
    other.chmod(0o755)
    interpreters = {"same": sys.executable, "other": str(other), "missing": str(tmp_path / "no-python")}
    env = {k: v for k, v in as_typed(SYSTEM_PYTHON=interpreters[system]).items() if k != "PYTHON"}
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"
    if given:
        env["PYTHON"] = given
    (made,) = [line for line in recipe(".venv/.runtime", "requirements.txt", env).splitlines() if " venv " in line]
    assert f" --python {interpreters.get(expected, expected)} .venv " in made, made
    for tool in ("checkov", "taskcat"):  # their environments stay on PYTHON: checkov's pins need 3.11.5 or newer
        made = recipe(f".venv-{tool}/.installed", f"requirements-{tool}.txt", env)
        assert f" --python {given or 'python3'} .venv-{tool} " in made, made
