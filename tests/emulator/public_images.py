"""Amazon's public AMIs built once per account and region instead of once per EC2 backend.

moto 5.2.5 loads 1,301 AMIs into every EC2 backend it makes (its default list, the region's latest
Amazon Linux ones and every ECS-optimized one), each with a volume made and deleted and a snapshot
of its own: a tenth of the emulator's time over the test suite, paid again after every reset. They
are the same every time, so the first backend of an account and region builds them and the later
ones get copies: objects of their own, with their own launch permissions, product codes and snapshot
permissions, and the same ids every time, as a public AMI and its snapshot have one id everywhere.
"""
from __future__ import annotations

import os

from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import Snapshot

from .fixes import copy_of, replace

_BUILT: dict[tuple, list[Ami]] = {}


def _copy_ami(ami: Ami, backend) -> Ami:
    snapshot: Snapshot = ami.ebs_snapshot
    snapshot = copy_of(snapshot, ec2_backend=backend,
                       create_volume_permission_groups=set(snapshot.create_volume_permission_groups),
                       create_volume_permission_userids=set(snapshot.create_volume_permission_userids))
    return copy_of(ami, ec2_backend=backend, launch_permissions=[dict(p) for p in ami.launch_permissions],
                   product_codes=set(ami.product_codes), ebs_snapshot=snapshot)


@replace(AmiBackend, "_load_amis")
def _load_amis(original, self) -> None:
    key = (self.account_id, self.region_name, os.environ.get("MOTO_AMIS_PATH"),
           os.environ.get("MOTO_EC2_LOAD_DEFAULT_AMIS"))
    if key not in _BUILT:
        before = set(self.amis)
        original(self)
        _BUILT[key] = [_copy_ami(ami, None) for name, ami in self.amis.items() if name not in before]
        return
    for built in _BUILT[key]:
        ami = _copy_ami(built, self)
        self.amis[ami.id] = ami
        self.snapshots[ami.ebs_snapshot.id] = ami.ebs_snapshot
