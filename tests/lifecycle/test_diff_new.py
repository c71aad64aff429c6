"""make diff of a deployment never made lists what deploy would create and makes nothing: no bucket,
no upload, no change set, no stack."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import inventory
from helpers import ROOT


def test_a_diff_of_a_new_deployment_makes_nothing(aws):
    before = inventory.take(aws)
    done = subprocess.run([sys.executable, "scripts/diff.py"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "STACK": "fresh"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert re.fullmatch(r"diff: fresh is not deployed: deploy would create \d+ resources, and \d+ more where their "
                        r"conditions hold; nothing was made \(no bucket, no upload, no change set\)", last), last
    assert "      Add    Vpc AWS::EC2::VPC" in done.stdout, "a nested stack's resources, under it"
    assert "nothing was changed" not in done.stdout
    assert inventory.difference(before, inventory.take(aws)) == {}
    assert aws.client("s3").list_buckets()["Buckets"] == []
