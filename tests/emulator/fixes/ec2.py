"""EC2 through CloudFormation: VPCs, subnets, security groups, gateways and routes as the templates set them.

moto 5.2.5 drops a VPC's DNS flags and a subnet's MapPublicIpOnLaunch, applies no inline security group rules,
keeps the default egress rule beside listed ones, cannot delete ingress rules, gateways, attachments, routes,
route tables or associations with their stack, hides a template's route table association from
DescribeRouteTables, reads neither the public IP nor the groups of a launch template's primary interface, and
keeps an instance's primary interface after it terminates.
"""
from __future__ import annotations

from typing import Any

from moto.ec2 import models as ec2
from moto.ec2.models import instances, internet_gateways, route_tables, security_groups, subnets, vpcs, vpn_gateway

from ..resources import InvalidParameter, egress_rule, ingress_rule
from . import add, flag, replace, replace_classmethod


def _ec2(account_id: str, region_name: str) -> Any:
    return ec2.ec2_backends[account_id][region_name]


# EnableDnsSupport (default true) and EnableDnsHostnames (default false)
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-vpc.html
@replace_classmethod(vpcs.VPC, "create_from_cloudformation_json")
def _vpc_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    vpc = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    props = cloudformation_json["Properties"]
    vpc.enable_dns_support = flag(props.get("EnableDnsSupport", True))
    vpc.enable_dns_hostnames = flag(props.get("EnableDnsHostnames", False))
    return vpc


# MapPublicIpOnLaunch
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-subnet.html
@replace_classmethod(subnets.Subnet, "create_from_cloudformation_json")
def _subnet_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    subnet = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    subnet.map_public_ip_on_launch = flag(cloudformation_json["Properties"].get("MapPublicIpOnLaunch", False))
    return subnet


# "if you do not add egress rules, we add egress rules that allow all outbound ... Otherwise, we do not add them"
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html
@replace_classmethod(security_groups.SecurityGroup, "create_from_cloudformation_json")
def _security_group_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    inline = {k: props.pop(k) for k in ("SecurityGroupIngress", "SecurityGroupEgress") if k in props}
    group = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
    props.update(inline)
    backend = _ec2(account_id, region_name)
    for rule in inline.get("SecurityGroupIngress", []):
        backend.authorize_security_group_ingress(group.id, vpc_id=group.vpc_id, **ingress_rule(rule))
    if "SecurityGroupEgress" in inline:
        # Listed egress rules replace the default allow-all rule.
        backend.revoke_security_group_egress(group.id, "-1", None, None, [{"CidrIp": "0.0.0.0/0"}])
        for rule in inline["SecurityGroupEgress"]:
            backend.authorize_security_group_egress(group.id, vpc_id=group.vpc_id, **egress_rule(rule))
    return group


# A rule added to an existing group; Ref is its ID
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroupingress.html
@replace_classmethod(security_groups.SecurityGroupIngress, "create_from_cloudformation_json")
def _ingress_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    props = cloudformation_json["Properties"]
    group = _ec2(account_id, region_name).get_security_group_from_id(props["GroupId"])
    if group is None:
        raise InvalidParameter(f"The security group '{props['GroupId']}' does not exist")
    rule = ingress_rule(props)
    _ec2(account_id, region_name).authorize_security_group_ingress(group.id, **rule)
    resource = cls(group, props)
    resource.rule = rule
    resource.id = f"{group.id}-ingress-{resource_name}"
    return resource


@add(security_groups.SecurityGroupIngress, "delete")
def _ingress_delete(self, account_id, region_name):
    backend = _ec2(account_id, region_name)
    if backend.get_security_group_from_id(self.security_group.id) is not None:
        backend.revoke_security_group_ingress(self.security_group.id, **self.rule)


security_groups.SecurityGroupIngress.physical_resource_id = property(lambda self: self.id)


# The deletes below are what a stack's delete does to each type it made; moto 5.2.5 has none for them.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html
@add(internet_gateways.InternetGateway, "delete")
def _gateway_delete(self, account_id, region_name):
    _ec2(account_id, region_name).delete_internet_gateway(self.id)


@add(vpn_gateway.VPCGatewayAttachment, "delete")
def _attachment_delete(self, account_id, region_name):
    backend = _ec2(account_id, region_name)
    gateway = backend.internet_gateways.get(self.gateway_id)
    if gateway is not None and gateway.vpc is not None and gateway.vpc.id == self.vpc_id:
        backend.detach_internet_gateway(self.gateway_id, self.vpc_id)


@add(route_tables.RouteTable, "delete")
def _route_table_delete(self, account_id, region_name):
    _ec2(account_id, region_name).delete_route_table(self.id)


@add(route_tables.Route, "delete")
def _route_delete(self, account_id, region_name):
    backend = _ec2(account_id, region_name)
    if self.route_table.id in backend.route_tables:
        backend.delete_route(self.route_table.id, self.destination_cidr_block)


# Ref is the association ID
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-subnetroutetableassociation.html
@replace_classmethod(subnets.SubnetRouteTableAssociation, "create_from_cloudformation_json")
def _association_create(original, cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    # moto records the association apart from the route table, where DescribeRouteTables never shows it.
    props = cloudformation_json["Properties"]
    association = cls(props["RouteTableId"], props["SubnetId"])
    association.association_id = _ec2(account_id, region_name).associate_route_table(
        props["RouteTableId"], subnet_id=props["SubnetId"])
    return association


subnets.SubnetRouteTableAssociation.physical_resource_id = property(lambda self: self.association_id)


@add(subnets.SubnetRouteTableAssociation, "delete")
def _association_delete(self, account_id, region_name):
    _ec2(account_id, region_name).disassociate_route_table(self.association_id)


# AssociatePublicIpAddress, Groups
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-ec2-launchtemplate-networkinterface.html
@replace(instances.InstanceBackend, "run_instances")
def _run_instances(original, self, image_id, count, user_data, security_group_names, **kwargs):
    """An instance launched from a launch template gets what the template's primary interface asks for: a
    public IP (AssociatePublicIpAddress) and its security groups (Groups). moto reads neither, so an Auto
    Scaling group's hosts had no public IP and the default group."""
    if kwargs.get("launch_template"):
        data = self._get_template_from_args(kwargs["launch_template"]).data
        primary = next((nic for nic in data.get("NetworkInterfaces") or [] if int(nic.get("DeviceIndex", 0)) == 0),
                       {})
        if kwargs.get("associate_public_ip") is None and "AssociatePublicIpAddress" in primary:
            kwargs["associate_public_ip"] = flag(primary["AssociatePublicIpAddress"])
        if not kwargs.get("security_group_ids") and primary.get("Groups"):
            kwargs["security_group_ids"] = list(primary["Groups"])
    return original(self, image_id, count, user_data, security_group_names, **kwargs)


# DeleteOnTermination
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceNetworkInterfaceSpecification.html
@replace(instances.Instance, "terminate")
def _instance_terminate(original, self):
    # The primary interface EC2 creates at launch goes with the instance; moto keeps it.
    primary = self.nics.get(0)
    if primary is not None:
        primary.delete_on_termination = True
    return original(self)
