"""One command line for the lifecycle: subcommands, real --help, exit codes that mean something, and make on top.

scripts/ecs-app is the entry point; `python -m lifecycle` (scripts/ on the path) is the same; each
lifecycle make target calls it. Scripts read its exact exit code; make keeps the people's view.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import ROOT, as_typed

COMMANDS = ("deploy", "diff", "images", "verify", "status", "cleanup", "rollback")
CODES = {"0", "1", "2", "3", "130"}


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "scripts/ecs-app", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          env=as_typed(**env), timeout=600)


def documented_codes(text: str) -> set[str]:
    block = text.split("exit codes:", 1)[1]
    return set(re.findall(r"^\s+(\d+)\s", block, re.MULTILINE))


def test_help_lists_every_command_and_the_exit_codes():
    done = cli("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: ecs-app ")
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", done.stdout, re.MULTILINE), command
    assert documented_codes(done.stdout) >= CODES
    assert "AWS_ENDPOINT_URL" in done.stdout


def test_each_command_s_help_shows_its_own_flags():
    flags = {
        "deploy": {"--stack", "--region", "--config", "--bucket", "--parameter", "--skip-images", "--image-tag", "--yes",
                   "--wait"},
        "diff": {"--stack", "--region", "--config", "--bucket", "--parameter"},
        "images": {"--stack", "--region", "--config"},
        "verify": {"--stack", "--region", "--config", "--wait"},
        "status": {"--stack", "--region", "--config"},
        "cleanup": {"--stack", "--region", "--config", "--bucket", "--yes", "--keep-data"},
        "rollback": {"--stack", "--region", "--config", "--service", "--yes", "--wait"},
    }
    everything = set().union(*flags.values())
    for command, own in flags.items():
        done = cli(command, "--help")
        assert done.returncode == 0 and done.stdout.startswith(f"usage: ecs-app {command} "), done.stdout
        shown = set(re.findall(r"(--[a-z-]+)", done.stdout.split("options:", 1)[1].split("exit codes:")[0]))
        assert shown - {"--help"} == own, command
        assert not (everything - own) & shown, f"{command} offers a flag it does not take"
        assert documented_codes(done.stdout) >= CODES


def test_python_m_lifecycle_is_the_same_command_line():
    done = subprocess.run([sys.executable, "-m", "lifecycle", "status", "--help"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": f"{ROOT / 'scripts'}{os.pathsep}{ROOT}"})
    assert done.returncode == 0 and done.stdout.startswith("usage: ecs-app status "), done.stderr


def test_a_wrong_flag_is_refused_with_exit_2():
    done = cli("status", "--yes")
    assert done.returncode == 2 and "unrecognized arguments: --yes" in done.stderr


def test_every_lifecycle_target_calls_the_cli_without_echoing_it():
    makefile = (ROOT / "Makefile").read_text()
    for command in COMMANDS:
        recipe = re.search(rf"^{command}:.*\n\t(.*)$", makefile, re.MULTILINE).group(1)
        assert recipe == f"@$(CLI) {command}", recipe
    assert "\nCLI := $(PY) scripts/ecs-app\n" in makefile


def test_make_shows_only_the_cli_s_sentence_and_the_code_while_the_cli_gives_it_exactly():
    direct = cli("status", STACK="Not_A_Name")
    assert direct.returncode == 2
    through = make("status", STACK="Not_A_Name")
    assert through.returncode == 2  # make's own code for any failure
    assert through.stdout == ""  # the command line is not echoed
    lines = through.stderr.strip().splitlines()
    assert lines[0] == direct.stderr.strip()
    # GNU make names the recipe's exit code; nothing else is added.
    assert len(lines) == 2 and re.fullmatch(r"make: \*\*\* \[Makefile:\d+: status\] Error 2", lines[1]), lines


def test_verify_s_not_observable_code_reaches_scripts_through_the_cli(aws):
    assert cli("deploy", STACK="dks", SKIP_IMAGES="1", PARAMS="ServicesRunning=true").returncode == 0
    direct = cli("verify", "--wait", "15", STACK="dks")
    assert direct.returncode == 3, direct.stdout + direct.stderr
    through = make("verify", STACK="dks", VERIFY_WAIT="15")
    assert through.returncode == 2
    assert re.search(r"make: \*\*\* \[Makefile:\d+: verify\] Error 3", through.stderr), through.stderr
    assert cli("cleanup", "--yes", STACK="dks").returncode == 0


def test_the_readme_documents_the_codes_for_scripts_and_ci():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### For scripts and CI", 1)[1].split("\n#", 1)[0]
    assert "scripts/ecs-app" in section
    codes = set(re.findall(r"^\| `(\d+)` \|", section, re.MULTILINE))
    assert codes == CODES
