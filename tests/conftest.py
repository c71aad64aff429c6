"""Session fixtures: the default DKS app, its rendered templates, the local AWS emulator; a home for hypothesis."""
from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest
from hypothesis import configuration

from emulator import Emulator, environment
from helpers import templates
from lifecycle.aws import timestamp
from templates_src.app import config, loading

# The tests follow the source (app/, stacks/, compose/, lifecycle/, plan/, emulator/tests/) and import each other's
# helpers by module name (`import test_emulated_deploy`), as pytest's default import mode names a test module in a
# folder without __init__.py: every folder is on the path before collection, whatever order it takes.
_HERE = Path(__file__).resolve().parent
sys.path.extend(str(_HERE / folder) for folder in ("app", "compose", "emulator/tests", "lifecycle", "plan", "stacks")
                if str(_HERE / folder) not in sys.path)


@pytest.fixture(scope="session")
def dks() -> config.App:
    return loading.load(config.DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def dks_templates(dks) -> dict[str, dict]:
    return templates(dks)


@pytest.fixture
def hypothesis_home(tmp_path):
    """Hypothesis caches what it learns under ./.hypothesis even without a database: keep it in tmp_path."""
    previous = getattr(configuration, "__hypothesis_home_directory", None)
    configuration.set_hypothesis_home_dir(tmp_path / ".hypothesis")
    yield
    configuration.set_hypothesis_home_dir(previous)


@pytest.fixture(scope="session", autouse=True)
def no_real_aws():
    """Every test, emulator or not, runs with dummy credentials and an endpoint that refuses (port 9).

    A boto3 client made outside the emulator fixture then fails at once instead of reaching AWS.
    """
    saved = dict(os.environ)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CA_BUNDLE"):
        os.environ.pop(name, None)
    os.environ.update(environment("http://127.0.0.1:9"))
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def emulator(no_real_aws):
    """moto with the project's extension, in-process on 127.0.0.1 (a free port), for the whole run.

    The process environment points at it (dummy credentials, no profile, no config file), so
    boto3 here and every subprocess (AWS CLI, taskcat) reach the emulator and never AWS.
    """
    with Emulator() as running:
        os.environ.update(running.environment)
        # What is here now (the modules, botocore's models, moto's backends) lives as long as the run: out of the
        # collector's sight, a full collection scans only what tests made since (0.05 s, not 0.35 s, each time),
        # and with a larger first generation collections run less often. Each reset's garbage is still collected.
        # https://docs.python.org/3/library/gc.html#gc.freeze
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        yield running


# botocore reads and decodes each service's model once per loader: ~2 s of JSON for the clients a test makes.
# One loader for the run keeps that to once per worker; sessions stay separate (credentials, region, clients).
_MODELS = botocore.loaders.create_loader()


class Session(boto3.Session):
    """A boto3 session that hands out one client per service for the whole run: making a botocore client
    (its methods, its event handlers) costs more than most calls made with it, and every test asks for the
    same ones, all on the one emulator with the same credentials. A client asked for with other arguments
    (a retry config, a region) is made anew."""

    _made: dict[str, object] = {}

    def client(self, service_name, *args, **kwargs):
        if args or kwargs:
            return super().client(service_name, *args, **kwargs)
        if service_name not in self._made:
            self._made[service_name] = super().client(service_name)
        return self._made[service_name]


@pytest.fixture
def aws(emulator) -> boto3.Session:
    """A boto3 session on an emptied emulator (every resource of earlier tests forgotten)."""
    emulator.reset()
    core = botocore.session.get_session()
    core.register_component("data_loader", _MODELS)
    # Timestamps read as the lifecycle reads them (lifecycle/aws.py): an inventory reads hundreds.
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=timestamp)
    return Session(botocore_session=core)


_EXIT_STATUS = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS["worker"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """A pytest-xdist worker ends here, without tearing its interpreter down.

    By now it has sent the controller every report and its exit status (pytest-xdist does that at
    pytest_sessionfinish), and its fixtures are finalized: the emulator stopped, and with it its Lambda
    environments and their zygote; the config fuzz's lint processes ended. What Python would still do is free
    the run's heap object by object (moto's backends, botocore's models, cfn-lint's rules), with nothing left to
    show for it: from the last test to the end of a 139-test run (the Compose corpus and the quotas) took 5.1 s
    with it, 1.5 s without. os._exit ends the process at once, once the output written so far is flushed
    (https://docs.python.org/3/library/os.html#os._exit). The controller, which prints the results, ends as usual."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS.get("worker", 0))
