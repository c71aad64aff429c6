"""The emulator's Python runtime for Lambda: one execution environment, running a handler the way Lambda runs it.

lambdas.py starts it as `python -I -u lambda_runtime.py TASK_ROOT HANDLER OUTCOME_FD` in the function's
code directory, with the function's environment, and sends it one invocation per line on stdin:
{"context": ..., "event": ...}. The first one also runs the init phase (the handler's module is
imported once, as Lambda keeps an environment warm between invocations). For each, it writes
"started" and a newline to OUTCOME_FD once the handler is loaded (the function's timeout counts from
here), then, on one line, "R" and the handler's return value as JSON, "E" and the handler's error as
Lambda reports it, or "I" and an init error (a module that does not import, a handler that is not
there). Whatever the function prints is its log; the end of each invocation's log is marked on stdout
by MARK, the request id and MARK. After an init error it exits, and lambdas.py starts the next
invocation in a new environment, as Lambda runs the init phase again; a handler's error leaves the
environment as it is. Standard library only: it runs beside the function's code, not the emulator's.

lambdas.py forks most environments from a zygote (`lambda_runtime.py --zygote FD`, below) that has imported
boto3 already, as a cold start would import it anyway: the same process, a fifth of the start-up.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback


class Context:
    """The context object Lambda's Python runtime hands a handler (the documented attributes).

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """

    def __init__(self, spec: dict, deadline: float):
        self.function_name = spec["function_name"]
        self.function_version = spec["function_version"]
        self.invoked_function_arn = spec["invoked_function_arn"]
        self.memory_limit_in_mb = spec["memory_limit_in_mb"]
        self.aws_request_id = spec["aws_request_id"]
        self.log_group_name = spec["log_group_name"]
        self.log_stream_name = spec["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error(kind: str, message: str, request_id: str, exception: BaseException | None = None) -> dict:
    """An error in the shape Lambda's Python runtime reports it (invoke payload and log).

    https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
    """
    stack = traceback.format_tb(exception.__traceback__)[1:] if exception is not None else []
    print(f"[ERROR] {kind}: {message}\nTraceback (most recent call last):\n{''.join(stack)}", end="", file=sys.stderr)
    return {"errorMessage": message, "errorType": kind, "requestId": request_id, "stackTrace": stack}


def load(handler: str, request_id: str):
    """The handler function, or the error Lambda reports for a module or handler it cannot load."""
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as problem:
        return None, error("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {problem}",
                           request_id)
    except ImportError as problem:
        return None, error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {problem}",
                           request_id)
    except Exception as problem:  # an error in the module's own top-level code
        return None, error(type(problem).__name__, str(problem), request_id, problem)
    function = getattr(module, function_name, None)
    if not callable(function):
        return None, error("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'",
                           request_id)
    return function, None


MARK = "\x1e"  # ASCII record separator: around the request id that ends an invocation's log


def run(function, failure: dict | None, event: object, spec: dict) -> bytes:
    """One invocation: b"R" and the return value, or b"E" and the error, as JSON on one line."""
    request_id = spec["aws_request_id"]
    if failure is None:
        context = Context(spec, time.monotonic() + float(spec["timeout"]))
        try:
            result = function(event, context)
        except Exception as problem:
            failure = error(type(problem).__name__, str(problem), request_id, problem)
        else:
            try:
                return b"R" + json.dumps(result).encode()
            except (TypeError, ValueError) as problem:
                failure = error("Runtime.MarshalError", f"Unable to marshal response: {problem}", request_id)
    return b"E" + json.dumps(failure).encode()


def main() -> None:
    task_root, handler, outcome_fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, task_root)
    # Lambda's runtime gives the root logger a handler, so logging.info reaches the log once a
    # function lowers the level; plain Python would drop it. Its lines carry the request id.
    log = logging.StreamHandler(sys.stdout)
    logging.getLogger().addHandler(log)
    loaded = None
    with os.fdopen(outcome_fd, "wb", buffering=0) as outcome:
        for line in iter(sys.stdin.readline, ""):
            request = json.loads(line)
            spec = request["context"]
            request_id = spec["aws_request_id"]
            log.setFormatter(logging.Formatter(f"[%(levelname)s]\t%(asctime)s\t{request_id}\t%(message)s"))
            if loaded is None:
                loaded = load(handler, request_id)
            outcome.write(b"started\n")
            answer = run(*loaded, request["event"], spec)
            sys.stderr.flush()
            print(MARK + request_id + MARK, end="", flush=True)
            if loaded[1] is not None:  # the init phase failed: this environment is done
                outcome.write(b"I" + answer[1:] + b"\n")
                return
            outcome.write(answer + b"\n")


def zygote(channel_fd: int) -> None:
    """`lambda_runtime.py --zygote FD`: a process that has imported what a cold start spends most of its time
    importing (boto3, which Lambda's Python runtimes carry, and urllib), and forks one execution environment per
    request from lambdas.py, each then running main() as a process started for it would.

    On the channel (a SOCK_SEQPACKET socket, one JSON message each): first it says which top-level modules it
    holds ({"preloaded": [...]}); then for each {"task", "handler", "env"} with the environment's stdin, stdout
    and outcome descriptors it answers {"started": pid}; {"kill": pid} kills a child it has not reaped (so never
    another process that got the number since); and each child's end is said as {"exited": pid, "code": ...}.
    When the channel closes, it kills what is left and ends."""
    import select
    import signal
    import socket
    import urllib.request  # noqa: F401

    import boto3  # noqa: F401

    channel = socket.socket(fileno=channel_fd)
    channel.send(json.dumps({"preloaded": sorted({name.partition(".")[0] for name in sys.modules})}).encode())
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)  # a child's end (SIGCHLD) wakes the select below
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    while True:
        ready = select.select([channel, wake_read], [], [])[0]
        if wake_read in ready:
            os.read(wake_read, 512)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                break
            children.discard(pid)
            channel.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        if channel not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 3)
        if not message:  # the emulator is gone
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            return
        request = json.loads(message)
        if "kill" in request:
            if request["kill"] in children:
                os.kill(request["kill"], signal.SIGKILL)
            continue
        pid = os.fork()
        if pid == 0:
            _become(request, fds, closing=(channel.detach(), wake_read, wake_write))
        for fd in fds:
            os.close(fd)
        children.add(pid)
        channel.send(json.dumps({"started": pid}).encode())


def _become(request: dict, fds: list[int], closing: tuple[int, ...]) -> None:
    """In a child of the zygote: the process `python -I -u lambda_runtime.py TASK HANDLER FD` would be, with
    the environment's descriptors as its stdin, stdout and stderr, in its directory, with its variables."""
    import signal

    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in closing:
            os.close(fd)
        stdin, output, outcome = fds
        os.dup2(stdin, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(stdin)
        os.close(output)
        os.chdir(request["task"])
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()  # TZ is among them
        sys.argv = [sys.argv[0], request["task"], request["handler"], str(outcome)]
        main()
        code = 0
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else int(end.code is not None)
    except BaseException:  # noqa: BLE001 (what an uncaught exception does to a process: said, exit status 1)
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    if sys.argv[1] == "--zygote":
        zygote(int(sys.argv[2]))
    else:
        main()
