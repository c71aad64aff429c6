"""Bad input, generated, for the Compose import: every Compose file either imports into a config the
build accepts or is refused with exit 2 and an error line, never a traceback, and none takes 10 s.

Hypothesis writes Compose files the way people do (services with images, ports, environment, deploy
limits, health checks, env files) and then makes them hostile in the ways that once crashed or hung
the import: nesting tens of thousands of levels deep, an alias bomb or an alias to its own anchor,
values of tens of kilobytes, bytes that are not UTF-8, numbers that are infinite, not a number or
larger than a float, a billion replicas, interpolation that never closes, values of the wrong
shape anywhere, env files as broken as the Compose file. Each one runs through the command itself,
`python -m templates_src import-compose`, in this process (main()), under an alarm.

The run is derandomized and must both import and refuse a good share of its examples.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from templates_src import __main__ as cli
from templates_src.app import config, loading

EXAMPLES = int(os.environ.get("IMPORT_FUZZ_EXAMPLES", 300))
LIMIT = 10  # seconds per example: longer is a hang
MIN_SHARE = 0.2

IMAGES = ["nginx:1.27", "postgres:16.4-alpine", "redis:7-alpine", "ghcr.io/acme/app:1", "node:20", "app"]
NUMBERS = [".inf", "-.inf", ".nan", "1e400", "9" * 400, "1000000000", "-1", "0", "0.001", "1.5", "'2'", "true",
           "[]", "{}", "~"]
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


@st.composite
def service(draw, names: list[str]) -> dict:
    svc: dict = {}
    if draw(st.integers(0, 5)):
        svc["image"] = draw(st.sampled_from(IMAGES))
    else:
        svc["build"] = "."
    if draw(st.booleans()):
        port = draw(st.sampled_from([80, 3000, 5432, 8080, 6379]))
        svc["ports"] = [draw(st.sampled_from([f"{port}:{port}", str(port), f"127.0.0.1:{port}:{port}",
                                              {"target": port, "published": port}]))]
    if draw(st.booleans()):
        svc["environment"] = {draw(st.sampled_from(["DB_HOST", "URL", "MODE", "API_URL", "PASSWORD"])): value
                              for value in [draw(st.sampled_from(
                                  ["db", "http://localhost:8080", "postgres://u:p@db:5432/x", "${MODE:-dev}",
                                   "plain", "$$literal"]))]}
    if draw(st.booleans()):
        svc["deploy"] = {"resources": {"limits": {"cpus": draw(st.sampled_from(["0.5", "1", "2"])),
                                                  "memory": draw(st.sampled_from(["256M", "1g", "512m"]))}}}
    if draw(st.booleans()):
        svc["healthcheck"] = {"test": ["CMD", "curl", "-f", "http://localhost/"], "interval": "30s",
                              "timeout": "5s", "retries": 3}
    others = [n for n in names if n != names[-1]]
    if others and draw(st.booleans()):
        svc["depends_on"] = draw(st.lists(st.sampled_from(others), min_size=1, max_size=2, unique=True))
    if draw(st.integers(0, 3)) == 0:
        svc["env_file"] = "app.env"
    return svc


@st.composite
def compose_data(draw) -> dict:
    names = draw(st.lists(WORDS.filter(lambda n: n[0].isalpha()), min_size=1, max_size=4, unique=True))
    services = {}
    for i, name in enumerate(names):
        services[name] = draw(service(names[:i + 1]))
    return {"services": services}


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


# --- what makes a file hostile ---------------------------------------------------------------------------


def deep(draw, data):
    levels = draw(st.sampled_from([70, 1_000, 30_000]))
    style = draw(st.sampled_from(["flow", "block"]))
    if style == "flow":
        return dump(data) + f"x-deep: {'[' * levels}{']' * levels}\n"
    return dump(data) + "x-deep:\n" + "".join(" " * i + "-\n" for i in range(1, min(levels, 3000)))


def bomb(draw, data):
    levels = draw(st.integers(3, 9))
    text = "x-0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"x-{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, levels))
    first = next(iter(data["services"]))
    body = dump(data).replace(f"  {first}:\n", f"  {first}:\n    labels: *a{levels - 1}\n", 1)
    return text + body


def cycle(draw, data):
    first = next(iter(data["services"]))
    return dump(data).replace(f"  {first}:\n", f"  {first}: &self\n    labels: {{loop: *self}}\n", 1)


def long_value(draw, data):
    size = draw(st.sampled_from([1_000, 20_000, 80_000]))
    unit = draw(st.sampled_from(["a", "a-", "a://", "x.y", "é"]))
    svc = next(iter(data["services"].values()))
    svc["environment"] = {"URL": unit * (size // len(unit))}
    return dump(data)


def not_utf8(draw, data):
    text = dump(data).encode()
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from([b"\xe9", b"\xff\xfe", b"\x80", b"\xc3"])) + text[at:]


def numbers(draw, data):
    svc = data["services"][draw(st.sampled_from(sorted(data["services"])))]
    key = draw(st.sampled_from(["cpus", "mem_limit", "replicas", "limits.cpus", "limits.memory", "interval"]))
    text_value = draw(st.sampled_from(NUMBERS))
    marker = "__NUMBER__"
    if key == "replicas":
        svc.setdefault("deploy", {})["replicas"] = marker
    elif key.startswith("limits."):
        svc["deploy"] = {"resources": {"limits": {key.split(".")[1]: marker}}}
    elif key == "interval":
        svc["healthcheck"] = {"test": "true", "interval": marker}
    else:
        svc[key] = marker
    return dump(data).replace(f"'{marker}'", text_value).replace(marker, text_value)


def wrong_shape(draw, data):
    svc = data["services"][draw(st.sampled_from(sorted(data["services"])))]
    key = draw(st.sampled_from(["ports", "environment", "deploy", "healthcheck", "depends_on", "volumes",
                                "env_file", "command", "secrets", "image", "networks", "build"]))
    svc[key] = draw(st.sampled_from([None, "x", 5, [None], [{"a": [1]}], {"a": {"b": [None]}}, [[["deep"]]],
                                     True, {"target": "x"}, ["99999:99999"], ["a:b:c:d"]]))
    return dump(data)


def interpolation(draw, data):
    svc = next(iter(data["services"].values()))
    svc["environment"] = {"V": draw(st.sampled_from(
        ["${", "${A", "${A:-${B:-${C", "${A:?must be set}", "${A/x}", "$", "${}", "${A:-" + "{" * 500,
         "${" * 2000, "$" * 5000, "${A:+${B?no}}", "${A:-" * 2000 + "x" + "}" * 2000]))}
    return dump(data)


def odd_document(draw, data):
    return draw(st.sampled_from(["", "null\n", "- a\n", "services: []\n", "services: {}\n", "services:\n  a: 1\n",
                                 "\t\tservices:\n", "services:\n  a:\n    image: x\n  a:\n    image: y\n",
                                 "%YAML 9.9\n---\n", "--- a\n--- b\n", "!!python/object:os.system {}\n",
                                 "services: !!binary aGVsbG8=\n", "? [a, b]\n: c\n"]))


HOSTILE = [deep, bomb, cycle, long_value, not_utf8, numbers, wrong_shape, interpolation, odd_document]

ENV_FILES = ["MODE=prod\n", "A='unterminated\n", 'B="\\"\n', "export C=${D:-e}\n", "=novalue\n", "K\n",
             "X=${" * 100 + "\n", "W=" + "${A:-" * 500 + "}" * 500 + "\n", "Y=" + "a" * 100_000 + "\n",
             b"Z=caf\xe9\n", "\x00=\x00\n"]


@st.composite
def cases(draw) -> tuple[bytes, object, str]:
    data = draw(compose_data())
    kind = draw(st.sampled_from(["plain"] * 3 + ["hostile"] * 7))
    if kind == "plain":
        text, what = dump(data), "plain"
    else:
        mutation = draw(st.sampled_from(HOSTILE))
        text, what = mutation(draw, data), mutation.__name__
    env = draw(st.sampled_from([None, *ENV_FILES]))
    return (text if isinstance(text, bytes) else text.encode()), env, what


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"over {LIMIT} s")


def test_every_generated_compose_file_imports_clean_or_is_refused(hypothesis_home, tmp_path):
    outcomes = {"imported": 0, "refused": 0}
    source = tmp_path / "src"
    source.mkdir()
    compose_path = source / "docker-compose.yaml"
    out = tmp_path / "out" / "app.yaml"
    slowest = [0.0]

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cases())
    def check(case):
        text, env, what = case
        event(what)
        compose_path.write_bytes(text)
        for name in (".env", "app.env"):
            path = source / name
            if env is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(env if isinstance(env, bytes) else env.encode())
        out.unlink(missing_ok=True)
        stderr = io.StringIO()
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(LIMIT)
        started = time.monotonic()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                status = cli.main(["import-compose", str(compose_path), "-o", str(out), "--force"])
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        took = time.monotonic() - started
        slowest[0] = max(slowest[0], took)
        said = stderr.getvalue()
        assert took < LIMIT, f"{what}: {took:.1f} s"
        assert "Traceback" not in said, said
        assert status in (0, 2), (status, said[-2000:])
        if status == 2:
            assert "error:" in said and not out.exists(), said[-2000:]
            outcomes["refused"] += 1
            event("refused")
            return
        # What the import writes, the build reads back and accepts.
        loading.load(out)
        outcomes["imported"] += 1
        event("imported")

    check()
    total = sum(outcomes.values())
    print(f"import fuzz: {total} Compose files, {outcomes['imported']} imported and accepted by the build, "
          f"{outcomes['refused']} refused; slowest {slowest[0]:.2f} s")
    assert total >= EXAMPLES, outcomes
    assert min(outcomes.values()) >= MIN_SHARE * total, outcomes
