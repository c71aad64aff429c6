"""Hostile input: every bad file gets one sentence and exit 2, in bounded time, never a traceback,
a segfault or a hang; what the build writes never lands where a planted file or link points.

Crashes are driven through `python -m templates_src` as a subprocess, so the test sees the exit
code (139 for a segfault) and stderr; a run over its time limit is a hang.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, dks_data
from templates_src import __main__ as cli_main
from templates_src import render  # noqa: E402
from templates_src.compose import context, reading, services  # noqa: E402
from templates_src.app import bounded, checks, config

import yaml

LIMIT = 10  # seconds: a run that takes longer hangs

DEEP = "[" * 30_000 + "]" * 30_000  # 60 KB; libyaml's own composer recursed once per level, in C
# Nine levels of nine aliases: 9**9 values once expanded, in about 600 bytes.
BOMB = "x-0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"x-{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))


def run(*args: str, timeout: float = LIMIT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "templates_src", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"python -m templates_src {' '.join(args)} ran over {timeout} s")


def refused(result: subprocess.CompletedProcess, *facts: str) -> None:
    """Exit 2, an error line, no traceback; stderr says each fact."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "error:" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    for fact in facts:
        assert fact in result.stderr, (fact, result.stderr[-2000:])


def dks_yaml(**changes) -> str:
    data = dks_data()
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def compose_file(folder: Path, text: str | bytes, name: str = "docker-compose.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def import_compose(path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run("import-compose", str(path), "-o", str(out), *extra)


WEB = "services:\n  web:\n    image: nginx:1.27\n    ports: ['80:80']\n"


# --- nesting, aliases, size ---------------------------------------------------------------------------------


def test_a_config_nested_thirty_thousand_levels_deep_is_refused_not_a_segfault(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(f"name: deep\nservices: {DEEP}\n")
    refused(run("build", "--config", str(path), "--out", str(tmp_path / "out")),
            f"nested deeper than {bounded.MAX_DEPTH} levels", str(path), "line 2")


def test_a_compose_file_nested_thirty_thousand_levels_deep_is_refused(tmp_path):
    path = compose_file(tmp_path, WEB + f"    environment:\n      A: {DEEP}\n")
    refused(import_compose(path, tmp_path / "app.yaml"), f"nested deeper than {bounded.MAX_DEPTH} levels")


def test_a_compose_alias_bomb_is_refused_at_once(tmp_path):
    path = compose_file(tmp_path, BOMB + WEB + "    labels: *a8\n")
    started = time.monotonic()
    refused(import_compose(path, tmp_path / "app.yaml"), "aliases expand to more than", "line 6")
    assert time.monotonic() - started < LIMIT


def test_an_alias_bomb_in_a_config_is_refused(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(BOMB + dks_yaml(description="*a8").replace("'*a8'", "*a8"))
    refused(run("build", "--config", str(path), "--out", str(tmp_path / "out")), "aliases expand to more than")


def test_an_alias_inside_its_own_anchor_is_refused_not_walked_forever(tmp_path):
    path = compose_file(tmp_path, WEB + "    environment: &env\n      A: *env\n")
    refused(import_compose(path, tmp_path / "app.yaml"), "alias *env refers to a node it is inside")


def test_aliases_within_the_budget_still_work(tmp_path):
    data = bounded.load_yaml("x-common: &common {image: nginx}\nservices:\n  a: *common\n  b: {<<: *common, "
                             "ports: ['80:80']}\n")
    assert data["services"] == {"a": {"image": "nginx"}, "b": {"image": "nginx", "ports": ["80:80"]}}


def test_a_config_over_the_size_cap_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "app.yaml"
    text = dks_yaml()
    # Still a valid config: only its size (a comment) is wrong.
    path.write_text(text + "#" * (bounded.CONFIG_BYTES - len(text) + 1) + "\n")
    refused(run("build", "--config", str(path), "--out", str(tmp_path / "out")),
            f"at most {bounded.CONFIG_BYTES:,} are read", str(path))


# --- files that are not files, not UTF-8 --------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)
    return path


def test_a_fifo_as_the_config_is_refused_not_waited_on(tmp_path, fifo):
    refused(run("build", "--config", str(fifo), "--out", str(tmp_path / "out")), "not a regular file", str(fifo))


def test_a_fifo_as_the_compose_file_or_its_env_file_is_refused(tmp_path, fifo):
    refused(import_compose(fifo, tmp_path / "app.yaml"), "not a regular file")
    path = compose_file(tmp_path / "app", WEB)
    refused(import_compose(path, tmp_path / "app.yaml", "--env-file", str(fifo)), "not a regular file", str(fifo))


def test_a_fifo_as_an_env_file_of_a_service_is_a_warning_not_a_hang(tmp_path, fifo):
    path = compose_file(tmp_path, WEB + f"    env_file: {fifo.name}\n")
    result = import_compose(path, tmp_path / "out" / "app.yaml")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "web.env_file: cannot read env_file" in result.stderr and "not a regular file" in result.stderr


def test_non_utf8_compose_and_env_files_are_refused_with_the_byte(tmp_path):
    latin = "café".encode("latin-1")
    path = compose_file(tmp_path / "a", WEB.encode() + b"    environment:\n      V: " + latin + b"\n")
    refused(import_compose(path, tmp_path / "a.yaml"), "is not UTF-8 text: byte 0xe9", str(path))
    path = compose_file(tmp_path / "b", WEB)
    (tmp_path / "b" / ".env").write_bytes(b"V=" + latin + b"\n")
    refused(import_compose(path, tmp_path / "b.yaml"), "is not UTF-8 text: byte 0xe9", ".env")
    path = compose_file(tmp_path / "c", WEB + "    env_file: web.env\n")
    (tmp_path / "c" / "web.env").write_bytes(b"V=" + latin + b"\n")
    result = import_compose(path, tmp_path / "c" / "out" / "app.yaml")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "is not UTF-8 text: byte 0xe9" in result.stderr and "its variables are missing" in result.stderr


def test_interpolation_nested_two_thousand_levels_deep_is_refused_not_a_recursion_error(tmp_path):
    path = compose_file(tmp_path, WEB + "    environment:\n      V: '" + "${A:-" * 2000 + "x" + "}" * 2000 + "'\n")
    refused(import_compose(path, tmp_path / "app.yaml"),
            f"interpolation nested deeper than {reading.MAX_INTERPOLATION_DEPTH} levels")


# --- numbers ------------------------------------------------------------------------------------------------


def test_a_billion_replicas_is_refused_quickly_not_placed(tmp_path):
    path = compose_file(tmp_path, WEB + "    deploy:\n      replicas: 1000000000\n")
    refused(import_compose(path, tmp_path / "app.yaml"), "desired_count: must be between 0 and 1000")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400", "9" * 400])
def test_infinite_cpus_and_memory_are_warned_about_not_a_traceback(tmp_path, value):
    path = compose_file(tmp_path, WEB + f"    cpus: {value}\n    mem_limit: {value}\n")
    result = import_compose(path, tmp_path / "out" / "app.yaml")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    written = yaml.safe_load((tmp_path / "out" / "app.yaml").read_text())["services"][0]
    assert (written["cpu"], written["memory"]) == (context.DEFAULT_CPU, context.DEFAULT_MEMORY)


def test_a_long_value_is_scanned_for_urls_in_linear_time(tmp_path):
    # A scheme regex starting at every letter took about 10 s on this value.
    for value in ("a" * 80_000, "a-" * 40_000, "a://" * 20_000, "1" + "a" * 80_000 + "!b://db"):
        started = time.monotonic()
        imported = services.convert({"services": {"db": {"image": "postgres:16"},
                                                 "web": {"image": "nginx", "environment": {"URL": value}}}},
                                   tmp_path, tmp_path)
        assert time.monotonic() - started < 2, value[:20]
        assert imported.data["services"]


def test_url_hosts_are_rewritten_as_before():
    renamed = {"db": "dks-db", "api": "dks-api"}
    rewrite = lambda name: "{" + renamed[name] + ".host}" if name in renamed else name  # noqa: E731
    cases = {
        "postgres://user:pw@db:5432/x": "postgres://user:pw@{dks-db.host}:5432/x",
        "1http://api/x and a://db": "1http://{dks-api.host}/x and a://{dks-db.host}",
        "a://b.c+d://db": "a://b.c+d://{dks-db.host}",
        "://db no scheme": "://db no scheme",
        "http:// api": "http:// api",
    }
    for value, expected in cases.items():
        assert services.url_hosts(value, rewrite) == expected, value


# --- where the build writes ---------------------------------------------------------------------------------


def test_build_into_a_file_or_onto_a_folder_is_refused(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    refused(run("build", "--out", str(a_file)), "it is a file, not a folder")
    (tmp_path / "out" / "services.yaml").mkdir(parents=True)
    (tmp_path / "out" / "main.yaml").write_text("before\n")
    refused(run("build", "--out", str(tmp_path / "out")), "services.yaml: Is a directory")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["main.yaml", "services.yaml"], "files left"
    assert (tmp_path / "out" / "main.yaml").read_text() == "before\n", "a template replaced before the refusal"


def test_a_full_disk_is_one_sentence_and_leaves_the_build_as_it_was(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "main.yaml").write_text("before\n")

    def full(folder, prefix, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(render, "stage", full)
    assert cli_main.main(["build", "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert (out / "main.yaml").read_text() == "before\n"


def test_a_stale_non_utf8_yaml_in_out_is_left_alone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.yaml").write_bytes(b"# caf\xe9\n")
    result = run("build", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "notes.yaml").read_bytes() == b"# caf\xe9\n"


def test_temp_files_are_never_written_through_a_planted_symlink(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    # The names the build used to stage under (predictable: the process id), and the target itself.
    for name in ("main.yaml", "iam.yaml"):
        (out / f".{name}.{os.getpid()}.tmp").symlink_to(victim)
    (out / "network.yaml").symlink_to(victim)
    render.write({"main.yaml": "a: 1\n", "iam.yaml": "b: 2\n", "network.yaml": "c: 3\n"}, out)
    assert victim.read_text() == "precious\n"
    assert (out / "main.yaml").read_text() == "a: 1\n" and not (out / "network.yaml").is_symlink()


def test_import_o_refuses_a_folder_and_a_symlink_unless_forced(tmp_path):
    path = compose_file(tmp_path / "src", WEB)
    (tmp_path / "folder").mkdir()
    refused(import_compose(path, tmp_path / "folder"), "is a folder")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "out" / "app.yaml"
    link.parent.mkdir()
    link.symlink_to(victim)
    refused(import_compose(path, link), "is a symbolic link", "--force")
    result = import_compose(path, link, "--force")
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious\n" and not link.is_symlink()
    assert yaml.safe_load(link.read_text())["services"][0]["image"] == "nginx:1.27"


# --- values the build accepted and AWS refuses --------------------------------------------------------------


def problems_of(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(config.ConfigError) as caught:
        checks.validate(config.parse(data, base_dir=config.DEFAULT_CONFIG.parent))
    return caught.value.problems


def test_a_health_check_path_with_a_line_break_or_space_is_refused():
    for path in ("/health\nX-Injected: 1", "/a b"):
        data = dks_data()
        data["services"][1].setdefault("health_check", {})["path"] = path
        assert any(where == "services[1].health_check.path" and "line break" in reason
                   for where, reason in problems_of(data))


@pytest.mark.parametrize("path", ["/proc", "/proc/self/data", "/sys/fs/data", "/dev/shm/db"])
def test_data_under_the_kernels_directories_is_refused(path):
    data = dks_data()
    db = next(s for s in data["services"] if s.get("data"))
    db["data"]["path"] = path
    index = data["services"].index(db)
    assert any(where == f"services[{index}].data.path" and "cannot be mounted there" in reason
               for where, reason in problems_of(data))


def test_an_image_reference_with_a_space_is_refused():
    data = dks_data()
    data["services"][0]["image"] = "postgres :16"
    assert any(where == "services[0].image" for where, _ in problems_of(data))


def test_a_task_definition_over_64_kib_is_refused_at_build_time(tmp_path):
    data = dks_data()
    data["services"][1]["environment"].update({f"BIG_{i}": "x" * 1000 for i in range(70)})
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "db-init.sh").write_text((config.DEFAULT_CONFIG.parent / "db-init.sh").read_text())
    refused(run("build", "--config", str(path), "--out", str(tmp_path / "out")),
            "task definition DksApiTaskDefinition", "ECS allows 65,536")
    assert not (tmp_path / "out").exists()
