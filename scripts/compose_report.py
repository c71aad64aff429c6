"""What the Compose import makes of each project in tests/compose/corpus/, as the table of docs/compose.md.

Every figure comes from the import's own findings (`command.import_file` -> Imported.data, .warnings), the
validation the build runs and the render: `make compose-report` rewrites the page, and
tests/compose/test_compose_report.py fails when the committed page differs from a fresh run.

    python scripts/compose_report.py [--write docs/compose.md]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from templates_src import render  # noqa: E402
from templates_src.compose import command, context, explain, reading  # noqa: E402
from templates_src.app import checks, config, quotas  # noqa: E402

CORPUS = ROOT / "tests" / "compose" / "corpus"

# What a warning asks of the user, matched on its Compose key and message, first match wins. Each is a step
# before the app runs as it ran under Compose, except the ones marked None: those say what ECS does instead
# (defaults it runs with, options it has no use for) and ask nothing.
WARNING_KINDS: list[tuple[str, str, Optional[str]]] = [
    # (key pattern, message pattern, the step, with {n} for how many)
    (r"^build$", r"", "build and push {n} image(s)"),
    (r"", r"looks secret|the Compose value .*is not copied", "set {n} secret value(s) in Secrets Manager after "
                                                             "deploy, where they must be exact"),
    (r"", r"its URL held a password|it now gets it in the environment variable",
     "make the app read {n} secret(s) from the variable its warning names"),
    (r"^profiles$", r"", "{n} service(s) under a profile not imported (--profile)"),
    (r"", r"a one-off job", "run {n} one-off job(s) as a task"),
    # Listed without a value and set nowhere: left out as `docker compose up` leaves them, nothing asked.
    (r"^environment$", r"as `docker compose up` leaves them out", None),
    (r"", r"no value in Compose|is not set|env_file|outside the Compose project's folder.*variables",
     "give {n} variable(s) or env_file(s) a value"),
    (r"^volumes", r"written into the container by a wrapper|only up to \d+ text files",
     "put {n} mounted config file(s) in the image, or set its entrypoint"),
    (r"", r"named volume .*not carried over|anonymous volume|host path|does not exist here|external volume"
          r"|Docker socket|outside the Compose project's folder",
     "{n} volume(s) or bind mount(s) not carried: add `data` or put it in the image"),
    (r"", r"is a placeholder", "set `port` of {n} service(s)"),
    (r"^ports", r"not carried over|not made public: a Network|is not made public|not made public: an ECS",
     "{n} port(s) not carried"),
    (r"", r"points at this machine|by public URL", "point {n} URL(s) at a name that answers on AWS"),
    # What ECS does instead: no step.
    (r"", r"no CPU limit|no memory limit", None),
    (r"", r"published on .* only \(this machine\)|a data store's port", None),
    (r"", r"ECS names the tasks|awslogs|extension field ignored|container labels|aliases", None),
    (r"^healthcheck", r"", None),
    (r"^(restart|stdin_open|tty|ulimits|stop_signal|stop_grace_period|mem_reservation|network_mode)$", r"", None),
]


@dataclass
class Row:
    folder: str
    project: str
    repo: str
    compose_services: int
    imported: Optional[int] = None
    carried: str = ""
    steps: str = ""
    verdict: str = ""


def kind(finding: context.Finding) -> Optional[str]:
    """The step a warning asks for; 'other' when no pattern knows it (a step until shown otherwise)."""
    for key, message, step in WARNING_KINDS:
        if re.search(key, finding.key) and re.search(message, finding.message):
            return step
    return "{n} other warning(s): see the app.yaml header"


def _reason(text: str) -> str:
    """A refusal's first sentence, without this checkout's path, fit for a table cell."""
    first = text.strip().splitlines()[0].replace(str(CORPUS) + "/", "")
    first = re.sub(r"\s*\(set it in \.env or pass --env-file\)$", "", first)
    return first.replace("|", "\\|")


def carried(data: dict) -> str:
    services = data["services"]
    parts = []
    public = sorted({svc["public"].get("port", 80) for svc in services if svc.get("public")})
    if public:
        parts.append(f"{sum(1 for svc in services if svc.get('public'))} on the ALB (port "
                     f"{', '.join(map(str, public))})")
    nlb = [f"{p['port']}/{p.get('protocol', 'tcp').lower()}" for svc in services for p in svc.get("published") or []]
    if nlb:
        parts.append(f"NLB ports {', '.join(sorted(set(nlb), key=lambda p: (int(p.split('/')[0]), p)))}")
    data_on_efs = [svc["name"] for svc in services if svc.get("data")]
    if data_on_efs:
        parts.append(f"data on EFS: {', '.join(data_on_efs)}")
    if data.get("secrets"):
        parts.append(f"{len(data['secrets'])} generated secret(s)")
    secret_files = sum(len(svc.get("secret_files") or {}) for svc in services)
    if secret_files:
        parts.append(f"{secret_files} secret file(s)")
    files = sum(len(svc.get("files") or {}) for svc in services)
    if files:
        parts.append(f"{files} file(s)")
    return "; ".join(parts) or "the services alone"


def row(entry: dict) -> Row:
    path = CORPUS / entry["folder"] / entry["compose"]
    document = reading.load(path)
    result = Row(entry["folder"], entry["project"], entry["repo"], len(document.get("services") or {}))
    try:
        # Written nowhere: the out path only places `files` relative to it.
        imported = command.import_file(path, path.parent / "app.yaml")
    except reading.ComposeError as err:
        result.verdict = f"refused: {_reason(str(err))}"
        return result
    try:
        imported.data, _ = command.size_cluster(imported.data, path.parent, imported.file_contents)
        app = config.parse(imported.data, base_dir=path.parent, file_contents=imported.file_contents)
        checks.validate(app)
    except config.ConfigError as err:
        first = explain.describe_problems(err, imported.data)[0]
        result.verdict = f"refused: {_reason(context.mask(first, imported.secret_values))}"
        return result
    result.imported = len(imported.data["services"])
    result.carried = carried(imported.data)
    steps = Counter(step for step in map(kind, imported.warnings) if step)
    order = [step for _, _, step in WARNING_KINDS]
    result.steps = "; ".join(step.format(n=steps[step]) for step in sorted(
        steps, key=lambda s: order.index(s) if s in order else len(order))) or "nothing"
    try:
        render.stacks(app)
    except quotas.QuotaError as err:
        result.verdict = f"refused by the build: {_reason(str(err))}"
        return result
    result.verdict = "runs after the listed steps" if steps else "runs as is"
    return result


def rows() -> list[Row]:
    sources = json.loads((CORPUS / "sources.json").read_text())
    return [row(entry) for entry in sorted(sources, key=lambda e: e["folder"])]


def page(found: list[Row]) -> str:
    verdicts = Counter(r.verdict.split(":")[0] for r in found)
    lines = [
        f"# The Compose import on {len(found)} real projects",
        "",
        "Generated by `make compose-report` (`scripts/compose_report.py`) from what "
        "`python -m templates_src import-compose` makes of each Compose file in",
        "[`tests/compose/corpus/`](../tests/compose/corpus/README.md) (the official Compose file of each project, "
        "at the commit named there); `tests/compose/test_compose_report.py` fails when this page differs from a "
        "fresh run. Edit the script, not the page.",
        "",
        f"Of {len(found)} projects, {verdicts['runs as is']} run as is, {verdicts['runs after the listed steps']} "
        f"run after the listed steps, {verdicts['refused']} are refused by the import and "
        f"{verdicts['refused by the build']} by the build.",
        "",
        "- **services**: in the Compose file → in the imported config (profiles, one-off jobs stay behind);",
        "- **carried over**: services on the Application Load Balancer, Network Load Balancer ports (not HTTP), "
        "directories kept on EFS, secrets generated at deploy time, secrets written as files, files written "
        "into containers at start;",
        "- **still to do**: the import's warnings, counted by the step each asks for; warnings that only say "
        "what ECS does instead (default cpu and memory, health check timings brought within ECS's bounds, "
        "`container_name`, labels, logging drivers, ports published on 127.0.0.1 only, `restart`) ask nothing "
        "and are not counted. The app.yaml header lists every finding.",
        "",
        "| app | services | carried over | still to do | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in found:
        services = f"{r.compose_services} → {'–' if r.imported is None else r.imported}"
        lines.append(f"| [{r.project}](https://github.com/{r.repo}) (`{r.folder}`) | {services} | "
                     f"{r.carried or '–'} | {r.steps or '–'} | {r.verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the page there instead of printing it")
    args = parser.parse_args(argv)
    text = page(rows())
    if args.write:
        args.write.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
