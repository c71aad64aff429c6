"""make plan prices ECR storage: one assumed amount per repository registry.yaml makes, built or copied."""
from __future__ import annotations

import json
import subprocess
import sys

from helpers import ROOT, app_from, resources, templates
from test_templates import no_repositories
from templates_src import plan

PRICES = plan.load_prices()


def repositories_built(app) -> int:
    registry = templates(app).get("registry.yaml")
    return len(resources(registry, "AWS::ECR::Repository")) if registry else 0


def test_ecr_storage_is_the_registrys_repositories_times_the_assumed_size(dks):
    result = plan.make(dks)
    line = result.public.line("ecr_storage")
    # dks-api and dks-ui are built, postgres is copied from Docker Hub
    assert repositories_built(dks) == 3
    assert line.quantity == 3 * plan.Assumptions().ecr_gb
    assert line.price == PRICES["items"]["ecr_storage"]["prices"]["us-east-1"]
    assert line.monthly == round(line.quantity * line.price, 2) > 0
    assert result.nat.line("ecr_storage") == line, "the NAT variant stores the same images"
    bigger = plan.make(dks, assumptions=plan.Assumptions(ecr_gb=4))
    assert bigger.public.line("ecr_storage").quantity == 12
    assert round(bigger.public.total - result.public.total, 2) == round(9 * line.price, 2)


def test_an_app_that_builds_and_copies_nothing_stores_nothing():
    app = app_from(no_repositories())
    assert repositories_built(app) == 0
    line = plan.make(app).public.line("ecr_storage")
    assert line.quantity == 0 and line.note.startswith("no repository in this config")


def test_the_command_takes_the_assumption():
    done = subprocess.run([sys.executable, "-m", "templates_src", "plan", "--format", "json", "--ecr-gb", "2.5"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    (line,) = [line for line in data["public"]["lines"] if line["item"] == "ecr_storage"]
    assert line["quantity"] == 7.5 and data["assumptions"]["ecr_gb"] == 2.5
