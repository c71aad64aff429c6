"""CloudFormation resource types stock moto 5.2.5 skips, built on moto's own service backends.

moto finds CloudFormation types as the direct subclasses of CloudFormationModel, so defining these
classes is what registers them. Each one creates its resource through the backend the service's
own API uses, so describe/list calls see it; each one deletes it again. None of them pretends more
than the API would show: nothing here runs tasks or answers DNS.
"""
from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.ec2.models import ec2_backends
from moto.ecs.models import ecs_backends
from moto.route53.models import route53_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.servicediscovery.models import servicediscovery_backends
from moto.utilities.utils import get_partition

# Maps whose keys the user chose (log driver options, labels): kept as written.
FREE_FORM = ("Options", "DockerLabels", "SystemControls")


# Names the API does not spell as the template's with a lowercase first letter.
RENAMED = {"EFSVolumeConfiguration": "efsVolumeConfiguration", "FilesystemId": "fileSystemId", "IAM": "iam"}


def camel(data: Any) -> Any:
    """CloudFormation's PascalCase property names as the service API's camelCase."""
    if isinstance(data, dict):
        return {RENAMED.get(key, key[:1].lower() + key[1:]): value if key in FREE_FORM else camel(value)
                for key, value in data.items()}
    if isinstance(data, list):
        return [camel(item) for item in data]
    return data


def ecs_tags(tags: list[dict] | None) -> list[dict] | None:
    """CloudFormation Tags as ECS takes them (lowercase key/value)."""
    return [{"key": t["Key"], "value": t["Value"]} for t in tags] if tags else None


class Resource:
    """What every type below shares: no name property, `id` as what Ref answers, attributes from a
    table, delete via `remove`.

    A mixin, not a CloudFormationModel: moto registers only direct subclasses of that.
    """

    attributes: tuple[str, ...] = ()

    def __init__(self, account_id: str, region_name: str):
        self.account_id = account_id
        self.region_name = region_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return getattr(self, attribute_name.lower())


    @property
    def physical_resource_id(self) -> str:
        return self.id

    def delete(self, account_id: str, region_name: str) -> None:
        self.remove()

    def remove(self) -> None:
        raise NotImplementedError


class PrivateDnsNamespace(Resource, CloudFormationModel):
    attributes = ("Id", "Arn", "HostedZoneId")

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ServiceDiscovery::PrivateDnsNamespace"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        self = cls(account_id, region_name)
        backend = servicediscovery_backends[account_id][region_name]
        before = set(backend.namespaces)
        backend.create_private_dns_namespace(
            name=props["Name"],
            creator_request_id=None,
            description=props.get("Description"),
            vpc=props["Vpc"],
            tags=props.get("Tags", []),
            properties=camel(props.get("Properties", {})),
        )
        (self.id,) = set(backend.namespaces) - before
        namespace = backend.namespaces[self.id]
        self.arn = namespace.arn
        self.hostedzoneid = namespace.dns_properties["HostedZoneId"]
        return self


    def remove(self) -> None:
        backend = servicediscovery_backends[self.account_id][self.region_name]
        in_use = [s.name for s in backend.services.values() if s.namespace_id == self.id]
        if in_use:
            raise ResourceInUse(f"Namespace {self.id} has services: {', '.join(sorted(in_use))}")
        if self.id in backend.namespaces:
            backend.delete_namespace(self.id)
        # Cloud Map deletes the private hosted zone it made for the namespace.
        route53 = route53_backends[self.account_id][get_partition(self.region_name)]
        if self.hostedzoneid.rsplit("/", 1)[-1] in route53.zones:
            route53.delete_hosted_zone(self.hostedzoneid)


class DiscoveryService(Resource, CloudFormationModel):
    attributes = ("Id", "Arn", "Name")

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ServiceDiscovery::Service"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = servicediscovery_backends[account_id][region_name]
        namespace_id = props["NamespaceId"]
        backend.get_namespace(namespace_id)  # NamespaceNotFound, as the API would answer
        service = backend.create_service(
            name=props.get("Name", resource_name),
            namespace_id=namespace_id,
            creator_request_id=None,
            description=props.get("Description"),
            dns_config=_discovery_dns(props.get("DnsConfig"), namespace_id),
            health_check_config=props.get("HealthCheckConfig"),
            health_check_custom_config=props.get("HealthCheckCustomConfig"),
            tags=props.get("Tags", []),
            service_type=props.get("Type"),
        )
        self = cls(account_id, region_name)
        self.id, self.arn, self.name = service.id, service.arn, service.name
        return self


    def remove(self) -> None:
        backend = servicediscovery_backends[self.account_id][self.region_name]
        service = backend.services.get(self.id)
        if service is not None and service.instances:
            raise ResourceInUse(f"Service {self.id} has registered instances")
        backend.delete_service(self.id)


