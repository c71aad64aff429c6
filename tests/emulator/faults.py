"""Faults on demand: the emulator answers like AWS under load, or stops where a test wants it to.

`FAULTS` is one switch for the whole server (it sits in front of moto's request dispatcher):

- `arm(rate, seed, services, actions, kinds)`: a seeded-random share of the requests (optionally
  only some services or actions) is answered, without being processed, the way AWS answers when it
  throttles (`Throttling` / `ThrottlingException` / `RequestLimitExceeded` / S3's 503 `SlowDown`)
  or fails transiently (500 `InternalFailure`, 503 `ServiceUnavailable`), each in the protocol's own
  error format, so botocore classifies it as retryable. `counts()` says what was injected.
- `hold(action=..., match=...)`: the next request of that action waits before it is processed
  until the test releases it; `hold(resource=...)` does the same inside CloudFormation, before it
  creates that logical resource (the stack is `*_IN_PROGRESS` meanwhile, see midway.py). A test
  can then interrupt a client at a known point.
- `fail(resource=..., reason=...)`: CloudFormation's next update of that logical resource (in place
  or by replacement, updates.py) fails with that reason, so a test sees an update roll back.
- `clear()` disarms and releases everything; `POST /moto-api/reset` calls it too.

Standalone (`make emulator`), `POST /moto-api/faults` with `{"rate": 0.3, "seed": 1}` arms it,
`GET /moto-api/faults` reads the counts and `DELETE /moto-api/faults` clears it.
"""
from __future__ import annotations

import io
import json
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

CONTROL_PATH = "/moto-api/faults"
KINDS = ("throttle", "500", "503")
HOLD_TIMEOUT = 120  # seconds: a hold never outlives a test that forgot to release it

# The code each service answers with when it throttles (EC2's query dialect says RequestLimitExceeded).
THROTTLE_CODES = {"ec2": "RequestLimitExceeded", "s3": "SlowDown"}
# REST APIs with JSON bodies and no X-Amz-Target (by signing name): their errors are JSON too. An XML
# error there leaves botocore with the bare status as the code, which it does not retry.
REST_JSON = {"elasticfilesystem", "lambda"}


@dataclass
class Hold:
    """A request (or resource creation) stopped until `release()`; `reached` is set when one arrives."""

    action: str | None = None
    resource: str | None = None
    match: dict[str, str] = field(default_factory=dict)
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()

    def wait(self, timeout: float = 60) -> bool:
        return self.reached.wait(timeout)

    def _applies(self, action: str | None, params: dict[str, Any], resource: str | None = None) -> bool:
        if self.reached.is_set():
            return False  # one request per hold; later ones pass
        if resource is not None:
            return self.resource == resource
        return (self.action is not None and self.action == action
                and all(str(params.get(k)) == v for k, v in self.match.items()))

    def _stop(self) -> None:
        self.reached.set()
        self.released.wait(HOLD_TIMEOUT)


@dataclass
class Request:
    """What the fault switch needs to know about one request."""

    service: str
    action: str
    params: dict[str, Any]
    json_protocol: bool


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds: list[Hold] = []
        self._failing: dict[str, str] = {}
        self._disarm()

    def _disarm(self) -> None:
        self.rate = 0.0
        self._random = random.Random(0)
        self._services: set[str] = set()
        self._actions: set[str] = set()
        self._kinds: tuple[str, ...] = KINDS
        self.seen = 0
        self.injected: Counter[str] = Counter()  # "<service> <action> <code>" -> how many

    # --- the switch --------------------------------------------------------------------------------

    def arm(self, rate: float, seed: int = 0, services: Iterable[str] = (), actions: Iterable[str] = (),
            kinds: Iterable[str] = KINDS) -> None:
        """Answer `rate` (0..1) of the matching requests with a fault; counts start from zero."""
        kinds = tuple(kinds)
        if not 0 <= rate <= 1 or not kinds or set(kinds) - set(KINDS):
            raise ValueError(f"rate must be within 0..1 and kinds among {KINDS}")
        with self._lock:
            self._disarm()
            self.rate, self._random = rate, random.Random(seed)
            self._services, self._actions, self._kinds = set(services), set(actions), kinds

    def disarm(self) -> None:
        """Stop injecting; the counts stay readable."""
        with self._lock:
            self.rate = 0.0

    def clear(self) -> None:
        with self._lock:
            self._disarm()
            holds, self._holds = self._holds, []
            self._failing = {}
        for hold in holds:
            hold.release()

    def counts(self) -> dict[str, Any]:
        with self._lock:
            by_code = Counter()
            for key, number in self.injected.items():
                by_code[key.rsplit(" ", 1)[1]] += number
            return {"requests": self.seen, "injected": sum(self.injected.values()), "by_code": dict(by_code),
                    "by_call": dict(self.injected)}

    def hold(self, action: str | None = None, resource: str | None = None, **match: str) -> Hold:
        """Stop the next request of `action` whose parameters include `match` (e.g. StackName="x"),
        or CloudFormation's next creation of the logical resource `resource`."""
        if (action is None) == (resource is None):
            raise ValueError("hold an action or a resource, not both")
        hold = Hold(action, resource, {k: str(v) for k, v in match.items()})
        with self._lock:
            self._holds.append(hold)
        return hold

    def fail(self, resource: str, reason: str = "Injected failure") -> None:
        """Fail CloudFormation's next update of the logical resource `resource` (any stack) with `reason`."""
        with self._lock:
            self._failing[resource] = reason

    # --- what the server asks ----------------------------------------------------------------------

    def _held(self, action: str | None, params: dict[str, Any], resource: str | None = None) -> Hold | None:
        with self._lock:
            for hold in self._holds:
                if hold._applies(action, params, resource):
                    hold.reached.set()
                    return hold
        return None

    def _fails(self, resource: str) -> str | None:
        """The reason this resource's update fails now (once), or None."""
        with self._lock:
            return self._failing.pop(resource, None)

    def _draw(self, request: Request) -> str | None:
        """The kind of fault for this request, or None to let it through."""
        with self._lock:
            if not self.rate:
                return None
            if self._services and request.service not in self._services:
                return None
            if self._actions and request.action not in self._actions:
                return None
            self.seen += 1
            if self._random.random() >= self.rate:
                return None
            return self._random.choice(self._kinds)

    def _count(self, request: Request, code: str) -> None:
        with self._lock:
            self.injected[f"{request.service} {request.action} {code}"] += 1

    @property
    def idle(self) -> bool:
        return not self.rate and not self._holds


