"""Session fixtures: the default DKS app and its rendered templates."""
from __future__ import annotations

import pytest

from helpers import templates
from templates_src import config


@pytest.fixture(scope="session")
def dks() -> config.App:
    return config.load(config.DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def dks_templates(dks) -> dict[str, dict]:
    return templates(dks)
