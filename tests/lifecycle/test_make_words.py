"""What make itself says: help in aligned columns, one sentence for a missing import argument, and
diagram drawing the build OUT= names (as templates and lint take OUT=)."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from helpers import ROOT, as_typed


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          env=as_typed(), timeout=300)


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
