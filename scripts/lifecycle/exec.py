"""make exec: a shell (or one command) in a running task of a service, through ECS Exec.

The service is found among the ECS services the root stack and its nested stacks hold (never by a name
match elsewhere in the account), the cluster from the root's ClusterName output. ECS's ExecuteCommand
starts a Session Manager session and `session-manager-plugin` connects the terminal to it, called with the
arguments the AWS CLI v2 gives it for `aws ecs execute-command`
(https://github.com/aws/aws-cli/blob/v2/awscli/customizations/ecs/executecommand.py): the session from
ExecuteCommand's answer as JSON, the region, "StartSession", the profile ('' when none), the parameters
{"Target": "ecs:<cluster>_<task id>_<container runtime id>"} as JSON, and the ECS endpoint URL; the
runtime id from DescribeTasks after ExecuteCommand, as the CLI reads it.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess

from botocore.exceptions import ClientError

from lifecycle import stacks
from lifecycle.aws import InputError, LifecycleError, Target

PLUGIN = "session-manager-plugin"
INSTALL = ("https://docs.aws.amazon.com/systems-manager/latest/userguide/"
           "session-manager-working-with-install-plugin.html")
DEFAULT_COMMAND = "/bin/sh"


def run(target: Target, service: str | None, command: str) -> int:
    """Open the session; the plugin's exit code."""
    if not service:
        raise InputError("make exec needs SERVICE= (the service to open a shell in): "
                         f"make exec STACK={target.stack} SERVICE=<name> [CMD={DEFAULT_COMMAND}]")
    # Before ExecuteCommand: a session ECS opened for a plugin that is not there would wait for nobody until
    # Session Manager times it out. The AWS CLI runs the plugin once for the same check; finding it on PATH
    # says the same without running it.
    if shutil.which(PLUGIN) is None:
        raise InputError(f"{PLUGIN} is not on PATH: ECS Exec hands its session to the Session Manager plugin, "
                         f"which is installed apart from boto3 and the AWS CLI: install it ({INSTALL}) and run "
                         f"make exec again")
    cluster, arn = _service(target, service)
    ecs = target.client("ecs")
    described = ecs.describe_services(cluster=cluster, services=[arn])["services"][0]
    if not described.get("enableExecuteCommand"):
        raise InputError(f"{service} runs without ECS Exec: set exec: true (with read_only: false) on it in the app "
                         f"config (services[].exec), make deploy, then make exec again")
    task = _task(target, cluster, service)
    container = next((c["name"] for c in task["containers"] if c["name"] == service), task["containers"][0]["name"])
    print(f"exec: {service}: task {task['taskArn'].rsplit('/', 1)[-1]}, container {container}: {command}", flush=True)
    answer = ecs.execute_command(cluster=cluster, task=task["taskArn"], container=container, interactive=True,
                                 command=command)
    runtime = next((c.get("runtimeId") for c in ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])[
        "tasks"][0]["containers"] if c["name"] == answer["containerName"]), None)
    argv = [PLUGIN, json.dumps(answer["session"]), ecs.meta.region_name, "StartSession",
            # botocore's profile: AWS_PROFILE or the session's; the CLI passes '' when there is none.
            target.session._session.profile or "",
            json.dumps({"Target": f"ecs:{answer['clusterArn'].split('/')[-1]}_{answer['taskArn'].split('/')[-1]}_"
                                  f"{runtime}"}),
            ecs.meta.endpoint_url]
    try:
        # The plugin owns the terminal: Ctrl-C, Ctrl-\ and Ctrl-Z go to the shell in the container, not to us
        # (the CLI's ignore_user_entered_signals).
        with _signals_to_the_session():
            return subprocess.call(argv)
    except OSError as error:  # gone between the check and now: end the session rather than leave it open
        with contextlib.suppress(ClientError):
            target.client("ssm").terminate_session(SessionId=answer["session"]["sessionId"])
        raise LifecycleError(f"{PLUGIN} did not start ({error}); the session was ended") from error


def _service(target: Target, name: str) -> tuple[str, str]:
    """The cluster and the ARN of the deployment's ECS service `name`: one of the stacks' own resources."""
    root = stacks.describe(target, target.stack)
    if root is None:
        raise InputError(f"{target.stack} is not deployed in {target.region}: make deploy STACK={target.stack} first")
    cluster = stacks.outputs(root).get("ClusterName")
    owned = {arn.rsplit("/", 1)[-1]: arn for arn in (
        r.get("PhysicalResourceId", "") for r in stacks.resources(target, root["StackId"])
        if r["ResourceType"] == "AWS::ECS::Service") if arn}
    if not cluster or name not in owned:
        known = ", ".join(sorted(owned)) or "none"
        raise InputError(f"{target.stack} has no service {name!r} (its services: {known}): give one of them as "
                         f"SERVICE=")
    return cluster, owned[name]


def _task(target: Target, cluster: str, service: str) -> dict:
    """The newest RUNNING task of the service that was started with exec on."""
    ecs = target.client("ecs")
    arns = [arn for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, serviceName=service,
                                                                      desiredStatus="RUNNING")
            for arn in page["taskArns"]]
    tasks = [t for start in range(0, len(arns), 100)
             for t in ecs.describe_tasks(cluster=cluster, tasks=arns[start:start + 100])["tasks"]
             if t.get("lastStatus") == "RUNNING"]
    ready = sorted((t for t in tasks if t.get("enableExecuteCommand")), key=lambda t: str(t.get("startedAt", "")))
    if ready:
        return ready[-1]
    if tasks:
        # https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec.html: turning exec on for a service
        # reaches the tasks it starts afterwards (a new deployment, or a replaced task).
        raise InputError(f"{service}'s running tasks started before exec was turned on, and ECS gives it only to tasks "
                         f"it starts afterwards: stop one (aws ecs stop-task --cluster {cluster} --task "
                         f"{tasks[0]['taskArn'].rsplit('/', 1)[-1]}) and ECS starts its replacement with exec")
    raise InputError(f"{service} has no running task: make status STACK={target.stack} says why")


@contextlib.contextmanager
def _signals_to_the_session():
    ignored = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP)
    before = [signal.signal(sig, signal.SIG_IGN) for sig in ignored]
    try:
        yield
    finally:
        for sig, handler in zip(ignored, before):
            signal.signal(sig, handler)
