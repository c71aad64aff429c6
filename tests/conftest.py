"""Session fixtures: the default DKS app, its rendered templates, the local AWS emulator; a home for hypothesis."""
from __future__ import annotations

import os

import boto3
import botocore.loaders
import botocore.session
import pytest
from hypothesis import configuration

from emulator import Emulator, environment
from helpers import templates
from templates_src.app import config, loading


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
        yield running


# botocore reads and decodes each service's model once per loader: ~2 s of JSON for the clients a test makes.
# One loader for the run keeps that to once per worker; sessions stay separate (credentials, region, clients).
_MODELS = botocore.loaders.create_loader()


@pytest.fixture
def aws(emulator) -> boto3.Session:
    """A boto3 session on an emptied emulator (every resource of earlier tests forgotten)."""
    emulator.reset()
    core = botocore.session.get_session()
    core.register_component("data_loader", _MODELS)
    return boto3.Session(botocore_session=core)


@pytest.fixture
def draining_hook_unmodelled(emulator):
    """ECS's managed-draining termination hook left out of the emulator's model, for this test only.

    With the hook modelled, a group deleted after its managed-draining capacity provider holds its
    hosts in Terminating:Wait for an hour, and the emulator fails that delete (test_emulator_hosts.py);
    build/cluster.yaml avoids it (the hosts function removes the hook first). The switch exists so the
    model itself can be compared with its absence.
    """
    emulator.model_draining_hook = False
    yield
    emulator.model_draining_hook = True
