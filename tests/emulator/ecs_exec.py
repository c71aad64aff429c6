"""ECS Exec as the emulator answers it: a service's switch, its tasks' flag, and ExecuteCommand.

Stock moto 5.2.5 has no ExecuteCommand, drops a service's enableExecuteCommand (from CloudFormation and the
API alike) and gives a task's containers no runtimeId. Here:

- a service carries `enableExecuteCommand` from its template (EnableExecuteCommand), CreateService or
  UpdateService; a task takes the service's value when the scheduler starts it and keeps it, as in ECS, where
  turning exec on reaches only tasks started afterwards
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec.html);
- a placed task's containers get a runtimeId (Docker's 64 hex digits) and, with exec on, the
  `ExecuteCommandAgent` managed agent RUNNING, which DescribeTasks shows;
- ExecuteCommand refuses a task started without exec, or not running, with ECS's
  InvalidParameterException "The execute command failed because execute command was not enabled when the task
  was run or the execute command agent isn't running. ..." (quoted in
  https://github.com/keidarcy/e1s/issues/206), an unknown task with the words the AWS CLI uses for it, and an
  unknown cluster with ClusterNotFoundException; otherwise it answers as ECS does
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ExecuteCommand.html): the cluster, task and
  container, `interactive`, and a Session Manager session {sessionId, streamUrl, tokenValue}, which
  session-manager-plugin would open. Each call is kept (`sessions(backend)`) so a test can say none was made.

What this does not do: open a session. No agent runs, the stream URL leads nowhere, and whether the task's
network path reaches ssmmessages stays for real AWS to show.
"""
from __future__ import annotations

import contextvars
import datetime
import secrets
import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs import models as ecs
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.responses import EC2ContainerServiceResponse

from . import scheduler, updates
from .fixes import replace, replace_classmethod

NOT_ENABLED = ("The execute command failed because execute command was not enabled when the task was run or the "
               "execute command agent isn’t running. Wait and try again or run a new task with execute command "
               "enabled and try again.")
# The AWS CLI's own sentence for a task DescribeTasks does not find (awscli/customizations/ecs/executecommand.py).
TASK_NOT_FOUND = "The task provided in the request was not found."
AGENT = "ExecuteCommandAgent"

# The value a service being created or updated is given, from its template or the request; None: not said.
_FLAG: contextvars.ContextVar[bool | None] = contextvars.ContextVar("enable_execute_command", default=None)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def sessions(backend: ecs.EC2ContainerServiceBackend) -> list[dict]:
    """Every ExecuteCommand this backend answered (a reset forgets them with the backend)."""
    return backend.__dict__.setdefault("emulated_exec_sessions", [])


# --- the service's switch ------------------------------------------------------------------------------

@replace_classmethod(ecs.Service, "create_from_cloudformation_json")
def _service_from_template(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    token = _FLAG.set(_flag(cloudformation_json["Properties"].get("EnableExecuteCommand", False)))
    try:
        return original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    finally:
        _FLAG.reset(token)


@replace(EC2ContainerServiceResponse, "create_service")
def _create_service_request(original, self):
    token = _FLAG.set(_flag(self._get_param("enableExecuteCommand", False)))
    try:
        return original(self)
    finally:
        _FLAG.reset(token)


@replace(ecs.Service, "__init__")
def _service_made(original, self, *args, **kwargs):
    # Inside CreateService, before the scheduler starts the service's tasks (scheduler.py schedules as
    # CreateService and the template's create return, both of which the wrappers above enclose).
    original(self, *args, **kwargs)
    self.enable_execute_command = bool(_FLAG.get())


@replace(ecs.EC2ContainerServiceBackend, "update_service")
def _update_service(original, self, service_properties):
    given = service_properties.get("enable_execute_command", _FLAG.get())
    if given is not None:
        cluster = str(service_properties.get("cluster") or "default").rsplit("/", 1)[-1]
        self._get_service(cluster, service_properties["service"].split("/")[-1]).enable_execute_command = _flag(given)
    return original(self, service_properties)


_service_update = updates.MODIFIERS["AWS::ECS::Service"]


def _service_from_template_update(original: Any, properties: dict, account_id: str, region_name: str) -> Any:
    token = _FLAG.set(_flag(properties.get("EnableExecuteCommand", False)))
    try:
        return _service_update(original, properties, account_id, region_name)
    finally:
        _FLAG.reset(token)


updates.MODIFIERS["AWS::ECS::Service"] = _service_from_template_update


# --- the tasks: the flag they start with, their containers' runtime ids -------------------------------

_new_task = scheduler._new_task
_place = scheduler._place


def _new_task_with_exec(backend, service, definition, deployment):
    task = _new_task(backend, service, definition, deployment)
    task.enable_execute_command = bool(getattr(service, "enable_execute_command", False))
    return task


def _place_with_runtime(backend, service, task):
    why = _place(backend, service, task)
    if why is None:
        for container in task.containers:
            container.runtime_id = secrets.token_hex(32)  # Docker's container id
            container.managed_agents = [{"name": AGENT, "lastStatus": "RUNNING", "lastStartedAt": task.started_at}] \
                if task.enable_execute_command else []
    return why


scheduler._new_task = _new_task_with_exec
scheduler._place = _place_with_runtime


# --- ExecuteCommand ------------------------------------------------------------------------------------

def execute_command(backend: ecs.EC2ContainerServiceBackend, cluster_str: str, task_str: str,
                    container_name: str | None, command: str, interactive: bool) -> dict:
    cluster = backend._get_cluster(cluster_str)  # ClusterNotFoundException, in ECS's words
    task_id = task_str.rsplit("/", 1)[-1]
    task = next((t for t in backend.tasks.get(cluster.name, {}).values()
                 if t.task_arn == task_str or t.id == task_id), None)
    if task is None:
        raise InvalidParameterException(TASK_NOT_FOUND)
    if not getattr(task, "enable_execute_command", False) or task.last_status != "RUNNING":
        raise InvalidParameterException(NOT_ENABLED)
    container = next((c for c in task.containers if container_name in (None, c.name)), None)
    if container is None:
        raise InvalidParameterException(f"The container {container_name} does not exist in the task.")
    session_id = f"ecs-execute-command-{uuid.uuid4().hex[:17]}"
    answer = {
        "clusterArn": cluster.arn, "taskArn": task.task_arn, "containerArn": container.container_arn,
        "containerName": container.name, "interactive": interactive,
        "session": {"sessionId": session_id,
                    "streamUrl": f"wss://ssmmessages.{backend.region_name}.amazonaws.com/v1/data-channel/"
                                 f"{session_id}?role=publish_subscribe",
                    "tokenValue": secrets.token_urlsafe(48)},
    }
    sessions(backend).append({**answer, "command": command,
                              "at": datetime.datetime.now(datetime.timezone.utc).isoformat()})
    return answer


def _execute_command_request(self) -> ActionResult:
    return ActionResult(execute_command(self.ecs_backend, self._get_param("cluster", "default"),
                                        self._get_param("task"), self._get_param("container"),
                                        self._get_param("command"), bool(self._get_param("interactive", False))))


EC2ContainerServiceResponse.execute_command = _execute_command_request
