"""A certificate for a domain and the records of its Route 53 zone, as CloudFormation makes them.

moto 5.2.5 has no CloudFormation type for AWS::CertificateManager::Certificate. This one requests
the certificate from moto's ACM backend (so DescribeCertificate and ListCertificates see it), with
the stack's tags, which CloudFormation propagates to every resource that takes tags. With DNS
validation and a HostedZoneId for each of its names, CloudFormation writes the validation CNAME
into that zone and completes the resource once ACM has issued the certificate:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-certificatemanager-certificate.html
Here the CNAME ACM asks for is written into the zone and the certificate is ISSUED at once. Without
a HostedZoneId, CloudFormation waits for somebody to write the record (the certificate stays
PENDING_VALIDATION); the emulator cannot wait, so it fails the resource and says why, as it does for
a zone the account does not have, a private zone, or a zone that does not hold the name.

Deleting the resource deletes the certificate and leaves the validation CNAME in the zone: AWS
does the same, because every certificate for the same name in the account is validated (and
renewed) through that one record:
https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1603
https://github.com/aws/aws-cdk/pull/18311

An alias record to a load balancer names its CanonicalHostedZoneID, an attribute moto 5.2.5 does not
resolve (GetAtt leaves the expression's text in the record); it resolves here to the value
DescribeLoadBalancers reports. moto's own AWS::Route53::RecordSet writes any name into any zone, over
an existing record too.
Route 53 refuses both, and so the record's create fails: a name outside the zone ("not permitted
in zone") and a CREATE of a name and type that exist ("but it already exists"):
https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html
"""
from __future__ import annotations

from typing import Any

from moto.acm.models import acm_backends
from moto.cloudformation import models as cfn
from moto.core.common_models import CloudFormationModel
from moto.elbv2 import models as elbv2
from moto.route53 import models as route53
from moto.utilities.utils import get_partition

from .resources import InvalidParameter, Resource

VALIDATION_TTL = 300


def zone_of(account_id: str, region_name: str, zone_id: str) -> route53.FakeZone:
    backend = route53.route53_backends[account_id][get_partition(region_name)]
    try:
        return backend.get_hosted_zone(zone_id)
    except route53.NoSuchHostedZone:
        raise InvalidParameter(f"No hosted zone found with ID: {zone_id}") from None


def bare(name: str) -> str:
    return name.rstrip(".").lower()


def holds(zone: route53.FakeZone, name: str) -> bool:
    """Whether the zone's domain holds the name (the zone's own name or a name below it)."""
    return bare(name) == bare(zone.name) or bare(name).endswith("." + bare(zone.name))


def stack_tags(account_id: str, region_name: str, stack_id: str | None) -> dict[str, str]:
    """The tags CloudFormation propagates: the root stack's, then the resource's own stack's."""
    backend = cfn.cloudformation_backends[account_id][region_name]
    stack = backend.stacks.get(stack_id or "")
    if stack is None:
        return {}
    root = backend.stacks.get(getattr(stack, "root_id", None) or "") or stack
    return {**root.tags, **stack.tags}


class Certificate(Resource, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CertificateManager::Certificate"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        names = [props["DomainName"], *props.get("SubjectAlternativeNames", [])]
        private = props.get("CertificateAuthorityArn")
        zones = {} if private else _validation_zones(account_id, region_name, props, names)
        tags = {**stack_tags(account_id, region_name, kwargs.get("StackId")),
                **{t["Key"]: t["Value"] for t in props.get("Tags", [])}}
        acm = acm_backends[account_id][region_name]
        self = cls(account_id, region_name)
        self.id = acm.request_certificate(
            props["DomainName"], idempotency_token=None, subject_alt_names=names[1:],
            tags=[{"Key": k, "Value": v} for k, v in tags.items()], cert_authority_arn=private)
        certificate = acm.get_certificate(self.id)
        for option in certificate.describe()["Certificate"].get("DomainValidationOptions", []):
            record = option["ResourceRecord"]
            zones[option["DomainName"]].upsert_rrset({"Name": record["Name"], "Type": record["Type"],
                                                     "TTL": VALIDATION_TTL, "ResourceRecords": [record["Value"]]})
        certificate.status = "ISSUED"  # ACM found the CNAME: what CloudFormation waits for
        return self

    def remove(self) -> None:
        acm = acm_backends[self.account_id][self.region_name]
        if self.id in acm._certificates:
            acm.delete_certificate(self.id)


def _validation_zones(account_id: str, region_name: str, props: dict, names: list[str]) -> dict[str, Any]:
    """Each name's hosted zone for DNS validation, or the reason CloudFormation would never finish."""
    if props.get("ValidationMethod") != "DNS":
        raise InvalidParameter("the emulator sends no validation e-mail: use ValidationMethod DNS with a "
                               "HostedZoneId in DomainValidationOptions")
    options = {option["DomainName"]: option for option in props.get("DomainValidationOptions", [])}
    zones = {}
    for name in names:
        zone_id = options.get(name, {}).get("HostedZoneId")
        if not zone_id:
            raise InvalidParameter(f"{name} has no HostedZoneId in DomainValidationOptions: CloudFormation would wait "
                                   "(the certificate PENDING_VALIDATION) until its CNAME is written by hand; the "
                                   "emulator cannot wait")
        zone = zone_of(account_id, region_name, zone_id)
        if zone.private_zone:
            raise InvalidParameter(f"hosted zone {zone_id} is private: a public certificate is validated through "
                                   "public DNS")
        if not holds(zone, name):
            raise InvalidParameter(f"hosted zone {zone_id} ({zone.name}) does not hold {name}: the validation "
                                   "record cannot be written there")
        zones[name] = zone
    return zones


_record_create = route53.RecordSet.__dict__["create_from_cloudformation_json"].__func__


def _record_set_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    zone = (route53.route53_backends[account_id][get_partition(region_name)].get_hosted_zone_by_name(
        props["HostedZoneName"]) if props.get("HostedZoneName") else None) or zone_of(
        account_id, region_name, props.get("HostedZoneId", ""))
    name, kind = props["Name"], props["Type"]
    if not holds(zone, name):
        raise InvalidParameter(f"RRSet with DNS name {bare(name)}. is not permitted in zone {zone.name}")
    if any(bare(r.name) == bare(name) and r.type == kind and r.set_identifier == props.get("SetIdentifier")
           for r in zone.rrsets):
        raise InvalidParameter(f"Tried to create resource record set [name='{bare(name)}.', type='{kind}'] but it "
                               "already exists")
    return _record_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)


route53.RecordSet.create_from_cloudformation_json = classmethod(_record_set_create)


_balancer_attribute = elbv2.FakeLoadBalancer.get_cfn_attribute


def _load_balancer_attribute(self, attribute_name: str) -> Any:
    if attribute_name == "CanonicalHostedZoneID":
        return self.canonical_hosted_zone_id
    return _balancer_attribute(self, attribute_name)


elbv2.FakeLoadBalancer.get_cfn_attribute = _load_balancer_attribute
