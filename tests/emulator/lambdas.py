"""Lambda functions run for real: a python3.x function's code in a subprocess of the emulator.

Stock moto runs a function in a Docker container, which this machine does not have. Here a function
whose runtime is python3.x and whose code is a zip (inline `Code.ZipFile` from a template, which moto
zips as index.py beside cfnresponse.py as Lambda does, or a zip given to CreateFunction) runs in
`sys.executable` (this interpreter, not the runtime's exact minor version), its code unpacked in a
temporary directory, through lambda_runtime.py, in an execution environment kept warm between
invocations as Lambda keeps one (the module is imported once; one invocation at a time each; a new
environment when all are busy, when the function's code or configuration changed, after a failed init,
a crash or a timeout, which reset Lambda's environment too, and after a reset; a handler's error does
not):

- the environment is the function's `Environment.Variables`, then Lambda's reserved variables, then
  the emulator's (loopback endpoint, dummy credentials, region), so boto3 inside the function reaches
  the emulator and nothing else;
- the handler gets Lambda's context object and the function's `Timeout` (counted from the end of
  the init phase, which has Lambda's 10 s);
- the result is the handler's return value as JSON; an exception, a timeout, a module that does not
  import or a process that exits are reported as Lambda reports them (`FunctionError: Unhandled`,
  a payload with errorMessage / errorType);
- what the function prints goes to its log group `/aws/lambda/<name>` when that group exists (Lambda
  would create it; the emulator does not, so nothing is left behind that a stack did not make), in
  one log stream per execution environment, as Lambda writes it.

https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html

Every way moto invokes a function goes through `LambdaFunction.invoke`: the Invoke API, custom
resources, EventBridge, SNS, S3 notifications. Other runtimes keep moto's behaviour.
"""
from __future__ import annotations

import atexit
import base64
import datetime
import hashlib
import io
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.awslambda import models as awslambda
from moto.logs import models as logs
from moto.moto_api._internal.models import MotoAPIBackend

from .fixes import replace, replace_classmethod

RUNTIME = Path(__file__).with_name("lambda_runtime.py")
INIT_TIMEOUT = 10.0  # seconds Lambda gives the init phase
LOG_TAIL = 4096  # bytes of log Invoke returns with LogType=Tail
ENDPOINT = ""  # the emulator's URL, set when it starts; functions run here only when it is known


@dataclass
class Invocation:
    request_id: str
    payload: bytes  # what Invoke answers: the return value, or the error, as JSON
    error: bool  # True when Lambda would set X-Amz-Function-Error: Unhandled
    log: str  # what the function printed


def runs_here(function: awslambda.LambdaFunction) -> bool:
    return bool(ENDPOINT) and str(function.run_time or "").startswith("python3") \
        and function.package_type == "Zip" and bool(getattr(function, "code_bytes", b""))


def invoke(function: awslambda.LambdaFunction, event: Any) -> Invocation:
    """Run the function once on event, synchronously, as Lambda would."""
    request_id = str(uuid.uuid4())
    timeout = float(function.timeout or 3)
    environment = _take(function)
    spec = {
        "function_name": function.function_name,
        "function_version": "$LATEST",
        "invoked_function_arn": function.function_arn,
        "memory_limit_in_mb": str(function.memory_size),
        "aws_request_id": request_id,
        "log_group_name": function.logs_group_name,
        "log_stream_name": environment.stream,
        "timeout": timeout,
    }
    clock = time.monotonic()
    state, outcome, log = environment.run({"context": spec, "event": event}, request_id, timeout)
    duration = (time.monotonic() - clock) * 1000
    payload, failed = _payload(state, outcome, request_id, timeout, environment.process.returncode)
    if state == "done" and outcome[:1] in (b"R", b"E"):  # the runtime answered and goes on
        _give_back(environment)
    else:  # it exited (a failed init, a crash) or was killed at its timeout
        environment.close()
    _write_log(function, environment.stream, request_id, log, duration)
    return Invocation(request_id, payload, failed, log)


