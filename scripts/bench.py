"""`make bench`: how fast the build renders, how big its stacks get against CloudFormation's quotas.

Times whole-process rendering (`python -m templates_src build`, interpreter start included) of the
default app and of generated apps (scripts/synthetic.py) of 1, 10, 50 and 200 services: median of
several runs, wall time and the CPU time (user + system) of the process, which other work on the
machine disturbs less, with its peak memory. Reports each stack's bytes, resources,
parameters and outputs against the quotas, and how long cfn-lint takes over the default build
and how many cores it kept busy. Prints a Markdown report; --write also saves it (with the machine
it ran on) to docs/performance.md.

Usage: python scripts/bench.py [--runs N] [--write FILE]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from templates_src.app import config, loading, quotas  # noqa: E402
import synthetic  # noqa: E402

SIZES = (1, 10, 50, 200)
# Seconds, whole process. The other half of the goal, within 3% of the equivalent `cdk synth`, is not
# measured here: the project has no CDK app (docs/performance.md).
TARGETS = {200: 1.0}


def timed(command: list[str]) -> tuple[float, float, float, int]:
    """Wall, user and system seconds and peak RSS (KiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{child.stderr.read().decode()}")
    return wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss


def render_times(config_path: Path, out: Path, runs: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds and the largest peak RSS over `runs` builds."""
    command = [sys.executable, "-m", "templates_src", "build", "--config", str(config_path), "--out", str(out)]
    timed(command)  # once untimed: files in the page cache, as for any run after the first
    samples = [timed(command) for _ in range(runs)]
    return (statistics.median(s[0] for s in samples), statistics.median(s[1] + s[2] for s in samples),
            max(s[3] for s in samples))


def stack_rows(name: str, out: Path) -> list[str]:
    rows = []
    for path in sorted(out.glob("*.yaml")):
        text = path.read_text()
        template = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        limit = quotas.INLINE_BYTES if path.name in quotas.INLINE else quotas.TEMPLATE_BYTES
        counts = [len(template.get(key, {})) for key in ("Resources", "Parameters", "Outputs")]
        rows.append(f"| {name} | {path.name} | {len(text.encode()):,} / {limit:,} | {counts[0]} / {quotas.RESOURCES} "
                    f"| {counts[1]} / {quotas.PARAMETERS} | {counts[2]} / {quotas.OUTPUTS} |")
    return rows


def lint_time() -> tuple[float, float]:
    """Wall seconds of `make lint`'s cfn-lint over build/ and the cores it kept busy on average."""
    wall, user, system, _ = timed([sys.executable, "scripts/lint.py"])
    return wall, (user + system) / wall


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def report(runs: int) -> str:
    # Python caches bytecode after a module's first import; PYTHONDONTWRITEBYTECODE (set on some
    # machines, CI among them) stops that, so compile once here: every run measures rendering, not
    # compiling the generator's sources.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "templates_src"], cwd=ROOT, check=True)
    lines = [f"Measured {datetime.date.today()} on {machine()}; median of {runs} runs each.", "",
             "| app | services | render, whole process | CPU, user + system | target | peak memory |",
             "|---|---|---|---|---|---|"]
    stacks = []
    with tempfile.TemporaryDirectory() as scratch:
        apps = {"default (DKS)": config.DEFAULT_CONFIG}
        for size in SIZES:
            path = Path(scratch) / f"synthetic-{size}.yaml"
            path.write_text(yaml.safe_dump(synthetic.app_data(size), sort_keys=False))
            apps[f"synthetic {size}"] = path
        for name, path in apps.items():
            out = Path(scratch) / name.replace(" ", "-").replace("(", "").replace(")", "")
            seconds, cpu, rss = render_times(path, out, runs)
            count = len(loading.load(path).services)
            target = TARGETS.get("default" if name.startswith("default") else count)
            verdict = f"< {target * 1000:.0f} ms: {'met' if seconds < target else 'NOT met'}" if target else ""
            lines.append(f"| {name} | {count} | {seconds * 1000:.0f} ms | {cpu * 1000:.0f} ms | {verdict} "
                         f"| {rss / 1024:.0f} MiB |")
            stacks += stack_rows(name, out)
    wall, cores = lint_time()
    lines += ["", f"cfn-lint over build/ and the local-URL variant (`make lint`): {wall:.1f} s wall, "
                  f"{cores:.1f} cores busy on average.", "",
              "Each stack against CloudFormation's quotas (bytes: 51,200 for the two templates deployed "
              "inline, 1 MB from S3):", "",
              "| app | template | bytes | resources | parameters | outputs |", "|---|---|---|---|---|---|", *stacks]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 15: the median stays put when other work shares the machine's cores.
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--write", type=Path, help="also write the report into this Markdown file")
    args = parser.parse_args()
    text = report(args.runs)
    print(text)
    if args.write:
        head, marker = args.write.read_text().split("<!-- bench -->", 1)[0], "<!-- bench -->"
        args.write.write_text(f"{head}{marker}\n{text}")


if __name__ == "__main__":
    main()
