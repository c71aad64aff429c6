"""The local AWS emulator: moto server (pinned, 5.2.5) plus what our templates need and moto lacks.

`Emulator` runs it in-process on 127.0.0.1 (port 0 by default) and gives the environment that
points boto3, the AWS CLI and taskcat at it. `resources` adds the CloudFormation types moto skips;
`fixes` makes moto's own types and CloudFormation engine behave as AWS does, one module per service
(`fixes.cloudformation`, `fixes.nested_stacks`, `fixes.ecs`, `fixes.ec2`, `fixes.elbv2`, `fixes.iam`, ...;
`deletion`: a stack's resources deleted dependents first), `midway` also for stacks a client left midway; `faults`
throttles, fails or holds requests on demand (`Emulator.faults`).

What runs rather than only records: `lambdas` runs a python3.x function's code in a subprocess
(`lambda_runtime` is its runtime), for Invoke and every other caller; `custom_resources` sends
custom resources CloudFormation's Create/Update/Delete requests and serves their response URLs;
`eventbridge` delivers matching events to Lambda targets and fires schedules on demand
(`Emulator.fire_schedule`); `hosts` gives Auto Scaling groups their launch/terminate events,
lifecycle hooks and ECS managed draining's hook (`Emulator.model_draining_hook` turns that hook
off), and fails a CloudFormation delete of a group whose hosts would wait; `refresh` is instance
refresh; `scheduler` registers a group's hosts in their ECS cluster and places services' tasks on them
(or says why not, in ECS's words), scaling a managed capacity provider's group out for them;
`bucket_owner` refuses an S3 request whose ExpectedBucketOwner is not the bucket's account;
`log_filters` applies CloudWatch Logs filter patterns as AWS does (and refuses those AWS refuses);
`ecs_exec` is ECS Exec: the services' and tasks' switch and ExecuteCommand, refused as ECS refuses it;
`alarms` makes CloudWatch alarms, SNS topic policies and subscriptions;
`strict` refuses what CloudFormation and the service APIs refuse (resource schemas, GetAtt, API checks).
`scaling` is Application Auto Scaling's scalable targets and policies through CloudFormation.
`updates` updates stacks in place, nested ones too, replacing a resource only where its schema says
so and rolling back a failed update; `update_plan` plans change sets by the same rules.
`managed_policies` parses moto's AWS managed policies once per process (every reset rebuilt them);
`template_parsing` reads templates with libyaml (moto's pure-Python loader was most of a deploy's time).
`public_images` builds Amazon's public AMIs once per account and region (every reset rebuilt 1,301 of them);
`public_parameters` does the same for AWS's public SSM parameters (/aws/service/...), which GetResources leaves out.
`python -m emulator` (with tests/ on the path; `make emulator`) runs it standalone.
"""
from __future__ import annotations

import logging
import os
import urllib.request

REGION = "us-east-1"

# Before any moto backend exists: AWS managed policies (ManagedPolicyArns) must resolve.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

_installed = False


def install() -> list[str]:
    """Register the extension with moto (idempotent); returns the names of what it changed."""
    global _installed
    from moto.cloudformation import parsing

    # Importing a module registers what it defines (moto types) and what it replaces.
    from . import custom_resources, deletion, eventbridge, faults, fixes, hosts, lambdas, midway  # noqa: F401
    from . import alarms, refresh, resources  # noqa: F401
    from . import domain, rules  # noqa: F401  (ACM certificates and record checks; the Rules check)
    from . import bucket_owner  # noqa: F401  (ExpectedBucketOwner refused on another account's bucket)
    from . import log_filters  # noqa: F401  (CloudWatch Logs filter patterns: ?term, -term, refused patterns)
    from . import scheduler  # noqa: F401  (after hosts: container instances, task placement, managed scaling)
    from . import updates  # in-place updates, rollback and change sets, decided by the resource schemas
    from . import ecs_exec  # noqa: F401  (after scheduler and updates, which it wraps: ECS Exec)
    from . import scaling  # noqa: F401  (after updates: Application Auto Scaling targets and policies)
    from . import strict  # noqa: F401  (what CloudFormation and the APIs refuse: schemas, GetAtt, API checks)
    from . import managed_policies  # noqa: F401  (AWS managed policies parsed once, not on every reset)
    from . import template_parsing  # noqa: F401  (templates parsed by libyaml, the same data)
    from . import public_images  # noqa: F401  (Amazon's AMIs built once per account and region, not on every reset)
    from . import public_parameters  # noqa: F401  (AWS's public SSM parameters, likewise)

    if not _installed:
        rules.install()  # before midway, which wraps CreateChangeSet in turn
        strict.install()
        midway.install()  # after fixes, which these wrap in turn
        custom_resources.install()
        faults.install()
        updates.install()  # after midway and fixes, whose ExecuteChangeSet it takes over for updates
        for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
            cached.cache_clear()
        _installed = True
    return list(fixes.FIXES)


def environment(endpoint: str) -> dict[str, str]:
    """What a process needs to talk to the emulator and to nothing else."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_RETRY_MODE": "standard",
    }


class Emulator:
    """moto server with the extension, on 127.0.0.1."""

    def __init__(self, port: int = 0):
        self.port = port
        self._server = None
        self.endpoint = ""

    def start(self) -> "Emulator":
        install()
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        from . import lambdas

        lambdas.ENDPOINT = self.endpoint  # what a function's boto3 calls back into
        return self

    def stop(self) -> None:
        """Stop serving; every Lambda environment the emulator ran ends with it."""
        if self._server is not None:
            self._server.stop()
            self._server = None
            from . import lambdas

            lambdas.end()

    def reset(self) -> None:
        """Forget every resource in every account and region."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    @property
    def model_draining_hook(self) -> bool:
        """Whether ECS adds its managed-draining termination hook to a capacity provider's group (hosts.py).

        On by default, as in AWS. Off, no hook is added, and a stack that deletes its capacity
        provider before its Auto Scaling group deletes as it did before the hook was modelled.
        """
        from .hosts import SETTINGS

        return SETTINGS.model_draining_hook

    @model_draining_hook.setter
    def model_draining_hook(self, on: bool) -> None:
        from .hosts import SETTINGS

        SETTINGS.model_draining_hook = on

    def fire_schedule(self, rule: str, event_bus: str = "default") -> bool:
        """Deliver a schedule rule's Scheduled Event to its targets now (no clock runs schedules here);
        False when the rule is disabled."""
        from moto.core import DEFAULT_ACCOUNT_ID

        from .eventbridge import fire

        return fire(rule, DEFAULT_ACCOUNT_ID, REGION, event_bus)

    @property
    def faults(self):
        """The fault switch (see faults.py); reset() clears it."""
        from .faults import FAULTS

        return FAULTS

    @property
    def environment(self) -> dict[str, str]:
        return environment(self.endpoint)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
