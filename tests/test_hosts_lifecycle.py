"""The hosts over a deployment's life, on the emulator: sizes checked before anything is made, a new
launch template reaching running hosts through an instance refresh."""
from __future__ import annotations

import inventory
from test_lifecycle import run


def test_min_size_above_max_size_is_refused_before_anything_is_made(aws):
    before = inventory.take(aws)
    refused = run("deploy", STACK="dks", SKIP_IMAGES="1", PARAMS="MinSize=5 MaxSize=3")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    # the template's own Rule, evaluated before the bucket, the registry or an image
    assert refused.stderr.strip() == "error: PARAMS: MinSize 5 needs MaxSize of at least 5: raise MaxSize or lower MinSize"
    assert refused.stdout == ""  # not even the templates bucket
    assert inventory.difference(before, inventory.take(aws)) == {}