class _Environment:
    """One runtime process with the function's code unpacked, serving one invocation at a time."""

    def __init__(self, function: awslambda.LambdaFunction, key: tuple):
        self.key, self.generation, self.cold = key, _GENERATION, True
        self.root = tempfile.mkdtemp(prefix="lambda-")
        task = Path(self.root, "task")
        zipfile.ZipFile(io.BytesIO(function.code_bytes)).extractall(task)
        self.stream = f"{datetime.datetime.now(datetime.timezone.utc):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        variables, handler = _environment(function, task, self.stream), function.handler or ""
        forked = _ZYGOTE.start(task, handler, variables)
        if forked:
            self.process, outcome_read = forked
        else:
            outcome_read, outcome_write = os.pipe()
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-u", str(RUNTIME), str(task), handler, str(outcome_write)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=task, env=variables,
                pass_fds=(outcome_write,))
            os.close(outcome_write)
        self.outcome, self.output = outcome_read, self.process.stdout.fileno()

    def run(self, request: dict, request_id: str, timeout: float) -> tuple[str, bytes, str]:
        """("done" | "timeout" | "init timeout", the runtime's answer line, the invocation's log)."""
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the runtime died before reading: reported below as an exit
        state, answer, log = self._collect(timeout, MARK + request_id.encode() + MARK)
        self.cold = False
        return state, answer, log.decode(errors="replace")

    def _collect(self, timeout: float, mark: bytes) -> tuple[str, bytes, bytes]:
        buffer, log, started = b"", b"", False
        deadline = time.monotonic() + INIT_TIMEOUT
        watched = [self.outcome, self.output]
        while not (started and b"\n" in buffer):
            left = deadline - time.monotonic()
            if left <= 0:
                self.process.kill()
                self.process.wait()
                return ("timeout" if started else "init timeout"), b"", log + self._drain()
            ready = select.select(watched, [], [], left)[0]
            if self.output in ready:
                chunk = os.read(self.output, 65536)
                log += chunk
                if not chunk:  # its output closed: only the answer is left to wait for
                    watched.remove(self.output)
            if self.outcome in ready:
                chunk = os.read(self.outcome, 65536)
                if not chunk:  # the runtime exited
                    self.process.wait()
                    return "done", buffer if started else b"", log + self._drain()
                buffer += chunk
                if not started and b"\n" in buffer:
                    buffer = buffer.split(b"\n", 1)[1]
                    started, deadline = True, time.monotonic() + timeout
        while mark not in log:  # the log's end, printed just before the answer
            if not select.select([self.output], [], [], 5)[0]:
                break
            chunk = os.read(self.output, 65536)
            if not chunk:
                break
            log += chunk
        return "done", buffer.split(b"\n", 1)[0], log.split(mark, 1)[0]

    def _drain(self) -> bytes:
        """What the runtime printed before it ended (waiting a moment at most)."""
        log = b""
        while select.select([self.output], [], [], 1)[0]:
            chunk = os.read(self.output, 65536)
            if not chunk:
                break
            log += chunk
        return log

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            os.close(self.outcome)
        except OSError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class _Zygote:
    """lambda_runtime.py --zygote, started once: each environment is forked from it, with boto3 imported already
    (an environment of this project's hosts function: 0.30 -> 0.20 CPU-s), instead of started as a new interpreter.

    A function whose code carries a top-level module the zygote holds (its own boto3, say) gets a new
    interpreter, which imports the function's copy as Lambda does; so does every function if the zygote cannot
    start or has ended. What the environments see is what a new process sees: lambda_runtime.py's main() with
    the function's directory, variables and descriptors."""

    def __init__(self):
        self.lock, self.changed = threading.Lock(), threading.Condition()
        self.process = self.channel = None
        self.preloaded: set[str] = set()
        self.replies: list[dict] = []
        self.ended: dict[int, int] = {}
        self.alive = False

    def start(self, task: Path, handler: str, variables: dict[str, str]) -> tuple[_Forked, int] | None:
        """The environment's process and the read end of its outcome pipe, or None: start one yourself."""
        with self.lock:
            if self.process is None:
                self._begin()
            if not self.alive or any(entry.name.removesuffix(".py") in self.preloaded for entry in task.iterdir()):
                return None
            stdin, output, outcome = os.pipe(), os.pipe(), os.pipe()
            ours, theirs = (stdin[1], output[0], outcome[0]), (stdin[0], output[1], outcome[1])
            try:
                socket.send_fds(self.channel, [json.dumps({"task": str(task), "handler": handler,
                                                           "env": variables}).encode()], list(theirs))
                pid = (self._reply() or {}).get("started")
            except OSError:  # the zygote ended since
                pid = None
            finally:
                for fd in theirs:
                    os.close(fd)
            if pid is None:
                for fd in ours:
                    os.close(fd)
                return None
        return _Forked(self, pid, stdin[1], output[0]), outcome[0]

    def _begin(self) -> None:
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        kept = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TMPDIR") if name in os.environ}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-u", str(RUNTIME), "--zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), env=kept)
        except OSError:
            self.process = False
            return
        finally:
            theirs.close()
        self.alive = True
        threading.Thread(target=self._listen, name="lambda zygote", daemon=True).start()
        said = self._reply()
        self.preloaded = set(said["preloaded"]) if said else set()  # none said: it ended, so none is forked

    def _listen(self) -> None:
        while True:
            try:
                message = self.channel.recv(1 << 20)
            except OSError:
                message = b""
            with self.changed:
                if not message:
                    self.alive = False
                else:
                    said = json.loads(message)
                    if "exited" in said:
                        self.ended[said["exited"]] = said["code"]
                    else:
                        self.replies.append(said)
                self.changed.notify_all()
            if not message:
                return

    def _reply(self) -> dict | None:
        """The zygote's next answer, None if it ended first."""
        with self.changed:
            self.changed.wait_for(lambda: self.replies or not self.alive, timeout=INIT_TIMEOUT)
            if not self.replies:
                return None
            return self.replies.pop(0)

    def returncode(self, pid: int, wait: bool) -> int | None:
        with self.changed:
            if wait:
                self.changed.wait_for(lambda: pid in self.ended or not self.alive)
            if pid in self.ended:
                return self.ended.pop(pid)
            return None if self.alive else -9  # the zygote was killed: its children's ends go unsaid, taken as killed

    def kill(self, pid: int) -> None:
        try:
            self.channel.send(json.dumps({"kill": pid}).encode())
        except OSError:
            pass

    def stop(self) -> None:
        """End the zygote (it kills what is left); environments started afterwards are new interpreters."""
        with self.lock:
            process, self.process = self.process, False
            if not process:
                return
            # shutdown, not only close: close leaves the listener's recv waiting, and the zygote with it
            self.channel.shutdown(socket.SHUT_RDWR)
            self.channel.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class _Forked:
    """An environment's process forked by the zygote: what _Environment uses of a Popen."""

    def __init__(self, zygote: _Zygote, pid: int, stdin: int, stdout: int):
        self.zygote, self.pid, self.returncode = zygote, pid, None
        self.stdin, self.stdout = os.fdopen(stdin, "wb"), os.fdopen(stdout, "rb")

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.returncode(self.pid, wait=False)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self.zygote.returncode(self.pid, wait=True)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            self.zygote.kill(self.pid)