def _discovery_dns(dns_config: dict | None, namespace_id: str) -> dict | None:
    if dns_config is None:
        return None
    return {"NamespaceId": namespace_id, **dns_config}


class CapacityProvider(Resource, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ECS::CapacityProvider"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = ecs_backends[account_id][region_name]
        name = props.get("Name", resource_name)
        if backend._get_provider(name):
            raise ResourceInUse(f"Capacity provider {name} already exists")
        asg = camel(props["AutoScalingGroupProvider"])
        _autoscaling_group(account_id, region_name, asg["autoScalingGroupArn"])
        provider = backend.create_capacity_provider(name, asg, ecs_tags(props.get("Tags")))
        self = cls(account_id, region_name)
        self.id = self.name = provider.name
        return self


    def remove(self) -> None:
        backend = ecs_backends[self.account_id][self.region_name]
        users = [c.name for c in backend.clusters.values()
                 if c.status == "ACTIVE" and self.name in (c.capacity_providers or [])]
        if users:
            raise ResourceInUse(f"Capacity provider {self.name} is associated with cluster {users[0]}")
        if backend._get_provider(self.name):
            backend.delete_capacity_provider(self.name)


def _autoscaling_group(account_id: str, region_name: str, name_or_arn: str) -> None:
    from moto.autoscaling.models import autoscaling_backends

    groups = autoscaling_backends[account_id][region_name].autoscaling_groups.values()
    if not any(name_or_arn in (g.name, g.arn) for g in groups):
        raise InvalidParameter(f"Auto Scaling group {name_or_arn} does not exist")


class CapacityProviderAssociations(Resource, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ECS::ClusterCapacityProviderAssociations"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = ecs_backends[account_id][region_name]
        providers = props["CapacityProviders"]
        for name in providers:
            if not backend._get_provider(name) and name not in ("FARGATE", "FARGATE_SPOT"):
                raise InvalidParameter(f"Capacity provider {name} does not exist")
        strategy = camel(props["DefaultCapacityProviderStrategy"])
        for item in strategy:
            if item["capacityProvider"] not in providers:
                raise InvalidParameter(f"{item['capacityProvider']} is in the default strategy "
                                       "but not associated with the cluster")
        backend.put_cluster_capacity_providers(props["Cluster"], providers, strategy)
        self = cls(account_id, region_name)
        self.id = self.cluster = props["Cluster"]
        return self


    def remove(self) -> None:
        backend = ecs_backends[self.account_id][self.region_name]
        cluster = backend.clusters.get(self.cluster.split("/")[-1])
        if cluster is not None:
            backend.put_cluster_capacity_providers(cluster.name, [], [])


class Secret(Resource, CloudFormationModel):
    attributes = ("Id",)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = secretsmanager_backends[account_id][region_name]
        value = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if (value is None) == (generate is None):
            raise InvalidParameter("Specify exactly one of SecretString and GenerateSecretString")
        if generate is not None:
            value = _generated(backend, generate)
        created = backend.create_secret(
            name=props.get("Name", resource_name),
            secret_string=value,
            secret_binary=None,
            description=props.get("Description"),
            tags=props.get("Tags"),
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        self = cls(account_id, region_name)
        self.id = self.arn = _json(created)["ARN"]
        return self


    def remove(self) -> None:
        backend = secretsmanager_backends[self.account_id][self.region_name]
        if backend._is_valid_identifier(self.arn):
            # CloudFormation deletes a secret at once, without a recovery window.
            backend.delete_secret(self.arn, None, True)


def _generated(backend: Any, spec: dict) -> str:
    import json

    password = backend.get_random_password(
        password_length=spec.get("PasswordLength", 32),
        exclude_characters=spec.get("ExcludeCharacters", ""),
        exclude_numbers=spec.get("ExcludeNumbers", False),
        exclude_punctuation=spec.get("ExcludePunctuation", False),
        exclude_uppercase=spec.get("ExcludeUppercase", False),
        exclude_lowercase=spec.get("ExcludeLowercase", False),
        include_space=spec.get("IncludeSpace", False),
        require_each_included_type=spec.get("RequireEachIncludedType", True),
    )
    password = _json(password)["RandomPassword"]
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if (template is None) != (key is None):
        raise InvalidParameter("SecretStringTemplate and GenerateStringKey go together")
    if template is None:
        return password
    return json.dumps({**json.loads(template), key: password})


def _json(answer: Any) -> dict:
    import json

    return json.loads(answer) if isinstance(answer, str) else answer


class SecurityGroupEgress(Resource, CloudFormationModel):
    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::SecurityGroupEgress"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        self = cls(account_id, region_name)
        self.group_id = props["GroupId"]
        self.rule = egress_rule(props)
        ec2_backends[account_id][region_name].authorize_security_group_egress(self.group_id, **self.rule)
        self.id = f"{self.group_id}-egress-{resource_name}"
        return self


    def remove(self) -> None:
        backend = ec2_backends[self.account_id][self.region_name]
        if backend.get_security_group_from_id(self.group_id) is not None:
            backend.revoke_security_group_egress(self.group_id, **self.rule)


class DhcpOptions(Resource, CloudFormationModel):
    """A DHCP options set, as CreateDhcpOptions makes it (describe-dhcp-options shows it)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::DHCPOptions"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        self = cls(account_id, region_name)
        backend = ec2_backends[account_id][region_name]
        if not (props.get("DomainName") or props.get("DomainNameServers") or props.get("NtpServers")
                or props.get("NetbiosNameServers")):
            raise InvalidParameter("A DHCP options set needs at least one option")
        domain = props.get("DomainName")
        options = backend.create_dhcp_options(
            domain_name_servers=props.get("DomainNameServers"), domain_name=[domain] if domain else None,
            ntp_servers=props.get("NtpServers"), netbios_name_servers=props.get("NetbiosNameServers"),
            netbios_node_type=props.get("NetbiosNodeType"))
        if props.get("Tags"):
            backend.create_tags([options.id], {t["Key"]: t["Value"] for t in props["Tags"]})
        self.id = options.id
        return self

    def remove(self) -> None:
        backend = ec2_backends[self.account_id][self.region_name]
        if self.id in backend.dhcp_options_sets:
            backend.delete_dhcp_options_set(self.id)  # refused (DependencyViolation) while a VPC uses it


class DhcpOptionsAssociation(Resource, CloudFormationModel):
    """The VPC's DHCP options set; deleting it gives the VPC no options set again (AWS's "default" when the
    account has none of its own)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::VPCDHCPOptionsAssociation"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        self = cls(account_id, region_name)
        backend = ec2_backends[account_id][region_name]
        self.vpc_id, self.options_id = props["VpcId"], props["DhcpOptionsId"]
        (options,) = backend.describe_dhcp_options([self.options_id])
        vpc = backend.get_vpc(self.vpc_id)
        # A VPC has one options set: the one it had is no longer assigned (moto left it marked in use,
        # so an update replacing the set could never delete the old one).
        backend.disassociate_dhcp_options(vpc)
        backend.associate_dhcp_options(options, vpc)
        self.id = f"{self.options_id}|{self.vpc_id}"
        return self

    def remove(self) -> None:
        backend = ec2_backends[self.account_id][self.region_name]
        vpc = backend.vpcs.get(self.vpc_id)
        current = getattr(vpc, "dhcp_options", None)
        if vpc is not None and current is not None and current.id == self.options_id:
            backend.disassociate_dhcp_options(vpc)


def rule(props: dict, peer: str) -> dict:
    """One security group rule of CloudFormation as keyword arguments of moto's EC2 backend.

    peer names the property holding the other security group: SourceSecurityGroupId for ingress,
    DestinationSecurityGroupId for egress.
    """
    group, cidr = props.get(peer), props.get("CidrIp")
    if (group is None) == (cidr is None):
        raise InvalidParameter(f"A security group rule needs exactly one of CidrIp and {peer}")
    described = {"Description": props["Description"]} if "Description" in props else {}
    return {
        "ip_protocol": str(props["IpProtocol"]),
        "from_port": props.get("FromPort"),
        "to_port": props.get("ToPort"),
        "ip_ranges": [{"CidrIp": cidr, **described}] if cidr else [],
        "source_groups": [{"GroupId": group, **described}] if group else [],
    }


def egress_rule(props: dict) -> dict:
    return rule(props, "DestinationSecurityGroupId")


def ingress_rule(props: dict) -> dict:
    return rule(props, "SourceSecurityGroupId")


class EmulatorError(Exception):
    """A refusal the real service would answer with; moto reports it as the resource's failure."""


class ResourceInUse(EmulatorError):
    pass


class InvalidParameter(EmulatorError):
    pass
