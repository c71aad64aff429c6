"""EC2 instance types the fit check knows: vCPUs, memory and network interfaces.

Source: the EC2 User Guide's instance-type specifications ("Maximum network interfaces" per type),
as of 2026. Only current general-purpose, compute- and memory-optimized families that run the
ECS-optimized AL2023 AMI are listed; add a family by adding its rows. With awsvpc networking every
task takes one interface and the host keeps its primary one, so a host runs (max_enis - 1) tasks
(ENI trunking raises that, but needs an account setting this project does not assume).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    max_enis: int
    architecture: str  # "x86_64" or "arm64"

    @property
    def task_slots(self) -> int:
        return self.max_enis - 1


# size: (vCPUs, GiB, max ENIs) per family shape; the families below share these shapes.
_BURSTABLE = {"nano": (2, 0.5, 2), "micro": (2, 1, 2), "small": (2, 2, 3), "medium": (2, 4, 3),
              "large": (2, 8, 3), "xlarge": (4, 16, 4), "2xlarge": (8, 32, 4)}
_GENERAL = {"large": (2, 8, 3), "xlarge": (4, 16, 4), "2xlarge": (8, 32, 4), "4xlarge": (16, 64, 8)}
_COMPUTE = {"large": (2, 4, 3), "xlarge": (4, 8, 4), "2xlarge": (8, 16, 4), "4xlarge": (16, 32, 8)}
_MEMORY = {"large": (2, 16, 3), "xlarge": (4, 32, 4), "2xlarge": (8, 64, 4), "4xlarge": (16, 128, 8)}
# Graviton non-burstable families also come as a 1-vCPU "medium" with 2 interfaces.
_GRAVITON_MEDIUM = {"m": (1, 4, 2), "c": (1, 2, 2), "r": (1, 8, 2)}

_FAMILIES = {
    "t3": ("x86_64", _BURSTABLE), "t3a": ("x86_64", _BURSTABLE), "t4g": ("arm64", _BURSTABLE),
    "m5": ("x86_64", _GENERAL), "m6i": ("x86_64", _GENERAL), "m7i": ("x86_64", _GENERAL),
    "m6g": ("arm64", _GENERAL), "m7g": ("arm64", _GENERAL),
    "c5": ("x86_64", _COMPUTE), "c6i": ("x86_64", _COMPUTE), "c7i": ("x86_64", _COMPUTE),
    "c6g": ("arm64", _COMPUTE), "c7g": ("arm64", _COMPUTE),
    "r5": ("x86_64", _MEMORY), "r6i": ("x86_64", _MEMORY), "r6g": ("arm64", _MEMORY), "r7g": ("arm64", _MEMORY),
}


def _table() -> dict[str, InstanceType]:
    types = {}
    for family, (arch, sizes) in _FAMILIES.items():
        shapes = dict(sizes)
        if arch == "arm64" and family[0] in _GRAVITON_MEDIUM and family != "t4g":
            shapes = {"medium": _GRAVITON_MEDIUM[family[0]], **shapes}
        for size, (vcpus, gib, enis) in shapes.items():
            name = f"{family}.{size}"
            types[name] = InstanceType(name, vcpus, int(gib * 1024), enis, arch)
    return types


TYPES: dict[str, InstanceType] = _table()


def families() -> str:
    return ", ".join(_FAMILIES)


def same_architecture(arch: str) -> list[InstanceType]:
    """Types of one architecture, smallest first (by vCPUs, then memory)."""
    return sorted((t for t in TYPES.values() if t.architecture == arch), key=lambda t: (t.vcpus, t.memory_mib, t.name))