FAULTS = Faults()


# --- answering like AWS ---------------------------------------------------------------------------

def answer(request: Request, kind: str) -> tuple[int, dict[str, str], bytes, str]:
    """(status, headers, body, code) of a fault in the request's protocol."""
    if kind == "throttle":
        code = THROTTLE_CODES.get(request.service, "ThrottlingException" if request.json_protocol else "Throttling")
        status = 503 if request.service in THROTTLE_CODES else 400
        message = "Please reduce your request rate." if request.service == "s3" else "Rate exceeded"
    elif kind == "500":
        code, status, message = ("InternalError" if request.service == "s3" else "InternalFailure"), 500, \
            "We encountered an internal error. Please try again."
    else:
        code, status, message = "ServiceUnavailable", 503, "Service is unavailable. Please try again."
    request_id = str(uuid.uuid4())
    if request.json_protocol:
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id,
                        "x-amzn-ErrorType": code}, body, code
    if request.service == "s3":
        body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>")
    elif request.service == "ec2":
        body = (f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
    else:
        body = (f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode(), code


def _read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body; environ gets a fresh stream with the same bytes for moto."""
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    stream = environ["wsgi.input"]
    body = stream.read(size) if size else (stream.read() if environ.get("wsgi.input_terminated") else b"")
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def describe(environ: dict[str, Any], body: bytes) -> Request:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:  # SigV4: Credential=<key>/<date>/<region>/<service>/aws4_request
        service = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")[3]
    except IndexError:
        service = "s3"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        return Request(service, target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}, True)
    if service == "s3":
        return Request(service, environ.get("REQUEST_METHOD", ""), {}, False)
    params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(body.decode("utf-8", "replace")))
    return Request(service, params.get("Action", environ.get("REQUEST_METHOD", "")), params, service in REST_JSON)


def _respond(start_response: Callable, status: int, headers: dict[str, str], body: bytes) -> list[bytes]:
    from http import HTTPStatus

    start_response(f"{status} {HTTPStatus(status).phrase}",
                   [*headers.items(), ("Content-Length", str(len(body)))])
    return [body]


def _control(environ: dict[str, Any], start_response: Callable) -> list[bytes]:
    method = environ.get("REQUEST_METHOD")
    if method == "POST":
        settings = json.loads(_read_body(environ) or b"{}")
        try:
            FAULTS.arm(**settings)
        except (TypeError, ValueError) as error:
            return _respond(start_response, 400, {"Content-Type": "application/json"},
                            json.dumps({"error": str(error)}).encode())
    elif method == "DELETE":
        FAULTS.clear()
    return _respond(start_response, 200, {"Content-Type": "application/json"}, json.dumps(FAULTS.counts()).encode())


def _dispatch(original: Callable, app: Any, environ: dict[str, Any], start_response: Callable) -> Any:
    path = environ.get("PATH_INFO", "")
    if path == CONTROL_PATH:
        return _control(environ, start_response)
    if path.startswith("/moto-api/"):
        if path == "/moto-api/reset":
            FAULTS.clear()
        return original(app, environ, start_response)
    if FAULTS.idle:
        return original(app, environ, start_response)
    s3 = _is_s3(environ)  # an S3 body is an object: read only to drain it, never parsed
    request = describe(environ, b"" if s3 else _read_body(environ))
    hold = FAULTS._held(request.action, request.params)
    if hold is not None:
        hold._stop()
    kind = FAULTS._draw(request)
    if kind is None:
        return original(app, environ, start_response)
    if s3:
        _read_body(environ)  # drained, so the connection stays usable for the retry
    status, headers, body, code = answer(request, kind)
    FAULTS._count(request, code)
    return _respond(start_response, status, headers, body)


def _is_s3(environ: dict[str, Any]) -> bool:
    return "/s3/" in environ.get("HTTP_AUTHORIZATION", "") or not environ.get("HTTP_AUTHORIZATION")


def install() -> None:
    """Put the switch in front of moto's dispatcher and the CloudFormation engine (emulator.install calls it once)."""
    from moto.cloudformation import parsing
    from moto.moto_server import werkzeug_app

    dispatcher = werkzeug_app.DomainDispatcherApplication
    dispatch = dispatcher.__call__

    def call(self: Any, environ: dict[str, Any], start_response: Callable) -> Any:
        return _dispatch(dispatch, self, environ, start_response)

    dispatcher.__call__ = call

    create = parsing.parse_and_create_resource

    def create_resource(logical_id: str, *args: Any, **kwargs: Any) -> Any:
        hold = FAULTS._held(None, {}, resource=logical_id)
        if hold is not None:
            hold._stop()
        return create(logical_id, *args, **kwargs)

    parsing.parse_and_create_resource = create_resource

