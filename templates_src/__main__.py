"""python -m templates_src build [--config FILE] [--out DIR]"""
from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m templates_src",
                                     description="Render the nested CloudFormation templates of an app.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="validate the app config and render its templates")
    build.add_argument("--config", type=Path, help="app config (YAML); default: the DKS app")
    build.add_argument("--out", type=Path, default=ROOT / "build", help="output folder (default: build/)")
    build.add_argument("--local-urls", action="store_true",
                       help="point nested TemplateURLs at ./<child>.yaml (for cfn-lint's nested-stack checks)")
    args = parser.parse_args(argv)

    from templates_src import config

    path = args.config or config.DEFAULT_CONFIG
    try:
        app = config.load(path)
    except config.ConfigError as err:
        print(f"error: {path} is not a deployable app config:", file=sys.stderr)
        for where, reason in err.problems:
            print(f"  {where}: {reason}" if where else f"  {reason}", file=sys.stderr)
        return 2

    from templates_src import render

    try:
        shown = path.resolve().relative_to(ROOT)
    except ValueError:
        shown = path.name
    from templates_src.quotas import QuotaError

    try:
        files = render.render(app, str(shown), local_urls=args.local_urls)
    except QuotaError as err:
        print(f"error: {path} renders templates CloudFormation would refuse:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    render.write(files, args.out)
    print(f"rendered {len(files)} templates to {args.out}: {', '.join(files)}")
    return 0


if __name__ == "__main__":
    # One build, then the process ends: the cyclic garbage collector finds next to nothing here
    # (reference counting frees what a build drops), yet its passes over the objects the imports
    # create, and the full collection at interpreter exit, cost about 15 ms of a 100 ms build.
    # Off for the run; frozen objects are left out of the collection at exit.
    gc.disable()
    status = main()
    gc.freeze()
    sys.exit(status)
