"""Services that all reach each other share one security group, so a Compose network of many services fits one stack.

Written pair by pair, n services on one Compose network need n*(n-1) ingress and egress rules; a set of three
or more services that reach each other both ways is written as one group each member's task carries (at most
five groups on a task). Every check follows the packets through the rendered groups as EC2 does.
"""
from __future__ import annotations

import pytest

import inventory
import stacks
import test_emulated_deploy as emulated
from helpers import resources, templates, write_build
from test_reach import connects, imported_app, interfaces
from test_templates import ecs_services, props

from templates_src import render
from templates_src.app import peer_groups, quotas


def exposing(*ports: int) -> dict:
    return {"image": "example/app", "expose": [str(port) for port in ports]}


def security_groups(tpls: dict, name: str) -> list:
    _, svc = ecs_services(tpls["services.yaml"])[name]
    return props(svc)["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]


def test_one_network_of_eight_services_is_one_shared_group_and_every_pair_connects_on_its_ports(tmp_path):
    services = {f"svc{n}": exposing(7000 + n) for n in range(8)}
    services["svc0"] = exposing(7000, 9000)
    app, _ = imported_app(services, tmp_path)
    (group,) = peer_groups.peer_groups(app)
    assert group.members == tuple(sorted(services))
    tpls = templates(app)
    for client in services:
        assert len(security_groups(tpls, client)) == 2, "its own group and the shared one"
        for target in services:
            if client != target:
                for port in (app.service(target).port, *app.service(target).ports):
                    assert connects(tpls, client, target, port), f"{client} -> {target}:{port}"
                assert not connects(tpls, client, target, 9000 if target != "svc0" else 7001), \
                    "a member is reached only on its own ports, not on another member's"
    network = tpls["network.yaml"]
    ingress = resources(network, "AWS::EC2::SecurityGroupIngress")
    assert len(ingress) == 9, "one per member and port, not per pair"
    assert len(resources(network, "AWS::EC2::SecurityGroupEgress")) == 9, "one per distinct port"


def test_services_that_do_not_all_reach_each_other_keep_their_pair_rules(tmp_path):
    # A chain: the web calls the api, the api the db; nothing calls back, so no set reaches all of itself.
    app, _ = imported_app({
        "db": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "x"}, "networks": ["back"]},
        "api": {**exposing(8080), "depends_on": ["db"], "networks": ["back", "front"]},
        "web": {**exposing(3000), "depends_on": ["api"], "networks": ["front"]},
    }, tmp_path, networks={"back": {}, "front": {}})
    assert peer_groups.peer_groups(app) == ()
    tpls = templates(app)
    assert all(len(security_groups(tpls, name)) == 1 for name in ("db", "api", "web"))
    assert "PeerSecurityGroupIds" not in tpls["network.yaml"].get("Outputs", {})
    assert connects(tpls, "web", "api", 8080) and connects(tpls, "api", "db", 5432)


def test_a_service_on_more_networks_than_its_task_has_groups_for_keeps_pair_rules_for_the_rest(tmp_path):
    # The hub shares five networks of three: a task carries at most five groups, its own and four shared.
    nets = [f"net{n}" for n in range(5)]
    services = {"hub": {**exposing(7000), "networks": nets}}
    for n, net in enumerate(nets):
        services[f"a{n}"] = {**exposing(7100 + n), "networks": [net]}
        services[f"b{n}"] = {**exposing(7200 + n), "networks": [net]}
    app, _ = imported_app(services, tmp_path, networks={net: {} for net in nets})
    assert len(peer_groups.groups_of(app, "hub")) == peer_groups.PER_TASK
    assert len(peer_groups.peer_groups(app)) == 4
    tpls = templates(app)
    assert len(security_groups(tpls, "hub")) == 5
    places = interfaces(tpls)
    for n in range(5):
        a, b = f"a{n}", f"b{n}"
        for client, target in ((a, "hub"), ("hub", a), (a, b), (b, a), ("hub", b)):
            port = app.service(target).port
            assert connects(tpls, client, target, port), f"{client} -> {target}:{port}"
        other = f"a{(n + 1) % 5}"
        assert not connects(tpls, a, other, app.service(other).port), "networks stay apart"
    assert len(places["hub"].groups) == 5


def test_a_network_whose_ports_outgrow_one_group_is_refused_in_a_sentence(tmp_path):
    services = {f"svc{n}": exposing(*range(8000 + 10 * n, 8000 + 10 * n + 10)) for n in range(7)}
    app, _ = imported_app(services, tmp_path)
    with pytest.raises(quotas.QuotaError) as refused:
        render.render(app, "app.yaml")
    (problem,) = [p for p in refused.value.problems if "outbound" in p]
    # 70 ports and the rule that matches nothing
    assert "services that all reach each other" in problem and "71 outbound rules" in problem
    assert "EC2 allows 60" in problem


def test_an_emulated_deploy_gives_each_task_the_shared_group_that_admits_it_and_the_delete_takes_it(aws, tmp_path):
    services = {f"svc{n}": exposing(7000 + n) for n in range(4)}
    app, _ = imported_app(services, tmp_path / "project")
    build = write_build(app, tmp_path / "build")
    name, bucket = app.name, f"{app.name}-templates"
    before = inventory.take(aws)
    stacks.upload(aws, bucket, "app/", build)
    assert stacks.create(aws, f"{name}-registry", stacks.template_url(aws, bucket, "app/registry.yaml"))[
        "StackStatus"] == "CREATE_COMPLETE"
    root = stacks.create(aws, name, stacks.template_url(aws, bucket, "app/main.yaml"),
                         {"QSS3BucketName": bucket, "QSS3KeyPrefix": "app/"})
    assert root["StackStatus"] == "CREATE_COMPLETE", emulated.failure_events(aws, name)
    ec2, ecs = aws.client("ec2"), aws.client("ecs")
    (cluster,) = ecs.list_clusters()["clusterArns"]
    arns = ecs.list_services(cluster=cluster)["serviceArns"]
    described = ecs.describe_services(cluster=cluster, services=arns)["services"]
    carried = {svc["serviceName"]: svc["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"]
               for svc in described}
    assert set(carried) == set(services) and all(len(groups) == 2 for groups in carried.values())
    (shared,) = set.intersection(*(set(groups) for groups in carried.values()))
    (group,) = ec2.describe_security_groups(GroupIds=[shared])["SecurityGroups"]
    to_itself = {rule["FromPort"] for rule in group["IpPermissionsEgress"]
                 if [pair["GroupId"] for pair in rule.get("UserIdGroupPairs", [])] == [shared]}
    assert to_itself == {7000, 7001, 7002, 7003}
    for svc, groups in carried.items():
        (own,) = [g for g in groups if g != shared]
        (described_own,) = ec2.describe_security_groups(GroupIds=[own])["SecurityGroups"]
        admits = {rule["FromPort"] for rule in described_own["IpPermissions"]
                  if shared in [pair["GroupId"] for pair in rule.get("UserIdGroupPairs", [])]}
        assert admits == {app.service(svc).port}, svc

    stacks.delete(aws, name)
    stacks.delete(aws, f"{name}-registry")
    stacks.empty_bucket(aws, bucket)
    stacks.drop_retained(aws, before)
    assert inventory.difference(before, inventory.take(aws)) == {}
