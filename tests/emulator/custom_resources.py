"""CloudFormation custom resources whose ServiceToken is a Lambda function the emulator runs.

`AWS::CloudFormation::CustomResource` and `Custom::*` get CloudFormation's request/response protocol
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref.html), synchronously within
the stack operation; stock moto sent Create only, in a thread, and never Update or Delete:

- Create, Update (with OldResourceProperties and the current PhysicalResourceId) and Delete requests
  in the documented shape (crpg-ref-requests.html), ResourceProperties with every scalar turned into
  a string, as CloudFormation sends them
  (https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1037);
- the ResponseURL is one the emulator serves (a one-shot URL per request, under /moto-api/); the
  function PUTs its JSON response there (crpg-ref-responses.html): SUCCESS gives the resource its
  PhysicalResourceId (what Ref answers) and Data (what Fn::GetAtt reads); FAILED fails the resource
  with the Reason, and so the stack; a response over 4096 bytes, without a PhysicalResourceId or
  with another request's IDs fails it too; no response by the end of the function's run (its
  timeout) fails it, where CloudFormation would wait for ServiceTimeout;
- Delete is sent when the stack, a rollback or a replacement deletes the resource; a resource whose
  Create failed still gets its Delete when the rollback runs, with the PhysicalResourceId the failed
  response gave (https://github.com/remind101/empire/issues/918,
  https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1814);
- an Update answered with another PhysicalResourceId is a replacement: the old one gets a Delete.
"""
from __future__ import annotations

import json
import threading
import uuid
from typing import Any, Callable

from moto.awslambda.utils import get_backend as lambda_backend
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel

from . import lambdas
from .fixes import replace
from .fixes.cloudformation import backend_of
from .resources import EmulatorError

RESPONSE_PATH = "/moto-api/cloudformation/custom-resource-responses/"
RESPONSE_LIMIT = 4096  # bytes: "The total size of the response body can't exceed 4096 bytes."


class CustomResourceFailed(EmulatorError):
    def __init__(self, reason: str, physical_id: str | None = None):
        super().__init__(reason)
        self.physical_id = physical_id