_ZYGOTE = _Zygote()

MARK = b"\x1e"  # lambda_runtime.MARK
MOST_IDLE = 8  # environments kept warm at once, the oldest closed first
_IDLE: list[_Environment] = []
_LOCK = threading.Lock()
_GENERATION = 0  # a reset starts a new one: nothing warm outlives the functions it served


def _key(function: awslambda.LambdaFunction) -> tuple:
    """What an environment was made from: a change to any of it needs a new one."""
    return (function.function_arn, hashlib.sha256(function.code_bytes).hexdigest(), function.handler,
            function.run_time, json.dumps(function.environment_vars or {}, sort_keys=True),
            function.memory_size, function.logs_group_name)


def _take(function: awslambda.LambdaFunction) -> _Environment:
    key = _key(function)
    with _LOCK:
        for environment in reversed(_IDLE):
            if environment.key == key:
                _IDLE.remove(environment)
                if environment.process.poll() is None:
                    return environment
                environment.close()
                break
    return _Environment(function, key)


def _give_back(environment: _Environment) -> None:
    with _LOCK:
        if environment.generation == _GENERATION:
            _IDLE.append(environment)
            environment = _IDLE.pop(0) if len(_IDLE) > MOST_IDLE else None
    if environment is not None:
        environment.close()


def forget() -> None:
    """Close every warm environment (a reset, the emulator stopping)."""
    global _GENERATION
    with _LOCK:
        _GENERATION += 1
        closing = list(_IDLE)
        _IDLE.clear()
    for environment in closing:
        environment.close()


def end() -> None:
    """End every environment, then the zygote (the emulator stopping, or this process ending)."""
    forget()
    _ZYGOTE.stop()


atexit.register(end)


@replace(MotoAPIBackend, "reset")
def _reset(original, self):
    forget()
    return original(self)


