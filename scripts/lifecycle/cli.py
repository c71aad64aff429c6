"""The lifecycle's one command line: `scripts/ecs-app <command>` (or `python -m lifecycle` with
scripts/ on the path). Every make target of the lifecycle calls it; scripts and CI call it directly
for its exact exit code (make turns every failure into its own 2)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError,
                                 NoCredentialsError)

from lifecycle.aws import InputError, LifecycleError, target, unreachable
from templates_src.app.config import DEFAULT_CONFIG, ConfigError
from templates_src.app.words import plural

OK, FAILED, REFUSED, NOT_OBSERVABLE, INTERRUPTED_CODE = 0, 1, 2, 3, 130
EXIT_CODES = """exit codes:
  0    done (deploy, cleanup), everything checked passed (verify), shown (diff, status, logs; logs
       --follow also when Ctrl-C ends it)
  1    failed: AWS, CloudFormation or Docker did not do what was asked (the reason is printed)
  2    refused before anything was made: a bad config, parameter, region or stack name, no
       answer from the endpoint, credentials refused, no Docker engine, another deploy running
  3    verify: nothing failed, but some facts could not be observed (the emulator runs no host);
       deploy, rollback: done, but a service's rollout could not be followed to its end (the emulator)
  130  interrupted (Ctrl-C); CloudFormation goes on with what it had begun"""
ENVIRONMENT = """environment (what the make targets pass; a flag wins):
  STACK REGION CONFIG BUCKET PARAMS SKIP_IMAGES IMAGE_TAG YES KEEP_DATA VERIFY_WAIT SERVICE SINCE FOLLOW
  FILTER CMD ROLLOUT_WAIT, and boto3's own:
  AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL (the local emulator: make emulator)"""

COMMANDS_HELP = {
    "deploy": "render, upload, create or update the registry, push the images, create or update the root",
    "diff": "what deploy would change, per nested stack, replacements called out; executes nothing",
    "images": "copy the Docker Hub images into the stack's ECR, build and push the app's own",
    "verify": "hosts registered, services steady, targets healthy, Cloud Map, HTTP 200",
    "status": "the stacks, services (desired/running), targets, hosts and URLs in one table",
    "logs": "the services' CloudWatch logs interleaved by time, each line prefixed with its service",
    "cleanup": "delete the stacks, the templates bucket and the data unless --keep-data; list leftovers",
    "exec": "a shell (or a command) in a running task of a service with exec on (ECS Exec, session-manager-plugin)",
    "rollback": "put each service (or --service) back on its previous task definition, and follow the rollout",
}


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    top = argparse.ArgumentParser(
        prog="ecs-app", description="Deploy, inspect and remove one deployment of an app on Amazon ECS.",
        epilog=f"{EXIT_CODES}\n\n{ENVIRONMENT}", formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, metavar="command")
    for command, summary in COMMANDS_HELP.items():
        sub = commands.add_parser(command, help=summary, description=summary[:1].upper() + summary[1:] + ".",
                                  epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--stack", default=env("STACK") or None,
                         help="root stack name, also every resource's prefix (default: the app's name; STACK)")
        sub.add_argument("--region", default=env("REGION") or None,
                         help="AWS region (default: AWS_REGION or the profile's; REGION)")
        sub.add_argument("--config", type=Path, default=Path(env("CONFIG") or DEFAULT_CONFIG),
                         help="the app config (default: the DKS app; CONFIG)")
        if command in ("deploy", "diff", "cleanup"):
            sub.add_argument("--bucket", default=env("BUCKET") or None,
                             help="templates bucket (default: <stack>-templates-<account>-<region>, created "
                                  "when missing; BUCKET)")
        if command in ("deploy", "diff"):
            sub.add_argument("--parameter", action="append", default=(env("PARAMS") or "").split(),
                             metavar="KEY=VALUE", help="a root parameter, e.g. InstanceType=t3.large "
                                                       "(repeatable; PARAMS, space-separated)")
        if command == "deploy":
            sub.add_argument("--skip-images", action="store_true", default=env("SKIP_IMAGES") == "1",
                             help="build and push no image; with none in ECR, the services get no tasks "
                                  "(SKIP_IMAGES=1)")
            sub.add_argument("--image-tag", default=env("IMAGE_TAG") or None,
                             help="the images' tag, for images already pushed (IMAGE_TAG)")
        if command in ("deploy", "rollback"):
            sub.add_argument("--wait", type=int, default=env("ROLLOUT_WAIT") or "600",  # argparse converts it
                             help="seconds to follow the services' rollout until steady (ROLLOUT_WAIT)")
        if command == "rollback":
            sub.add_argument("--service", default=env("SERVICE") or None,
                             help="only this service (default: every service of the stack; SERVICE)")
            sub.add_argument("--yes", action="store_true", default=env("YES") == "1",
                             help="do not ask for confirmation (YES=1); asked only on a terminal")
        if command in ("cleanup", "deploy"):
            sub.add_argument("--yes", action="store_true", default=env("YES") == "1",
                             help="do not ask for confirmation (YES=1); deploy asks only on a terminal, before "
                                  "a change that replaces a resource or touches IAM or security groups")
        if command == "cleanup":
            sub.add_argument("--keep-data", action="store_true", default=env("KEEP_DATA") == "1",
                             help="keep the services' data: the EFS file system, its KMS key and the secrets "
                                  "(KEEP_DATA=1)")
        if command == "logs":
            sub.add_argument("--service", default=env("SERVICE") or None,
                             help="only this service's logs (default: every service; SERVICE)")
            sub.add_argument("--since", default=env("SINCE") or "10m",
                             help="from how long ago (30s, 10m, 2h, 1d) or from an ISO time (default 10m; SINCE)")
            sub.add_argument("--follow", action="store_true", default=env("FOLLOW") == "1",
                             help="keep printing new events, with Live Tail where available; Ctrl-C stops "
                                  "(exit 0; FOLLOW=1)")
            sub.add_argument("--filter", default=env("FILTER") or None,
                             help="a CloudWatch Logs filter pattern, e.g. ERROR or '\"connection refused\"' (FILTER)")
        if command == "exec":
            sub.add_argument("--service", default=env("SERVICE") or None,
                             help="the service to open a shell in; its config needs exec: true (SERVICE)")
            sub.add_argument("--command", dest="run", default=env("CMD") or "/bin/sh",
                             help="what to run in the container (default: /bin/sh; CMD)")
        if command == "verify":
            sub.add_argument("--wait", type=int, default=int(env("VERIFY_WAIT", "600")),
                             help="seconds to wait for the services to be steady (VERIFY_WAIT)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command
    where = None
    try:
        from lifecycle import preflight
        from templates_src.app import loading

        stack = args.stack or loading.load(args.config).name
        where = target(stack, args.region)
        preflight.region(where)
        preflight.reach(where)
        return COMMANDS[command](where, args)
    except ConfigError as error:
        print(error.report(args.config), file=sys.stderr)
        return REFUSED
    except LifecycleError as error:
        print(f"error: {error}", file=sys.stderr)
        return REFUSED if isinstance(error, InputError) else FAILED
    except NoCredentialsError:
        print("error: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
              file=sys.stderr)
        return REFUSED
    except (EndpointConnectionError, ConnectTimeoutError) as error:
        # Answered once (preflight), then not: after botocore's retries, nothing answers any more.
        endpoint = error.kwargs.get("endpoint_url") or (where.endpoint if where else "the endpoint")
        print(f"error: {unreachable(endpoint)}", file=sys.stderr)
        return FAILED
    except ClientError as error:
        print(f"error: AWS refused: {error}", file=sys.stderr)
        return FAILED
    except BotoCoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print(f"\ninterrupted{INTERRUPTED.get(command, '')}", file=sys.stderr)
        return INTERRUPTED_CODE


# What Ctrl-C leaves behind, per command: CloudFormation goes on with an operation it has begun.
INTERRUPTED = {
    "deploy": ": what was started continues in CloudFormation; make deploy resumes it, make cleanup removes it",
    "cleanup": ": a delete already started continues in CloudFormation; make cleanup again finishes it",
    "diff": ": a preview change set may be left behind, unexecuted; it changes nothing",
    "images": ": images pushed so far stay in the repositories; make images again pushes the rest",
    "rollback": ": the services already updated go on rolling back in ECS; make status shows where each is",
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
    from lifecycle import deploy, live, rollouts

    rollout = rollouts.Rollout(where, wait_seconds=args.wait)
    try:
        outputs = deploy.run(where, args.config, args.bucket, args.skip_images, args.image_tag, _overrides(args),
                             yes=args.yes, rollout=rollout)
    except LifecycleError:
        for line in rollout.failures():  # the circuit breaker's reason, which a live region no longer shows
            print(line, file=sys.stderr)
        raise
    if outputs is None:  # not approved: nothing executed, as asked
        return 0
    live.print_table(["output", "value"], [[k, v] for k, v in sorted(outputs.items())],
                     title=f"{where.stack} in {where.region}")
    return rollout.follow()


def _rollback(where, args) -> int:
    from lifecycle import rollback

    return rollback.run(where, args.service, args.yes, args.wait)


def _diff(where, args) -> int:
    from lifecycle import diff

    diff.run(where, args.config, args.bucket, _overrides(args))
    return OK


def _images(where, args) -> int:
    from lifecycle import images
    from templates_src.app import loading

    images.push(where, loading.load(args.config))
    return OK


def _verify(where, args) -> int:
    from lifecycle import verify

    return verify.report(verify.run(where, args.config, wait=args.wait))


def _status(where, args) -> int:
    from lifecycle import status

    return status.show(where)


def _logs(where, args) -> int:
    from lifecycle import logs

    return logs.run(where, args.service, args.since, args.follow, args.filter)


def _cleanup(where, args) -> int:
    from lifecycle import cleanup, data

    cleanup.refuse_strangers(where, args.bucket)  # before the prompt: nothing of anyone else's is offered
    known, strangers = data.in_stack(where)  # before anything is deleted, to say what happens to it
    known = data.merge(known, data.find(where))
    fate = data.summary(known, args.keep_data)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("cleanup deletes everything of the deployment; not on a terminal, so say YES=1")
        answer = input(f"Delete stacks {where.stack} and {where.registry} in {where.region} and their images"
                       f"{'; ' + fate if fate else ''}. Type the stack name to confirm: ")
        if answer.strip() != where.stack:
            print("cleanup: not confirmed, nothing deleted")
            return FAILED
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
        return FAILED
    print(f"cleanup: nothing tagged {where.stack} remains in {where.region}" +
          (" but the data kept" if args.keep_data and known else ""))
    return OK


def _exec(where, args) -> int:
    from lifecycle import exec as ecs_exec

    return ecs_exec.run(where, args.service, args.run)


COMMANDS = {"deploy": _deploy, "diff": _diff, "images": _images, "verify": _verify, "status": _status,
            "logs": _logs, "exec": _exec, "rollback": _rollback, "cleanup": _cleanup}