class Responses:
    """The one-shot response URLs: a request's URL takes one PUT, read once by the request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, bytes | None] = {}

    def expect(self, request_id: str) -> str:
        with self._lock:
            self._waiting[request_id] = None
        return f"{lambdas.ENDPOINT}{RESPONSE_PATH}{request_id}"

    def put(self, request_id: str, body: bytes) -> bool:
        with self._lock:
            if request_id not in self._waiting:
                return False
            if self._waiting[request_id] is None:
                self._waiting[request_id] = body
            return True

    def take(self, request_id: str) -> bytes | None:
        with self._lock:
            return self._waiting.pop(request_id, None)


RESPONSES = Responses()


def strings(value: Any) -> Any:
    """Properties as CloudFormation sends them to a provider: every scalar a string."""
    if isinstance(value, dict):
        return {k: strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) or value is None else str(value)


class CustomResource(CloudFormationModel):
    """A provider-defined resource: its identity and attributes are what the provider answered."""

    def __init__(self, account_id: str, region_name: str, stack_id: str, logical_id: str, resource_type: str,
                 properties: dict, physical_id: str, data: dict):
        self.account_id, self.region_name = account_id, region_name
        self.stack_id, self.logical_id, self.resource_type = stack_id, logical_id, resource_type
        self.properties, self.physical_id, self.data = properties, physical_id, data
        self.cf_resource_type, self.logical_resource_id = resource_type, logical_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFormation::CustomResource"

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True  # the provider decides, in its response's Data

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.data:
            raise EmulatorError(f"CustomResource attribute error: Vendor response doesn't contain {attribute_name} "
                                f"key in object {self.stack_id}|{self.logical_id}|{self.physical_id}")
        return self.data[attribute_name]

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        stack_id, logical_id, kind = kwargs["StackId"], kwargs["LogicalId"], kwargs["ResourceType"]
        properties = cloudformation_json["Properties"]
        try:
            response = send(account_id, region_name, "Create", stack_id, logical_id, kind, properties)
        except CustomResourceFailed as failure:
            # The rollback sends this resource a Delete too: keep it where the rollback looks.
            stack = backend_of(account_id, region_name).stacks.get(stack_id)
            if stack is not None:
                stack.resource_map._parsed_resources[logical_id] = cls(
                    account_id, region_name, stack_id, logical_id, kind, properties,
                    failure.physical_id or resource_name, {})
            raise
        return cls(account_id, region_name, stack_id, logical_id, kind, properties,
                   response["PhysicalResourceId"], response.get("Data") or {})

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        old: CustomResource = original_resource
        properties = cloudformation_json["Properties"]
        if properties.get("ServiceToken") != old.properties.get("ServiceToken"):
            raise CustomResourceFailed("Modifying service token is not allowed.")
        response = send(account_id, region_name, "Update", old.stack_id, old.logical_id, old.resource_type,
                        properties, physical_id=old.physical_id, old_properties=old.properties)
        new = cls(account_id, region_name, old.stack_id, old.logical_id, old.resource_type, properties,
                  response["PhysicalResourceId"], response.get("Data") or {})
        if new.physical_id != old.physical_id:
            old.delete(account_id, region_name)  # a replacement: the old resource is deleted
        return new

    def delete(self, account_id: str, region_name: str) -> None:
        send(account_id, region_name, "Delete", self.stack_id, self.logical_id, self.resource_type,
             self.properties, physical_id=self.physical_id)


def send(account_id: str, region_name: str, request_type: str, stack_id: str, logical_id: str, resource_type: str,
         properties: dict, physical_id: str | None = None, old_properties: dict | None = None) -> dict:
    """Send one request to the provider and return its SUCCESS response; anything else fails."""
    token = properties.get("ServiceToken")
    try:
        function = lambda_backend(account_id, region_name).get_function(token)
    except Exception as error:
        raise CustomResourceFailed(f"ServiceToken {token} is not a Lambda function of this account and region "
                                   f"({type(error).__name__})") from error
    if not lambdas.runs_here(function):
        raise CustomResourceFailed(f"ServiceToken {token}: the emulator runs only python3.x functions with zip code")
    request_id = str(uuid.uuid4())
    request = {
        "RequestType": request_type,
        "ServiceToken": token,
        "ResponseURL": RESPONSES.expect(request_id),
        "StackId": stack_id,
        "RequestId": request_id,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": strings(properties),
    }
    if physical_id is not None:
        request["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        request["OldResourceProperties"] = strings(old_properties)
    lambdas.invoke(function, request)
    body = RESPONSES.take(request_id)
    if body is None:
        raise CustomResourceFailed(
            f"CloudFormation did not receive a response from your Custom Resource within the function's timeout "
            f"({function.timeout} s; CloudFormation itself waits ServiceTimeout, 3600 s by default). "
            f"Please check your logs for requestId [{request_id}].")
    return _success(body, request)


def _success(body: bytes, request: dict) -> dict:
    if len(body) > RESPONSE_LIMIT:
        raise CustomResourceFailed("Response object is too long.")
    try:
        response = json.loads(body)
    except ValueError as error:
        raise CustomResourceFailed(f"Response object is not valid JSON: {error}") from error
    for key in ("RequestId", "LogicalResourceId", "StackId"):
        if response.get(key) != request[key]:
            raise CustomResourceFailed(f"Response object is not valid: {key} {response.get(key)!r} is not the "
                                       f"request's {request[key]!r}")
    status = response.get("Status")
    if status == "FAILED":
        raise CustomResourceFailed(f"Received response status [FAILED] from custom resource. Message returned: "
                                   f"{response.get('Reason')} (RequestId: {request['RequestId']})",
                                   response.get("PhysicalResourceId"))
    if status != "SUCCESS":
        raise CustomResourceFailed(f"Response object is not valid: Status must be SUCCESS or FAILED, not {status!r}")
    if not response.get("PhysicalResourceId"):
        raise CustomResourceFailed("Invalid PhysicalResourceId")
    return response


@replace(parsing, "resource_class_from_type")
def _class_of(original, resource_type):
    # moto maps Custom::* to its own create-only model; both spellings of a custom resource go here.
    if resource_type.startswith("Custom::"):
        return CustomResource
    return original(resource_type)


def _answer(environ: dict, start_response: Callable) -> list[bytes]:
    request_id = environ.get("PATH_INFO", "")[len(RESPONSE_PATH):]
    size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(size) if size else b""
    if environ.get("REQUEST_METHOD") == "PUT" and RESPONSES.put(request_id, body):
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    # What S3 answers a presigned URL that is not (or no longer) valid.
    message = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(message)))])
    return [message]


def install() -> None:
    """Serve the response URLs in front of moto's dispatcher (emulator.install calls it once)."""
    from moto.moto_server import werkzeug_app

    dispatcher = werkzeug_app.DomainDispatcherApplication
    dispatch = dispatcher.__call__

    def call(self: Any, environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO", "").startswith(RESPONSE_PATH):
            return _answer(environ, start_response)
        return dispatch(self, environ, start_response)

    dispatcher.__call__ = call
