"""Messages count and point the way a person reads them: one plural helper, services by name."""
from __future__ import annotations

import pytest

from helpers import DKS_DIR, dks_data
from templates_src.app import checks, config
from templates_src.app.words import plural


@pytest.mark.parametrize("count, noun, many, said", [
    (0, "host", None, "0 hosts"), (1, "host", None, "1 host"), (2, "host", None, "2 hosts"),
    (1, "repository", "repositories", "1 repository"), (3, "repository", "repositories", "3 repositories"),
])
def test_plural(count, noun, many, said):
    assert plural(count, noun, many) == said


def test_a_config_error_names_the_service_its_path_points_into():
    data = dks_data()
    data["services"][1]["cpu"] = "abc"
    with pytest.raises(config.ConfigError) as caught:
        config.parse(data)
    assert caught.value.problems == [("services[1].cpu", "expected an integer, got str 'abc'")], "paths stay paths"
    assert "  services[1] (dks-api).cpu: expected an integer, got str 'abc'" in caught.value.report("app.yaml")


def test_a_validation_error_names_the_service_too():
    data = dks_data()
    data["services"][2]["environment"] = {"X": "{nope.host}"}
    with pytest.raises(config.ConfigError) as caught:
        checks.validate(config.parse(data, DKS_DIR))
    assert any(line.startswith("services[2] (dks-ui).environment.X: ") for line in caught.value.described())


def test_a_service_without_a_usable_name_keeps_its_position():
    data = dks_data()
    data["services"][0]["name"] = ["dks-db"]
    with pytest.raises(config.ConfigError) as caught:
        config.parse(data, DKS_DIR)
    assert any(line.startswith("services[0].name: ") for line in caught.value.described())
