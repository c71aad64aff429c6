"""`files` read only regular text files inside the config's folder, and only what a task definition holds.

Each file's text goes into the task definition in plain text (services.launcher), so whatever the
build reads from the disk ends up in build/services.yaml: a path outside the folder, a symlink out
of it, /proc/self/environ or a FIFO must be refused with the field's path, never read.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from helpers import DKS_DIR, ROOT, dks_data
from templates_src.app import config, loading
from templates_src.app.config import ConfigError

TARGET = "/docker-entrypoint-initdb.d/0_0_db.sh"
WHERE = f"services[0].files.{TARGET}"


def write_app(folder: Path, source: str = "db-init.sh") -> Path:
    """The DKS config in `folder`, its DB init file given as `source`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DKS_DIR / "db-init.sh", folder / "db-init.sh")
    data = dks_data()
    data["services"][0]["files"] = {TARGET: source}
    path = folder / "app.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    [(where, reason)] = caught.value.problems
    assert where == WHERE, caught.value.problems
    return reason


def test_a_file_inside_the_folder_is_read(tmp_path):
    app = loading.load(write_app(tmp_path))
    assert app.file_contents["db-init.sh"] == (DKS_DIR / "db-init.sh").read_text()


def test_an_absolute_path_is_refused(tmp_path):
    secret = tmp_path / "elsewhere" / "credentials"
    secret.parent.mkdir()
    secret.write_text("aws_secret_access_key = abc\n")
    assert "not relative" in refusal(write_app(tmp_path / "app", str(secret)))


@pytest.mark.parametrize("source", ["../credentials", "sub/../../credentials", "~/.aws/credentials"])
def test_a_path_that_leaves_the_folder_is_refused(tmp_path, source):
    (tmp_path / "credentials").write_text("aws_secret_access_key = abc\n")
    (tmp_path / "app" / "sub").mkdir(parents=True)
    reason = refusal(write_app(tmp_path / "app", source))
    assert "config's folder only" in reason and source in reason


@pytest.mark.parametrize("outside", ["/proc/self/environ", "credentials"])
def test_a_symlink_out_of_the_folder_is_refused(tmp_path, outside):
    (tmp_path / "credentials").write_text("aws_secret_access_key = abc\n")
    folder = tmp_path / "app"
    path = write_app(folder, "init.sh")
    target = Path(outside) if outside.startswith("/") else tmp_path / outside
    (folder / "init.sh").symlink_to(target)
    reason = refusal(path)
    assert "outside the config's folder" in reason and "init.sh" in reason


def test_a_symlink_out_through_a_linked_folder_is_refused(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "init.sh").write_text("echo hi\n")
    folder = tmp_path / "app"
    path = write_app(folder, "linked/init.sh")
    (folder / "linked").symlink_to(tmp_path / "outside")
    assert "outside the config's folder" in refusal(path)


def test_a_symlink_that_stays_inside_the_folder_is_followed(tmp_path):
    folder = tmp_path / "app"
    path = write_app(folder, "scripts/init.sh")
    (folder / "scripts").mkdir()
    (folder / "scripts" / "init.sh").symlink_to(folder / "db-init.sh")
    assert loading.load(path).file_contents["scripts/init.sh"] == (DKS_DIR / "db-init.sh").read_text()


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    path = write_app(tmp_path, "init.fifo")
    os.mkfifo(tmp_path / "init.fifo")
    result: list[BaseException] = []

    def load() -> None:
        try:
            loading.load(path)
        except ConfigError as err:
            result.append(err)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # release the reader so the thread ends, then fail
        with open(tmp_path / "init.fifo", "w"):
            pass
        pytest.fail("loading the config waited on a FIFO")
    [err] = result
    assert err.problems == [(WHERE, "init.fifo is a FIFO: only regular files are read")]


def test_a_folder_is_refused(tmp_path):
    path = write_app(tmp_path, "scripts")
    (tmp_path / "scripts").mkdir()
    assert refusal(path) == "scripts is a folder: only regular files are read"


def test_a_file_that_cannot_fit_in_a_task_definition_is_refused_with_its_size(tmp_path):
    path = write_app(tmp_path, "big.sql")
    (tmp_path / "big.sql").write_text("x" * (config.FILES_BYTES + 1))
    reason = refusal(path)
    assert f"{config.FILES_BYTES + 1:,} bytes" in reason and "64 KiB" in reason


def test_files_that_fit_one_by_one_but_not_together_are_refused(tmp_path):
    path = write_app(tmp_path)
    data = yaml.safe_load(path.read_text())
    half = config.FILES_BYTES // 2 + 1
    data["services"][0]["files"] = {"/a.sql": "a.sql", "/b.sql": "b.sql"}
    (tmp_path / "a.sql").write_text("a" * half)
    (tmp_path / "b.sql").write_text("b" * half)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    [(where, reason)] = caught.value.problems
    assert where == "services[0].files" and f"{2 * half:,} bytes" in reason


def test_the_size_counts_what_json_escaping_adds(tmp_path):
    # Newlines take two bytes each inside the task definition's JSON.
    path = write_app(tmp_path, "lines.sql")
    (tmp_path / "lines.sql").write_text("\n" * (config.FILES_BYTES // 2 + 1))
    assert "64 KiB" in refusal(path)


def build(config_path: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "templates_src", "build", "--config", str(config_path),
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)


def test_a_file_that_is_not_utf8_is_one_sentence_and_exit_2(tmp_path):
    path = write_app(tmp_path / "app", "latin1.sql")
    (tmp_path / "app" / "latin1.sql").write_bytes("-- café\n".encode("latin-1"))
    run = build(path, tmp_path / "out")
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    printed = WHERE.replace("services[0]", "services[0] (dks-db)")  # the message names the service
    assert f"{printed}: latin1.sql is not UTF-8 text: byte 0xe9 at offset 6" in run.stderr
    assert not (tmp_path / "out").exists()


def test_the_builders_environment_never_reaches_a_template(tmp_path):
    os.environ.setdefault("FILES_SAFETY_MARKER", "marker-4b1d")
    folder = tmp_path / "app"
    path = write_app(folder, "env.sh")
    (folder / "env.sh").symlink_to("/proc/self/environ")
    run = build(path, tmp_path / "out")
    assert run.returncode == 2 and "outside the config's folder" in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()
