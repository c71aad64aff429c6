"""Command line of the lifecycle: scripts/{deploy,images,verify,status,cleanup}.py call main()."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from lifecycle.aws import InputError, LifecycleError, target
from templates_src.config import DEFAULT_CONFIG, ConfigError
from templates_src.words import plural


def _arguments(command: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"make {command}")
    parser.add_argument("--stack", default=os.environ.get("STACK") or None,
                        help="root stack name, also every resource's prefix (default: the app's name)")
    parser.add_argument("--region", default=os.environ.get("REGION") or None,
                        help="AWS region (default: AWS_REGION or the profile's)")
    parser.add_argument("--config", type=Path, default=Path(os.environ.get("CONFIG") or DEFAULT_CONFIG))
    parser.add_argument("--bucket", default=os.environ.get("BUCKET") or None,
                        help="templates bucket (default: <stack>-templates-<account>-<region>, created when missing)")
    if command in ("deploy", "diff"):
        parser.add_argument("--parameter", action="append", default=(os.environ.get("PARAMS") or "").split(),
                            metavar="KEY=VALUE", help="a root parameter, e.g. InstanceType=t3.large (repeatable)")
    if command == "deploy":
        parser.add_argument("--skip-images", action="store_true", default=os.environ.get("SKIP_IMAGES") == "1")
        parser.add_argument("--image-tag", default=os.environ.get("IMAGE_TAG") or None)
    if command in ("cleanup", "deploy"):
        parser.add_argument("--yes", action="store_true", default=os.environ.get("YES") == "1",
                            help="do not ask for confirmation")
        parser.add_argument("--keep-data", action="store_true", default=os.environ.get("KEEP_DATA") == "1",
                            help="keep the services' data: the EFS file system, its KMS key and the secrets")
    if command == "verify":
        parser.add_argument("--wait", type=int, default=int(os.environ.get("VERIFY_WAIT", "600")),
                            help="seconds to wait for services to be steady")
    return parser.parse_args(argv)


def main(command: str, argv: list[str] | None = None) -> int:
    args = _arguments(command, argv)
    try:
        from templates_src import config

        stack = args.stack or config.load(args.config).name
        where = target(stack, args.region)
        return COMMANDS[command](where, args)
    except ConfigError as error:
        print(error.report(args.config), file=sys.stderr)
        return 2
    except LifecycleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, InputError) else 1
    except NoCredentialsError:
        print("error: no AWS credentials: set AWS_PROFILE or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY pair",
              file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"error: AWS refused: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted{INTERRUPTED.get(command, '')}", file=sys.stderr)
        return 130


# What Ctrl-C leaves behind, per command: CloudFormation goes on with an operation it has begun.
INTERRUPTED = {
    "deploy": ": what was started continues in CloudFormation; make deploy resumes it, make cleanup removes it",
    "cleanup": ": a delete already started continues in CloudFormation; make cleanup again finishes it",
    "diff": ": a preview change set may be left behind, unexecuted; it changes nothing",
    "images": ": images pushed so far stay in the repositories; make images again pushes the rest",
}


def _overrides(args) -> dict[str, str]:
    overrides = {}
    for item in args.parameter:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"PARAMS: {item!r} is not KEY=VALUE")
        overrides[key] = value
    return overrides


def _deploy(where, args) -> int:
    from lifecycle import deploy, live

    outputs = deploy.run(where, args.config, args.bucket, args.skip_images, args.image_tag, _overrides(args),
                         yes=args.yes)
    if outputs is None:  # not approved: nothing executed, as asked
        return 0
    live.print_table(["output", "value"], [[k, v] for k, v in sorted(outputs.items())],
                     title=f"{where.stack} in {where.region}")
    return 0


def _diff(where, args) -> int:
    from lifecycle import diff

    diff.run(where, args.config, args.bucket, _overrides(args))
    return 0


def _images(where, args) -> int:
    from lifecycle import images
    from templates_src import config

    images.push(where, config.load(args.config))
    return 0


def _verify(where, args) -> int:
    from lifecycle import verify

    return verify.report(verify.run(where, args.config, wait=args.wait))


def _status(where, args) -> int:
    from lifecycle import status

    return status.show(where)


def _cleanup(where, args) -> int:
    from lifecycle import cleanup, data

    cleanup.refuse_strangers(where, args.bucket)  # before the prompt: nothing of anyone else's is offered
    known, strangers = data.in_stack(where)  # before anything is deleted, to say what happens to it
    known = data.merge(known, data.find(where))
    fate = data.summary(known, args.keep_data)
    if not args.yes:
        if not sys.stdin.isatty():
            raise LifecycleError("cleanup deletes everything of the deployment; not on a terminal, so say YES=1")
        answer = input(f"Delete stacks {where.stack} and {where.registry} in {where.region} and their images"
                       f"{'; ' + fate if fate else ''}. Type the stack name to confirm: ")
        if answer.strip() != where.stack:
            print("cleanup: not confirmed, nothing deleted")
            return 1
    if fate:
        print(f"cleanup: {fate}")
    for line in strangers:
        print(line)
    remaining = cleanup.run(where, args.bucket, keep_data=args.keep_data, known=known)
    if remaining:
        print(f"cleanup: {plural(len(remaining), 'resource')} still {'carries' if len(remaining) == 1 else 'carry'} "
              f"the tag of {where.stack}:")
        for arn in remaining:
            print(f"  {arn}")
        return 1
    print(f"cleanup: nothing tagged {where.stack} remains in {where.region}" +
          (" but the data kept" if args.keep_data and known else ""))
    return 0


COMMANDS = {"deploy": _deploy, "diff": _diff, "images": _images, "verify": _verify, "status": _status,
            "cleanup": _cleanup}
