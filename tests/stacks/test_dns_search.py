"""A bare service name resolves from every task: the VPC's DHCP options make the Cloud Map namespace the search domain.

A Compose app calls `db`; on ECS the record is db.<namespace>. An awsvpc task's resolv.conf takes the
search list of its ENI, which is the VPC's DHCP domain (the ECS agent's pause container); a bridge
container takes its host's, which the host's DHCP client writes from the same option. So the domain
must be exactly the namespace Cloud Map answers for, one name (Amazon Linux 2023 cannot split a list),
and be the VPC's before any host or task starts. The emulator answers no DNS: these tests check the
templates and what EC2 reports, and the resolution itself is left to a real account.
"""
from __future__ import annotations

import pytest
from helpers import app_from, dks_data, resources, templates
from test_templates import props, resolve

from templates_src.compose import command, services
from templates_src.app import checks, config
from templates_src.stacks import discovery


def domain_of(tpls: dict) -> str:
    (options,) = resources(tpls["network.yaml"], "AWS::EC2::DHCPOptions").values()
    (association,) = resources(tpls["network.yaml"], "AWS::EC2::VPCDHCPOptionsAssociation").values()
    (vpc,) = resources(tpls["network.yaml"], "AWS::EC2::VPC")
    (options_id,) = resources(tpls["network.yaml"], "AWS::EC2::DHCPOptions")
    assert props(association) == {"VpcId": {"Ref": vpc}, "DhcpOptionsId": {"Ref": options_id}}
    # Without AmazonProvidedDNS the VPC's resolver, which answers the private zone, would not be asked.
    assert props(options)["DomainNameServers"] == ["AmazonProvidedDNS"]
    return props(options)["DomainName"]


def namespace_of(tpls: dict) -> str:
    (namespace,) = resources(tpls["discovery.yaml"], "AWS::ServiceDiscovery::PrivateDnsNamespace").values()
    return props(namespace)["Name"]


@pytest.mark.parametrize("namespace", [None, "shop.internal"])
def test_the_search_domain_is_the_namespace_cloud_map_answers_for(namespace):
    data = dks_data()
    if namespace:
        data["namespace"] = namespace
    app = app_from(data)
    tpls = templates(app)
    assert domain_of(tpls) == namespace_of(tpls) == discovery.namespace(app)
    assert " " not in domain_of(tpls), "one domain: Amazon Linux 2023 turns a space-separated list into one name"


def test_the_hosts_start_after_the_vpc_has_its_search_domain(dks_templates):
    # The hosts' DHCP lease carries the domain only if the association exists when they boot: the cluster
    # stack takes its subnets from the network stack, so CloudFormation creates it after the whole network.
    (group,) = resources(dks_templates["cluster.yaml"], "AWS::AutoScaling::AutoScalingGroup").values()
    file, _ = resolve(dks_templates, "cluster.yaml", props(group)["VPCZoneIdentifier"])
    assert file == "network.yaml"
    assert "DhcpOptionsAssociation" in dks_templates["network.yaml"]["Resources"]


def test_every_name_the_import_leaves_bare_has_a_record_in_the_search_domain(tmp_path):
    # temporalio/docker-compose: POSTGRES_SEEDS holds the bare name, and DB_HOST-style URLs too.
    result = services.convert({"name": "temporal", "services": {
        "postgresql": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "x"}},
        "temporal": {"image": "temporalio/auto-setup", "ports": ["7233:7233"], "depends_on": ["postgresql"],
                     "environment": {"DB": "postgres12", "POSTGRES_SEEDS": "postgresql", "DB_PORT": "5432"}},
        "ui": {"image": "temporalio/ui", "ports": ["8080:8080"],
               "environment": {"TEMPORAL_ADDRESS": "temporal:7233"}},
    }}, tmp_path, tmp_path, {})
    data, _ = command.size_cluster(result.data, tmp_path, result.file_contents)
    app = config.parse(data, base_dir=tmp_path, file_contents=result.file_contents)
    checks.validate(app)
    assert app.service("temporal").environment["POSTGRES_SEEDS"] == "postgresql"
    assert app.service("ui").environment["TEMPORAL_ADDRESS"] == "temporal:7233"
    tpls = templates(app)
    records = resources(tpls["discovery.yaml"], "AWS::ServiceDiscovery::Service").values()
    registered = {props(s)["Name"] for s in records}
    assert {"postgresql", "temporal"} <= registered
    assert domain_of(tpls) == namespace_of(tpls) == "temporal.local"
    assert any(f.key == "networks" and "temporal.local" in f.message for f in result.notes if not f.service)


def test_a_renamed_service_is_still_written_as_its_cloud_map_name(tmp_path):
    # my_db is not a DNS label: the config calls it my-db, and the bare Compose name would not resolve.
    result = services.convert({"services": {"my_db": {"image": "postgres"},
                                           "app": {"image": "app", "environment": {"DB_HOST": "my_db"}}}},
                             tmp_path, tmp_path, {})
    (app,) = [s for s in result.data["services"] if s["name"] == "app"]
    assert app["environment"]["DB_HOST"] == "{my-db.host}"


def test_the_emulated_vpc_uses_the_options_set_and_a_delete_leaves_none(aws):
    from test_emulated_deploy import ROOT, deploy

    import stacks

    ec2 = aws.client("ec2")
    before = {o["DhcpOptionsId"] for o in ec2.describe_dhcp_options()["DhcpOptions"]}
    deployment = deploy(aws)
    vpc_id = deployment.one("network.yaml", "Vpc").physical_id
    (vpc,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    (options,) = ec2.describe_dhcp_options(DhcpOptionsIds=[vpc["DhcpOptionsId"]])["DhcpOptions"]
    assert {c["Key"]: [v["Value"] for v in c["Values"]] for c in options["DhcpConfigurations"]}["domain-name"] == [
        "dks.local"]
    stacks.delete(aws, ROOT)
    assert {o["DhcpOptionsId"] for o in ec2.describe_dhcp_options()["DhcpOptions"]} == before
