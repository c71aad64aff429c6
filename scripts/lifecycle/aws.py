"""How the lifecycle reaches AWS, and how one deployment's pieces are named.

A deployment is named by its root stack (STACK). The same name is the templates' EnvironmentName,
so two deployments in one account never share a resource name; the registry stack is
`<stack>-registry`. Both stacks carry the tag TAG=<stack>, which CloudFormation copies onto every
resource that takes tags; cleanup asks the Resource Groups Tagging API for anything still carrying it.
"""
from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlparse

import boto3
import botocore.session
import botocore.utils
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from templates_src.app import names
from templates_src.stacks import kept

TAG = kept.STACK_TAG
# On a templates bucket deploy created (value: the stack): cleanup deletes only such buckets.
CREATED_TAG = "ecs-app:bucket-created-for"
# Throttling and transient 5xx answers are retried with backoff, in the SDKs' standard mode, the one AWS
# recommends; adaptive mode ("only for specialized use-cases") also rations the client's own sending after a
# throttle, and under a third of the calls faulted it made a deploy take twice as long (37 s, not 16 s).
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
# A connection is given 5 s, not botocore's 60 (an endpoint that drops packets would hold each
# attempt a minute), and CONNECT_ATTEMPTS attempts, not 10 (with backoff, 20-35 s of silence before
# "could not connect"): a connection blip is retried, an endpoint gone is said within seconds.
# An endpoint that answers nothing at all is found before anything starts, by preflight.reach.
# https://docs.aws.amazon.com/boto3/latest/guide/retries.html
RETRIES = Config(retries={"mode": "standard", "max_attempts": 10}, connect_timeout=5)
CONNECT_ATTEMPTS = 3


def connect_attempts(client, most: int):
    """Give `client` at most `most` attempts at a connection, whatever its retry mode allows for the
    rest: a needs-retry handler run before botocore's own answers False (no retry) for a connection
    that failed `most` times, and None (botocore's policy decides) for everything else."""
    def handler(attempts: int, caught_exception=None, **_) -> bool | None:
        if isinstance(caught_exception, (EndpointConnectionError, ConnectTimeoutError)) and attempts >= most:
            return False
        return None

    client.meta.events.register_first(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}", handler)
    return client


def timestamp(value: str | float) -> datetime.datetime:
    """A timestamp of an AWS answer, as botocore's own parser gives it, without dateutil for the usual form.

    AWS writes ISO 8601 in UTC ("2026-12-02T22:59:25.123Z"), which datetime.fromisoformat reads since Python
    3.11; anything else (epoch seconds, an HTTP date, a time with no zone) goes to botocore's parser. dateutil
    reads each one through a general tokenizer: a cleanup reads some 700 (every stack event and stack
    resource carries one) and spent a sixth of its CPU there. The AWS CLI sets its own parser the same way
    (awscli/customizations/scalarparse.py, response_parser_factory.set_parser_defaults)."""
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return botocore.utils.parse_timestamp(value)


def session(region: str | None = None) -> boto3.Session:
    """A boto3 session (region: this one, else boto3's own choice) whose answers' timestamps `timestamp` reads."""
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=timestamp)
    return boto3.Session(botocore_session=core, region_name=region)


class LifecycleError(Exception):
    """A failure with its explanation: printed as is (no traceback), exit code 1."""


class InputError(LifecycleError):
    """What the user asked for cannot be done as asked (a parameter, a value): exit code 2, nothing changed."""


@dataclass
class Target:
    """One deployment in one account and region."""

    stack: str
    session: boto3.Session
    _clients: dict = field(default_factory=dict, repr=False)

    @property
    def registry(self) -> str:
        return f"{self.stack}-registry"

    @property
    def region(self) -> str:
        return self.session.region_name

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = connect_attempts(self.session.client(service, config=RETRIES), CONNECT_ATTEMPTS)
        return self._clients[service]

    @functools.cached_property
    def account(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    @property
    def endpoint(self) -> str:
        return self.client("cloudformation").meta.endpoint_url

    @property
    def emulated(self) -> bool:
        """True when the endpoint is not AWS's (AWS_ENDPOINT_URL: the local emulator), which runs
        no EC2 host, no task and no DNS: facts that need them cannot be observed."""
        host = urlparse(self.endpoint).hostname or ""
        return not (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))

    def default_bucket(self) -> str:
        """Templates bucket deploy creates when none is given: unique per account, region and stack."""
        return f"{self.stack}-templates-{self.account}-{self.region}"[:63].rstrip("-")

    @property
    def tags(self) -> list[dict]:
        return [{"Key": TAG, "Value": self.stack}]


def target(stack: str, region: str | None = None) -> Target:
    """The deployment `stack` in REGION (or AWS_REGION / the profile's region)."""
    if not re.match(names.ENVIRONMENT_PATTERN, stack) or len(stack) > names.ENVIRONMENT_MAX:
        raise InputError(
            f"STACK={stack!r} cannot name a deployment: it is also every resource's prefix (EnvironmentName), "
            f"so it must be lowercase letters, digits and hyphens, start with a letter, not start with "
            f"aws, ecs or fargate, and have at most {names.ENVIRONMENT_MAX} characters")
    # botocore reads AWS_DEFAULT_REGION and the profile; AWS_REGION is what the AWS CLI v2 and SDKs read.
    made = session(region or os.environ.get("AWS_REGION") or None)
    if not made.region_name:
        raise InputError("no AWS region: set REGION=..., AWS_REGION, or a region in the AWS profile")
    return Target(stack, made)


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def missing(error: ClientError) -> bool:
    """The answer AWS gives about something that does not exist (each service words it its own way)."""
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "")
    return (code in {"NoSuchBucket", "404", "NotFound", "NoSuchEntity", "RepositoryNotFoundException",
                     "ServiceNotFoundException", "ClusterNotFoundException", "NamespaceNotFound",
                     "ServiceNotFound", "ResourceNotFoundException"}
            or (code == "ValidationError" and "does not exist" in message))


def loopback(endpoint: str) -> bool:
    """Whether the endpoint is this machine (the local emulator, `make emulator`)."""
    host = urlparse(endpoint).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unreachable(endpoint: str) -> str:
    """The sentence for an endpoint that did not answer: nothing refused anything."""
    hint = "is `make emulator` running?" if loopback(endpoint) else \
        "check the network, the REGION and AWS_ENDPOINT_URL"
    return f"nothing answered at {endpoint}: {hint}"
