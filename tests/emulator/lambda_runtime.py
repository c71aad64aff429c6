"""The emulator's Python runtime for Lambda: one invocation of a handler, run the way Lambda runs it.

lambdas.py starts it as `python -I -u lambda_runtime.py TASK_ROOT HANDLER OUTCOME_FD CONTEXT_JSON` in
the function's code directory, with the event as JSON on stdin and the function's environment. It
writes "started" and a newline to OUTCOME_FD once the handler's module is imported (the init phase
is over: the function's timeout counts from here), then "R" and the handler's return value as JSON,
or "E" and the error as Lambda reports it. Whatever the function prints is its log. Standard
library only: it runs beside the function's code, not the emulator's.
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


def main() -> None:
    task_root, handler, outcome_fd, spec = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    sys.path.insert(0, task_root)
    request_id = spec["aws_request_id"]
    # Lambda's runtime gives the root logger a handler, so logging.info reaches the log once a
    # function lowers the level; plain Python would drop it.
    logging.basicConfig(format=f"[%(levelname)s]\t%(asctime)s\t{request_id}\t%(message)s", stream=sys.stdout)
    event = json.loads(sys.stdin.read() or "{}")
    with os.fdopen(outcome_fd, "wb", buffering=0) as outcome:
        function, failure = load(handler, request_id)
        outcome.write(b"started\n")
        if failure is None:
            context = Context(spec, time.monotonic() + float(spec["timeout"]))
            try:
                result = function(event, context)
            except Exception as problem:
                failure = error(type(problem).__name__, str(problem), request_id, problem)
            else:
                try:
                    outcome.write(b"R" + json.dumps(result).encode())
                    return
                except (TypeError, ValueError) as problem:
                    failure = error("Runtime.MarshalError", f"Unable to marshal response: {problem}", request_id)
        outcome.write(b"E" + json.dumps(failure).encode())


if __name__ == "__main__":
    main()
