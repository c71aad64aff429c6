"""Cloud Map: a second private DNS namespace on a VPC, refused only where Route 53 refuses it.

moto 5.2.5 refuses any second namespace on a VPC, so a renamed namespace (made before the old one goes) fails.
"""
from __future__ import annotations

from moto.servicediscovery import models as servicediscovery

from . import replace


@replace(servicediscovery.ServiceDiscoveryBackend, "create_private_dns_namespace")
def _private_namespace(original, self, name, creator_request_id, description, vpc, tags, properties):
    """A private namespace is a Route 53 private hosted zone, refused (ConflictingDomainExists) only when
    "a hosted zone with the specified name already exists and is already associated with the Amazon VPC"
    (https://docs.aws.amazon.com/Route53/latest/APIReference/API_CreateHostedZone.html); moto refused any
    second namespace on a VPC."""
    from moto.servicediscovery.exceptions import ConflictingDomainExists

    if any(n.vpc == vpc and n.name == name for n in self.namespaces.values()):
        raise ConflictingDomainExists(vpc)
    others = {key: n for key, n in self.namespaces.items() if n.vpc == vpc}
    for key in others:
        del self.namespaces[key]
    try:
        return original(self, name, creator_request_id, description, vpc, tags, properties)
    finally:
        self.namespaces.update(others)