def _environment(function: awslambda.LambdaFunction, task: Path, stream: str) -> dict[str, str]:
    from . import environment

    # https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
    reserved = {
        "_HANDLER": function.handler or "",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.run_time}",
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": function.logs_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "LAMBDA_TASK_ROOT": str(task),
        "TZ": ":UTC",
    }
    kept = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    variables = {str(k): str(v) for k, v in (function.environment_vars or {}).items()}
    emulator = environment(ENDPOINT)
    emulator["AWS_REGION"] = emulator["AWS_DEFAULT_REGION"] = function.region
    # The emulator's own retry mode is a default: a function that sets its own (AWS_RETRY_MODE is not one
    # of Lambda's reserved variables) keeps it. What points it at the emulator always wins.
    retries = {"AWS_RETRY_MODE": emulator.pop("AWS_RETRY_MODE")}
    return {**kept, **retries, **variables, **reserved, **emulator}


def _payload(state: str, outcome: bytes, request_id: str, timeout: float, code: int | None) -> tuple[bytes, bool]:
    if state == "done" and outcome[:1] == b"R":
        return outcome[1:], False
    if state == "done" and outcome[:1] in (b"E", b"I"):
        return outcome[1:], True
    if state == "timeout":
        error = {"errorType": "Sandbox.Timedout",
                 "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"}
    elif state == "init timeout":
        error = {"errorType": "Sandbox.Timedout",
                 "errorMessage": f"RequestId: {request_id} Error: Init timed out after {INIT_TIMEOUT:.2f} seconds"}
    else:
        error = {"errorType": "Runtime.ExitError",
                 "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"}
    return json.dumps(error).encode(), True


def _write_log(function: awslambda.LambdaFunction, stream: str, request_id: str, log: str, duration: float) -> None:
    backend = logs.logs_backends[function.account_id][function.region]
    if function.logs_group_name not in backend.groups:
        return
    lines = [f"START RequestId: {request_id} Version: $LATEST", *log.splitlines(),
             f"END RequestId: {request_id}",
             f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tMemory Size: {function.memory_size} MB"]
    now = int(time.time() * 1000)
    if stream not in backend.groups[function.logs_group_name].streams:  # a warm environment's stream is there
        backend.create_log_stream(function.logs_group_name, stream)
    backend.put_log_events(function.logs_group_name, stream, [{"timestamp": now, "message": line} for line in lines])


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


@replace(awslambda.LambdaFunction, "invoke")
def _invoke(original, self, body, request_headers, response_headers):
    if not runs_here(self):
        return original(self, body, request_headers, response_headers)
    event = json.loads(body) if body else {}
    kind = _header(request_headers, "X-Amz-Invocation-Type") or "RequestResponse"
    if kind == "DryRun":
        return b""
    if kind == "Event":  # asynchronous: Lambda answers 202 at once and runs the function later
        threading.Thread(target=invoke, args=(self, event), daemon=True).start()
        return b""
    invocation = invoke(self, event)
    response_headers["x-amz-executed-version"] = "$LATEST"
    response_headers["x-amz-log-result"] = base64.b64encode(invocation.log.encode()[-LOG_TAIL:]).decode()
    if invocation.error:
        response_headers["x-amz-function-error"] = "Unhandled"
    return invocation.payload


def _log_to(function: awslambda.LambdaFunction, chosen: dict | None) -> None:
    """LoggingConfig: Lambda writes to the function's chosen log group (default /aws/lambda/<name>) and
    reports it (https://docs.aws.amazon.com/lambda/latest/api/API_LoggingConfig.html); moto keeps neither."""
    chosen = chosen or {}
    function.logs_group_name = chosen.get("LogGroup") or function.logs_group_name
    function.logging_config = {"LogFormat": chosen.get("LogFormat", "Text"), "LogGroup": function.logs_group_name}


@replace(awslambda.LambdaFunction, "__init__")
def _function_init(original, self, account_id, spec, region, version=1):
    original(self, account_id, spec, region, version)
    _log_to(self, spec.get("LoggingConfig"))


@replace_classmethod(awslambda.LambdaFunction, "create_from_cloudformation_json")
def _function_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    function = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    _log_to(function, cloudformation_json["Properties"].get("LoggingConfig"))  # moto's spec leaves it out
    return function


@replace(awslambda.LambdaFunction, "get_configuration")
def _function_configuration(original, self, on_create=False):
    return {**original(self, on_create), "LoggingConfig": getattr(self, "logging_config", {
        "LogFormat": "Text", "LogGroup": self.logs_group_name})}
