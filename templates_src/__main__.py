"""python -m templates_src build [--config FILE] [--out DIR] | plan [--config FILE] [--region R] ... |
import-compose COMPOSE -o APP.yaml"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m templates_src",
                                     description="Render the nested CloudFormation templates of an app.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="validate the app config and render its templates")
    build.add_argument("--config", type=Path, help="app config (YAML); default: the DKS app")
    build.add_argument("--out", type=Path, default=ROOT / "build", help="output folder (default: build/)")
    build.add_argument("--local-urls", action="store_true",
                       help="point nested TemplateURLs at ./<child>.yaml (for cfn-lint's nested-stack checks)")
    commands.add_parser("plan", help="hosts, placement and monthly cost (plan --help for its options)")
    imports = commands.add_parser("import-compose", help="turn a Compose file into an app config, listing what "
                                                         "could not be carried over")
    imports.add_argument("compose", type=Path, help="the Compose file (docker-compose.yaml, compose.yaml)")
    imports.add_argument("-o", "--out", type=Path, required=True, help="the app config to write")
    imports.add_argument("--force", action="store_true", help="overwrite --out when it exists")
    imports.add_argument("--env-file", type=Path, help="variables for ${VAR} (default: .env beside the Compose file)")
    imports.add_argument("--name", help="app name (default: the Compose name, else the Compose file's folder)")
    imports.add_argument("--instance-type", help="EC2 instance type of the hosts (default: t3.medium)")
    imports.add_argument("--profile", action="append", metavar="NAME",
                         help="also import the services of this Compose profile (repeatable; '*' for all; default: "
                              "COMPOSE_PROFILES from .env)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plan"]:  # its own options and imports: the build path loads none of them
        from templates_src import plan

        return plan.main(argv[1:])
    args = argument_parser().parse_args(argv)
    if args.command == "import-compose":
        from templates_src.compose import command

        return command.run(args)

    from templates_src.app import config, loading

    path = args.config or config.DEFAULT_CONFIG
    app = loading.load_or_report(path)
    if app is None:
        return 2

    from templates_src import render

    try:
        shown = path.resolve().relative_to(ROOT)
    except ValueError:
        shown = path.name
    from templates_src.app.quotas import QuotaError

    try:
        files = render.render(app, str(shown), local_urls=args.local_urls)
    except QuotaError as err:
        print(f"error: {path} renders templates CloudFormation would refuse:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    try:
        render.write(files, args.out)
    except OSError as err:
        print(f"error: cannot write the templates to {args.out}: {render.failure(err, args.out)}", file=sys.stderr)
        return 2
    print(f"rendered {len(files)} templates to {args.out}: {', '.join(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
