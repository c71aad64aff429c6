"""Fixtures of the emulator's own tests."""
from __future__ import annotations

import pytest


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
