"""The Compose import reads a bind mount only when it is text inside the Compose project's folder.

What a bind carries over becomes `files`, whose text sits in plain text in the task definition: a
mount of ~/.aws, ~/.ssh, a path up and out of the project, a symlink out of it, a FIFO or a device
is refused by name, and nothing of it is read.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import ROOT
from templates_src.compose import context, services

KEY = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"


def imported(volumes: list, project: Path) -> context.Imported:
    return services.convert({"services": {"web": {"image": "nginx:1.27", "volumes": volumes}}}, project, project, {})


def refused(result: context.Imported) -> str:
    """The warning for the web service's first volume; nothing may have been carried over or read."""
    [message] = [f.message for f in result.warnings if (f.service, f.key) == ("web", "volumes[0]")]
    web = result.data["services"][0]
    assert "files" not in web and result.file_contents == {}
    text = " ".join(str(f) for f in result.warnings + result.notes)
    assert "wJalrXUtnFEMI" not in text and "hello" not in text
    return message


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A home folder holding the usual credentials, as HOME."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(KEY)
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def project(tmp_path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "nginx.conf").write_text("events {}\n")
    return project


@pytest.mark.parametrize("volume", ["~/.aws/credentials:/root/.aws/credentials:ro", "~/.aws:/root/.aws",
                                    "~/.ssh:/root/.ssh:ro", "~/.ssh/id_ed25519:/root/.ssh/id_ed25519"])
def test_credentials_in_the_home_folder_are_refused(home, project, volume):
    assert "refused" in refused(imported([volume], project))


@pytest.mark.parametrize("name", [".env", "server.key", "cert.pem", ".pgpass", "credentials"])
def test_credentials_inside_the_project_are_refused(project, name):
    (project / name).write_text(KEY)
    message = refused(imported([f"./{name}:/etc/app/{name}"], project))
    assert "credentials or keys" in message


def test_a_folder_holding_a_key_is_refused_whole(project):
    (project / "conf").mkdir()
    (project / "conf" / "app.conf").write_text("hello\n")
    (project / "conf" / "id_rsa").write_text(KEY)
    message = refused(imported(["./conf:/etc/app"], project))
    assert "conf/id_rsa" in message and "credentials or keys" in message


@pytest.mark.parametrize("source", ["../outside.conf", "./sub/../../outside.conf", "~/outside.conf"])
def test_a_path_outside_the_project_is_refused(home, project, source):
    (project.parent / "outside.conf").write_text("hello\n")
    (home / "outside.conf").write_text("hello\n")
    (project / "sub").mkdir()
    assert "outside the Compose project's folder" in refused(imported([f"{source}:/etc/nginx/nginx.conf"], project))


def test_a_symlink_out_of_the_project_is_refused(project):
    (project.parent / "outside.conf").write_text("hello\n")
    (project / "link.conf").symlink_to(project.parent / "outside.conf")
    message = refused(imported(["./link.conf:/etc/nginx/nginx.conf"], project))
    assert "outside the Compose project's folder" in message


def test_a_folder_with_a_symlink_out_is_refused_whole(project):
    (project / "conf.d").mkdir()
    (project / "conf.d" / "a.conf").write_text("a\n")
    (project / "conf.d" / "b.conf").symlink_to("/proc/self/environ")
    assert "outside the Compose project's folder" in refused(imported(["./conf.d:/etc/nginx/conf.d"], project))


def test_a_linked_folder_out_of_the_project_is_refused(project):
    (project.parent / "elsewhere").mkdir()
    (project.parent / "elsewhere" / "a.conf").write_text("hello\n")
    (project / "conf.d").symlink_to(project.parent / "elsewhere")
    assert "outside the Compose project's folder" in refused(imported(["./conf.d:/etc/nginx/conf.d"], project))


def test_a_fifo_is_refused_without_waiting(project):
    os.mkfifo(project / "pipe.conf")
    results: list = []
    worker = threading.Thread(target=lambda: results.append(imported(["./pipe.conf:/etc/x.conf"], project)),
                              daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with open(project / "pipe.conf", "w"):
            pass
        pytest.fail("the import waited on a FIFO")
    assert "is a FIFO" in refused(results[0])


def test_a_symlink_that_stays_inside_the_project_is_carried_over(project):
    (project / "conf").mkdir()
    (project / "conf" / "site.conf").symlink_to(project / "nginx.conf")
    result = imported(["./conf:/etc/nginx/conf.d"], project)
    web = result.data["services"][0]
    assert web["files"] == {"/etc/nginx/conf.d/site.conf": "conf/site.conf"}
    assert result.file_contents == {"conf/site.conf": "events {}\n"}


def test_a_refused_mount_leaves_the_rest_of_the_service(project):
    result = imported(["../x.conf:/etc/x.conf", "./nginx.conf:/etc/nginx/nginx.conf"], project)
    web = result.data["services"][0]
    assert web["files"] == {"/etc/nginx/nginx.conf": "nginx.conf"}
    assert "refused" in " ".join(f.message for f in result.warnings if f.key == "volumes[0]")


def test_a_link_inside_the_project_to_its_env_file_is_refused(project):
    (project / ".env").write_text(KEY)
    (project / "app.conf").symlink_to(project / ".env")
    assert "credentials or keys" in refused(imported(["./app.conf:/etc/app.conf"], project))


def test_an_env_file_outside_the_project_is_refused_and_its_values_never_reach_app_yaml(tmp_path):
    """Its values would sit in plain text in app.yaml: /proc/self/environ is the importer's own environment."""
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "credentials.env").write_text("AWS_SECRET_ACCESS_KEY=outside-the-project\n")
    (project / "linked.env").symlink_to(tmp_path / "credentials.env")
    (project / "compose.yaml").write_text(
        "services:\n  web:\n    image: nginx:1.27\n    ports: ['8080:80']\n"
        "    env_file: [/proc/self/environ, ../credentials.env, linked.env]\n")
    out = tmp_path / "out" / "app.yaml"
    run = subprocess.run([sys.executable, "-m", "templates_src", "import-compose", str(project / "compose.yaml"),
                          "-o", str(out)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "IMPORT_CANARY": "builder-environment-canary"})
    assert run.returncode == 0, run.stderr
    refusals = [line for line in run.stderr.splitlines() if line.startswith("warning: web.env_file:")]
    assert len(refusals) == 3 and all("outside the Compose project's folder" in line for line in refusals), run.stderr
    written = out.read_text()
    assert "builder-environment-canary" not in written and "outside-the-project" not in written


def test_a_dotenv_linked_out_of_the_project_is_refused(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "elsewhere").write_text("TAG=1.27\n")
    (project / ".env").symlink_to(tmp_path / "elsewhere")
    (project / "compose.yaml").write_text("services:\n  web:\n    image: nginx:${TAG}\n    ports: ['8080:80']\n")
    run = subprocess.run([sys.executable, "-m", "templates_src", "import-compose", str(project / "compose.yaml"),
                          "-o", str(tmp_path / "app.yaml")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2 and "outside the Compose project's folder" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "app.yaml").exists()
