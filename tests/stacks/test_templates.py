"""Properties of the generated CloudFormation templates.

Part 1 checks the default DKS templates requirement by requirement; Part 2 renders variants of the
default config (one field changed) and checks both what changed and that cfn-lint accepts them.

Cross-stack values are followed the way CloudFormation follows them: a child's `Ref Param` (or
`Fn::Select [i, Ref Param]`) is fed by the root's nested-stack Parameters, which point at a
sibling's output, whose value (or the i-th item of its Fn::Join) names the producing resource.
Tests resolve wiring that way instead of trusting logical-ID naming, so an off-by-one list index
or a miswired parameter fails here even when every template is valid on its own.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess

import pytest
from helpers import BUILD, app_from, cfn_lint, dks_data, resources, service, templates, write_build
from templates_src.app import config

# --- helpers: reading templates ------------------------------------------------------------------

SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")  # ${Name} or ${Res.Attr}; ${!Literal} is an escape
URL_PREFIX = "https://${QSS3BucketName}.s3.${AWS::Region}.${AWS::URLSuffix}/${QSS3KeyPrefix}"


def props(resource: dict) -> dict:
    return resource.get("Properties", {})


def depends_on(resource: dict) -> set[str]:
    value = resource.get("DependsOn", [])
    return {value} if isinstance(value, str) else set(value)


def walk(node):
    """Every dict and list inside node, node included."""
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from walk(child)


def dependencies(template: dict, logical_id: str) -> set[str]:
    """Resources `logical_id` depends on: DependsOn, Ref, Fn::GetAtt and ${X} in Fn::Sub.

    This is the graph CloudFormation creates in and deletes in reverse.
    """
    resource = template["Resources"][logical_id]
    found = set(depends_on(resource))

    def visit(node):
        if isinstance(node, dict):
            if len(node) == 1:
                (key, value), = node.items()
                if key == "Ref":
                    found.add(value)
                    return
                if key == "Fn::GetAtt":
                    found.add(value[0] if isinstance(value, list) else value.split(".")[0])
                    return
                if key == "Fn::Sub":
                    text, variables = (value, {}) if isinstance(value, str) else value
                    # A name in the variable map shadows the resource of that name inside the string.
                    found.update(n.split(".")[0] for n in SUB_VARIABLE.findall(text) if n not in variables)
                    visit(variables)
                    return
            for item in node.values():
                visit(item)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(resource.get("Properties", {}))
    return found & set(template["Resources"])


def child_files(main: dict) -> dict[str, str]:
    """Nested stack logical ID -> file name of its template (S3 Fn::Sub URL or local ./file)."""
    out = {}
    for logical_id, stack in resources(main, "AWS::CloudFormation::Stack").items():
        url = props(stack)["TemplateURL"]
        out[logical_id] = url["Fn::Sub"].rsplit("}", 1)[-1] if isinstance(url, dict) else url.removeprefix("./")
    return out


def stack_of(main: dict, file: str) -> str:
    return next(lid for lid, f in child_files(main).items() if f == file)


def resolve(tpls: dict[str, dict], file: str, expr) -> tuple[str, object]:
    """Follow a child-stack parameter to what feeds it: (file, expression) in the producing stack."""
    index = None
    if isinstance(expr, dict) and set(expr) == {"Fn::Select"}:
        index, expr = expr["Fn::Select"]
    if (file != "main.yaml" and isinstance(expr, dict) and set(expr) == {"Ref"}
            and expr["Ref"] in tpls[file].get("Parameters", {})):
        main = tpls["main.yaml"]
        source = props(main["Resources"][stack_of(main, file)])["Parameters"][expr["Ref"]]
        if "Fn::GetAtt" in source:
            stack, attribute = source["Fn::GetAtt"]
            producer = child_files(main)[stack]
            value = tpls[producer]["Outputs"][attribute.removeprefix("Outputs.")]["Value"]
            if isinstance(value, dict) and "Fn::If" in value:  # the new resource's, or a kept one's (kept.py)
                value = value["Fn::If"][1]
            if index is not None:
                delimiter, items = value["Fn::Join"]
                assert delimiter == ",", f"{attribute} is not a comma-joined list"
                value = items[int(index)]
            return producer, value
        return "main.yaml", source if index is None else {"Fn::Select": [index, source]}
    return file, expr if index is None else {"Fn::Select": [index, expr]}


def ref_target(tpls: dict, file: str, expr) -> tuple[str, str]:
    """The (file, logical ID) a wired value finally names with Ref or Fn::GetAtt."""
    where, value = resolve(tpls, file, expr)
    if "Ref" in value:
        return where, value["Ref"]
    return where, value["Fn::GetAtt"][0]


def task_definitions(t: dict) -> dict[str, dict]:
    """Container name -> task definition properties (one container per task)."""
    out = {}
    for task in resources(t, "AWS::ECS::TaskDefinition").values():
        containers = props(task)["ContainerDefinitions"]
        assert len(containers) == 1
        out[containers[0]["Name"]] = props(task)
    return out


def ecs_services(t: dict) -> dict[str, tuple[str, dict]]:
    """ServiceName -> (logical ID, resource)."""
    return {props(r)["ServiceName"]: (lid, r) for lid, r in resources(t, "AWS::ECS::Service").items()}


def container(t: dict, name: str) -> dict:
    return task_definitions(t)[name]["ContainerDefinitions"][0]


def environment(t: dict, name: str) -> dict[str, object]:
    return {e["Name"]: e["Value"] for e in container(t, name).get("Environment", [])}


def group_ref(value) -> str:
    """Logical ID of a security group named by Ref or Fn::GetAtt [X, GroupId]."""
    return value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]


def sg_rules(tpls: dict, direction: str) -> list[dict]:
    """Every ingress or egress rule of every template, inline or standalone, with its group.

    direction is "Ingress" or "Egress"; each rule gets `_file` and `_group` (the group it belongs to).
    """
    rules = []
    for file, t in tpls.items():
        for lid, group in resources(t, "AWS::EC2::SecurityGroup").items():
            inline = props(group).get(f"SecurityGroup{direction}", [])
            rules += [{**rule, "_file": file, "_group": lid} for rule in inline]
        for rule in resources(t, f"AWS::EC2::SecurityGroup{direction}").values():
            rules.append({**props(rule), "_file": file, "_group": group_ref(props(rule)["GroupId"])})
    return rules


def is_cidr_rule(rule: dict) -> bool:
    return any(k in rule for k in ("CidrIp", "CidrIpv6", "SourcePrefixListId", "DestinationPrefixListId"))


def service_group(tpls: dict, name: str) -> str:
    """Logical ID (in network.yaml) of the security group the ECS service `name`'s connections come from:
    its tasks' own (awsvpc), or the hosts' (a bridge container uses its host's interface)."""
    _, svc = ecs_services(tpls["services.yaml"])[name]
    if "NetworkConfiguration" not in props(svc):
        assert task_definitions(tpls["services.yaml"])[name]["NetworkMode"] == "bridge"
        return host_group(tpls)
    groups = props(svc)["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    assert len(groups) == 1
    file, lid = ref_target(tpls, "services.yaml", groups[0])
    assert file == "network.yaml"
    return lid


def load_balancer_groups(tpls: dict) -> list[str]:
    """Logical IDs (in network.yaml) of the load balancer's security groups, its own first."""
    (lb,) = resources(tpls["loadbalancer.yaml"], "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    found = [ref_target(tpls, "loadbalancer.yaml", group) for group in props(lb)["SecurityGroups"]]
    assert {file for file, _ in found} == {"network.yaml"}
    return [lid for _, lid in found]


def load_balancer_group(tpls: dict) -> str:
    """The load balancer's own group: the listener ports from AllowedIngressCidr."""
    return load_balancer_groups(tpls)[0]


def host_group(tpls: dict) -> str:
    (lt,) = resources(tpls["cluster.yaml"], "AWS::EC2::LaunchTemplate").values()
    (eni,) = props(lt)["LaunchTemplateData"]["NetworkInterfaces"]
    (group,) = eni["Groups"]
    file, lid = ref_target(tpls, "cluster.yaml", group)
    assert file == "network.yaml"
    return lid


def covers_port(rule: dict, port: int) -> bool:
    protocol = str(rule.get("IpProtocol")).lower()
    if protocol in ("-1", "all"):
        return True  # every protocol, every port
    if protocol not in ("tcp", "udp", "6", "17"):
        return False  # ICMP From/ToPort are type and code, not ports
    return rule["FromPort"] <= port <= rule["ToPort"]


def without_select_indexes(node):
    """node with every Fn::Select index blanked: list members move when the config order changes."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Select"}:
            return {"Fn::Select": ["?", without_select_indexes(node["Fn::Select"][1])]}
        return {k: without_select_indexes(v) for k, v in node.items()}
    if isinstance(node, list):
        return [without_select_indexes(v) for v in node]
    return node


def is_arm64(instance_type: str) -> bool:
    # Graviton families carry a "g" after the generation digit (t4g, m7g, c6gn, r7gd); GPU g4dn does not.
    return re.match(r"^[a-z]+\d+[a-z]*g[a-z]*\.", instance_type) is not None


def assert_lints_clean(app, tmp_path) -> dict[str, str]:
    """cfn-lint the build, its root as the local-URL variant (which lets cfn-lint check nested parameters, E3043).

    The variant's root is the root but for the children's TemplateURLs, the same expression for every app
    (`make lint` lints it as built): linting the root twice would find nothing more."""
    build = write_build(app, tmp_path / "b")
    local = write_build(app, tmp_path / "l", local_urls=True)
    children = sorted(path for path in build.glob("*.yaml") if path.name != "main.yaml")
    for run in (cfn_lint(children), cfn_lint([local / "main.yaml"], "W3002")):
        assert run.returncode == 0, run.stdout + run.stderr
    # What was written is what templates() renders: the lint covered the templates tested above.
    assert {p.name for p in build.glob("*.yaml")} == set(templates(app))
    return {p.name: p.read_text() for p in build.glob("*.yaml")}


# =================================================================================================
# Part 1: the default DKS templates
# =================================================================================================

# --- network -------------------------------------------------------------------------------------


def test_single_vpc_with_dns_support_and_hostnames(dks_templates):
    # Cloud Map A records (dks-db.dks.local) only resolve with both DNS attributes on.
    vpcs = resources(dks_templates["network.yaml"], "AWS::EC2::VPC")
    assert len(vpcs) == 1
    (vpc,) = vpcs.values()
    assert props(vpc)["EnableDnsSupport"] is True
    assert props(vpc)["EnableDnsHostnames"] is True


def test_subnets_spread_over_distinct_azs_by_index(dks_templates):
    # A hard-coded AZ name breaks the template in every other region and account.
    subnets = resources(dks_templates["network.yaml"], "AWS::EC2::Subnet")
    assert len(subnets) >= 2  # an ALB needs two AZs
    indexes = []
    for subnet in subnets.values():
        az = props(subnet)["AvailabilityZone"]
        assert not isinstance(az, str), f"hard-coded AZ {az}"
        index, azs = az["Fn::Select"]
        assert azs == {"Fn::GetAZs": ""}
        indexes.append(int(index))
    assert len(set(indexes)) == len(indexes) == len(subnets)


def test_no_nat_and_every_subnet_public(dks_templates):
    network = dks_templates["network.yaml"]
    # No NAT gateway (and no EIP for one): hosts reach AWS through their own public IPs.
    for t in dks_templates.values():
        assert not resources(t, "AWS::EC2::NatGateway")
        assert not resources(t, "AWS::EC2::EIP")
    (gateway,) = resources(network, "AWS::EC2::InternetGateway")
    tables = resources(network, "AWS::EC2::RouteTable")
    assert len(tables) == 1
    (table,) = tables
    default_routes = [r for r in resources(network, "AWS::EC2::Route").values()
                      if props(r).get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert len(default_routes) == 1
    assert props(default_routes[0])["RouteTableId"] == {"Ref": table}
    assert props(default_routes[0])["GatewayId"] == {"Ref": gateway}
    # A subnet without an association to that table would be private (no route out).
    associations = resources(network, "AWS::EC2::SubnetRouteTableAssociation").values()
    associated = {props(a)["SubnetId"]["Ref"] for a in associations
                  if props(a)["RouteTableId"] == {"Ref": table}}
    assert associated == set(resources(network, "AWS::EC2::Subnet"))


def test_default_route_waits_for_gateway_attachment(dks_templates):
    # Creating a route to a gateway that is not attached yet fails.
    network = dks_templates["network.yaml"]
    (attachment,) = resources(network, "AWS::EC2::VPCGatewayAttachment")
    (route,) = resources(network, "AWS::EC2::Route").values()
    assert attachment in depends_on(route)


# --- security groups -----------------------------------------------------------------------------


def test_world_reaches_only_the_load_balancer_on_listener_ports(dks_templates):
    balancer = load_balancer_group(dks_templates)
    cidr_rules = [r for r in sg_rules(dks_templates, "Ingress") if is_cidr_rule(r)]
    assert cidr_rules, "the load balancer must be reachable from the allowed CIDR"
    for rule in cidr_rules:
        assert rule["_group"] == balancer, f"{rule['_group']} accepts traffic from a CIDR"
        assert rule.get("CidrIp") == {"Ref": "AllowedIngressCidr"}
        assert str(rule["IpProtocol"]) == "tcp" and rule["FromPort"] == rule["ToPort"]
    assert sorted(r["FromPort"] for r in cidr_rules) == [80, 443, 8080]
    listeners = resources(dks_templates["loadbalancer.yaml"], "AWS::ElasticLoadBalancingV2::Listener")
    assert sorted(props(listener)["Port"] for listener in listeners.values()) == [80, 443, 8080]
    # 443 exists only with a certificate, in the listener and in the security group alike
    (https_listener,) = [r for r in listeners.values() if props(r)["Port"] == 443]
    (https_rule,) = [r for r in resources(dks_templates["network.yaml"], "AWS::EC2::SecurityGroupIngress").values()
                     if props(r).get("FromPort") == 443]
    assert https_listener["Condition"] == https_rule["Condition"] == "Https"


def test_a_certificate_turns_http_into_a_redirect_and_every_listener_into_tls(dks_templates):
    lb = dks_templates["loadbalancer.yaml"]
    # a certificate is given (CertificateArn) or made (tests/stacks/test_domain.py): either turns HTTPS on
    assert lb["Conditions"]["Https"] == {"Fn::Or": [{"Condition": "CertificateGiven"}, {"Condition": "CertificateMade"}]}
    listeners = {props(r)["Port"]: props(r) for r in resources(lb, "AWS::ElasticLoadBalancingV2::Listener").values()}
    (action,) = listeners[80]["DefaultActions"]
    redirect, plain = action["Fn::If"][1:]
    assert action["Fn::If"][0] == "Https" and plain["Type"] == "forward"
    assert redirect["RedirectConfig"] == {"Protocol": "HTTPS", "Port": "443", "Host": "#{host}", "Path": "/#{path}",
                                          "Query": "#{query}", "StatusCode": "HTTP_301"}
    assert listeners[443]["Protocol"] == "HTTPS" and listeners[443]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert listeners[443]["Certificates"] == [{"CertificateArn": {"Fn::If": [
        "CertificateMade", {"Ref": "Certificate"}, {"Ref": "CertificateArn"}]}}]
    assert listeners[8080]["Protocol"] == {"Fn::If": ["Https", "HTTPS", "HTTP"]}
    # the URLs the app and the outputs carry follow the scheme
    assert lb["Outputs"]["UrlScheme"]["Value"] == {"Fn::If": ["Https", "https", "http"]}
    assert dks_templates["main.yaml"]["Outputs"]["AppUrl"]["Value"]["Fn::Sub"][0].startswith("${UrlScheme}://")


def test_hosts_accept_only_the_load_balancer_on_the_dynamic_ports(dks, dks_templates):
    # awsvpc tasks run in their own ENIs; the bridge UI's containers listen on the host, on ports Docker
    # picks from the ephemeral range, for the load balancer only. SSM replaces SSH.
    host = host_group(dks_templates)
    (rule,) = [r for r in sg_rules(dks_templates, "Ingress") if r["_group"] == host]
    assert rule["SourceSecurityGroupId"] == {"Ref": load_balancer_group(dks_templates)}
    assert (str(rule["IpProtocol"]), rule["FromPort"], rule["ToPort"]) == ("tcp", 32768, 65535)
    assert [s.name for s in dks.bridge_services] == ["dks-ui"]
    # ...and without a public bridge service, nothing at all
    data = dks_data()
    service(data, "dks-ui")["network_mode"] = "awsvpc"
    tpls = templates(app_from(data))
    assert [r for r in sg_rules(tpls, "Ingress") if r["_group"] == host_group(tpls)] == []


def test_database_accepts_only_the_api_on_5432(dks_templates):
    db, api = service_group(dks_templates, "dks-db"), service_group(dks_templates, "dks-api")
    rules = [r for r in sg_rules(dks_templates, "Ingress") if r["_group"] == db]
    assert rules, "dks-api must be able to reach dks-db"
    for rule in rules:
        assert rule.get("SourceSecurityGroupId") == {"Ref": api}
        assert (str(rule["IpProtocol"]), rule["FromPort"], rule["ToPort"]) == ("tcp", 5432, 5432)
        assert not is_cidr_rule(rule)
    # ...and the api may open those connections (its egress is deny-all otherwise).
    assert any(r["_group"] == api and r.get("DestinationSecurityGroupId") == {"Ref": db} and r["FromPort"] == 5432
               for r in sg_rules(dks_templates, "Egress"))


def test_no_port_22_anywhere(dks_templates):
    rules = sg_rules(dks_templates, "Ingress") + sg_rules(dks_templates, "Egress")
    assert rules
    assert [r for r in rules if covers_port(r, 22)] == []
    for t in dks_templates.values():
        for node in walk(t["Resources"]):
            if isinstance(node, dict):
                for key in ("Port", "ContainerPort", "HostPort"):
                    assert node.get(key) != 22


def test_task_groups_egress_reaches_only_their_peers(dks, dks_templates):
    # A group with no egress rule allows all egress: one that connects nowhere gets the placeholder.
    egress = sg_rules(dks_templates, "Egress")
    for svc in dks.awsvpc_services:
        group = service_group(dks_templates, svc.name)
        mine = [r for r in egress if r["_group"] == group]
        if svc in dks.stored_services:  # and to its data on EFS, by NFS only
            (nfs,) = [r for r in mine if group_ref(r.get("DestinationSecurityGroupId")) == "DataSecurityGroup"]
            assert (nfs["FromPort"], nfs["ToPort"], str(nfs["IpProtocol"])) == (2049, 2049, "tcp")
            mine.remove(nfs)
            if not dks.peers(svc):
                assert mine == [], "the NFS rule is its only egress (no placeholder needed)"
                continue
        if not dks.peers(svc):
            (rule,) = mine
            assert rule["CidrIp"] == "255.255.255.255/32" and str(rule["IpProtocol"]) == "icmp"
            assert (rule["FromPort"], rule["ToPort"]) == (252, 86)  # ICMP type 252 code 86: matches nothing
        else:
            assert sorted(group_ref(r["DestinationSecurityGroupId"]) for r in mine) == sorted(
                service_group(dks_templates, peer) for peer in dks.peers(svc))


def test_connections_in_a_cycle_use_separate_egress_resources():
    # chat and presence name each other: inline egress both ways would make the groups depend on
    # each other, which CloudFormation refuses; an edge out of any cycle stays inline.
    tpls = templates(app_from(paths_and_a_cycle()))
    network = tpls["network.yaml"]
    separate = {(group_ref(props(r)["GroupId"]), group_ref(props(r)["DestinationSecurityGroupId"]))
                for r in resources(network, "AWS::EC2::SecurityGroupEgress").values()}
    chat, presence = (service_group(tpls, name) for name in ("chat", "presence"))
    assert separate == {(chat, presence), (presence, chat)}
    inline = props(network["Resources"][service_group(tpls, "dks-api")])["SecurityGroupEgress"]
    assert [group_ref(r["DestinationSecurityGroupId"]) for r in inline] == [service_group(tpls, "dks-db")]


def test_a_client_of_a_cycle_listed_inside_it_renders():
    # chat <-> presence, and lobby (listed between them) talks to both: all three reach the same two
    # services, so ordering the groups by that count alone left presence's group uncreated when
    # lobby's inline egress rule named it (KeyError in network.py).
    data = paths_and_a_cycle()
    data["services"].insert(4, {"name": "lobby", "image": "busybox:1.36", "port": 7002, "cpu": 256, "memory": 256,
                                "environment": {"CHAT": "{chat.host}", "PRESENCE": "{presence.host}"}})
    assert [s["name"] for s in data["services"]][3:] == ["chat", "lobby", "presence"]
    data["cluster"]["max_size"] = 6
    network = templates(app_from(data))["network.yaml"]
    lobby = props(network["Resources"]["LobbySecurityGroup"])["SecurityGroupEgress"]
    assert {group_ref(r["DestinationSecurityGroupId"]) for r in lobby} == {"ChatSecurityGroup", "PresenceSecurityGroup"}


def test_dependency_edges_open_the_dependency_port(dks, dks_templates):
    # depends_on means "connects to": each edge needs egress from the client and ingress at the server.
    assert_dependency_edges(dks, dks_templates)


def assert_dependency_edges(app, tpls):
    ingress, egress = sg_rules(tpls, "Ingress"), sg_rules(tpls, "Egress")
    edges = [(svc, dep) for svc in app.services for dep in svc.depends_on]
    assert edges
    for svc, dep in edges:
        client, server, port = service_group(tpls, svc.name), service_group(tpls, dep), app.service(dep).port
        assert any(r["_group"] == server and r.get("SourceSecurityGroupId") == {"Ref": client}
                   and r["FromPort"] == port == r["ToPort"] for r in ingress), f"{svc.name} -> {dep}: no ingress"
        assert any(r["_group"] == client and r.get("DestinationSecurityGroupId") == {"Ref": server}
                   and r["FromPort"] == port == r["ToPort"] for r in egress), f"{svc.name} -> {dep}: no egress"


# --- cluster -------------------------------------------------------------------------------------


def launch_template_data(tpls: dict) -> dict:
    (lt,) = resources(tpls["cluster.yaml"], "AWS::EC2::LaunchTemplate").values()
    return props(lt)["LaunchTemplateData"]


def test_ami_comes_from_the_ecs_optimized_ssm_parameter(dks_templates):
    image = launch_template_data(dks_templates)["ImageId"]
    assert set(image) == {"Ref"} and image["Ref"] in dks_templates["cluster.yaml"]["Parameters"]
    where, root = resolve(dks_templates, "cluster.yaml", image)
    assert where == "main.yaml"
    parameter = dks_templates["main.yaml"]["Parameters"][root["Ref"]]
    # Resolved at deploy time: always the current patched AMI, in every region.
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


def test_launch_template_hardening(dks_templates):
    data = launch_template_data(dks_templates)
    assert data["MetadataOptions"]["HttpTokens"] == "required"  # IMDSv2 only
    (root,) = [m for m in data["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda"]
    assert root["Ebs"]["VolumeType"] == "gp3"
    assert root["Ebs"]["Encrypted"] is True
    (primary,) = [eni for eni in data["NetworkInterfaces"] if eni["DeviceIndex"] == 0]
    # No NAT: the host's public IP is its only way to ECS, ECR and the logs.
    assert primary["AssociatePublicIpAddress"] is True


def test_tasks_cannot_reach_the_hosts_instance_metadata(dks_templates):
    # Two locks: awsvpc tasks are blocked by the agent, and a hop limit of 1 stops anything a hop away.
    data = launch_template_data(dks_templates)
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    user_data = json.dumps(data["UserData"])
    assert "ECS_AWSVPC_BLOCK_IMDS=true" in user_data


def test_user_data_joins_the_cluster(dks_templates):
    template = dks_templates["cluster.yaml"]
    user_data = launch_template_data(dks_templates)["UserData"]["Fn::Base64"]["Fn::Sub"]
    text, variables = (user_data, {}) if isinstance(user_data, str) else user_data
    # ${Cluster} must be the cluster resource (directly or via the Sub variable map).
    assert variables.get("Cluster", {"Ref": "Cluster"}) == {"Ref": next(iter(resources(template, "AWS::ECS::Cluster")))}
    lines = text.splitlines()
    written = []
    for i, line in enumerate(lines):
        heredoc = re.match(r"^cat >>? /etc/ecs/ecs\.config <<-?'?(\w+)'?$", line.strip())
        if heredoc:
            end = lines.index(heredoc.group(1), i + 1)
            written += lines[i + 1:end]
        elif re.search(r">>? ?/etc/ecs/ecs\.config", line):
            written.append(line)
    assert any(re.fullmatch(r"(echo )?['\"]?ECS_CLUSTER=\$\{Cluster\}['\"]?( >>? ?/etc/ecs/ecs\.config)?", w.strip())
               for w in written), text


def test_auto_scaling_group_uses_the_launch_template_in_the_subnets(dks_templates):
    template = dks_templates["cluster.yaml"]
    (lt,) = resources(template, "AWS::EC2::LaunchTemplate")
    (group,) = resources(template, "AWS::AutoScaling::AutoScalingGroup").values()
    assert props(group)["LaunchTemplate"]["LaunchTemplateId"] == {"Ref": lt}
    assert props(group)["VPCZoneIdentifier"] == {"Ref": "SubnetIds"}
    where, subnets = resolve(dks_templates, "cluster.yaml", props(group)["VPCZoneIdentifier"])
    assert where == "network.yaml"
    network_subnets = resources(dks_templates["network.yaml"], "AWS::EC2::Subnet")
    assert {s["Ref"] for s in subnets["Fn::Join"][1]} == set(network_subnets)
    # Launch configurations are deprecated (and cannot set IMDSv2 + gp3 together).
    for t in dks_templates.values():
        assert not resources(t, "AWS::AutoScaling::LaunchConfiguration")


def test_capacity_provider_scales_and_never_protects_hosts(dks_templates):
    # Protected hosts (termination or scale-in) keep the group from emptying, so the delete hangs.
    template = dks_templates["cluster.yaml"]
    (provider_id, provider), = resources(template, "AWS::ECS::CapacityProvider").items()
    asg = props(provider)["AutoScalingGroupProvider"]
    assert asg["ManagedScaling"]["Status"] == "ENABLED"
    assert asg["ManagedTerminationProtection"] == "DISABLED"
    (group,) = resources(template, "AWS::AutoScaling::AutoScalingGroup").values()
    assert props(group)["NewInstancesProtectedFromScaleIn"] is False
    (associations,) = resources(template, "AWS::ECS::ClusterCapacityProviderAssociations").values()
    strategy = props(associations)["DefaultCapacityProviderStrategy"]
    assert [s["CapacityProvider"] for s in strategy] == [{"Ref": provider_id}]


def test_cluster_deletes_in_order(dks_templates):
    # CloudFormation deletes dependents first: associations -> provider -> group (hosts) -> launch
    # template -> cluster. Any missing edge lets it try to delete a cluster that still has hosts.
    template = dks_templates["cluster.yaml"]
    one = lambda kind: next(iter(resources(template, kind)))  # noqa: E731
    associations = one("AWS::ECS::ClusterCapacityProviderAssociations")
    provider, group = one("AWS::ECS::CapacityProvider"), one("AWS::AutoScaling::AutoScalingGroup")
    launch_template, cluster = one("AWS::EC2::LaunchTemplate"), one("AWS::ECS::Cluster")
    assert provider in dependencies(template, associations)
    assert group in dependencies(template, provider)
    assert launch_template in dependencies(template, group)
    assert cluster in dependencies(template, launch_template)


def test_services_stack_needs_the_cluster_stack(dks_templates):
    # The root deletes the services (and their tasks) before the cluster and its hosts.
    main = dks_templates["main.yaml"]
    services, cluster = stack_of(main, "services.yaml"), stack_of(main, "cluster.yaml")
    getatts = [n["Fn::GetAtt"][0] for n in walk(props(main["Resources"][services]))
               if isinstance(n, dict) and "Fn::GetAtt" in n]
    assert cluster in getatts
    assert cluster in dependencies(main, services)


# --- discovery -----------------------------------------------------------------------------------


def test_private_namespace_in_the_vpc(dks_templates):
    template = dks_templates["discovery.yaml"]
    (namespace,) = resources(template, "AWS::ServiceDiscovery::PrivateDnsNamespace").values()
    assert props(namespace)["Name"] == "dks.local"
    assert props(namespace)["Vpc"] == {"Ref": "VpcId"}
    assert ref_target(dks_templates, "discovery.yaml", props(namespace)["Vpc"]) == \
        ("network.yaml", next(iter(resources(dks_templates["network.yaml"], "AWS::EC2::VPC"))))


def test_one_a_record_discovery_service_per_app_service(dks, dks_templates):
    discovery = resources(dks_templates["discovery.yaml"], "AWS::ServiceDiscovery::Service")
    found = {props(s)["Name"]: props(s) for s in discovery.values()}
    # A bridge task has no address of its own for an A record: the UI is reached through its URL only.
    assert sorted(found) == sorted(s.name for s in dks.awsvpc_services) == ["dks-api", "dks-db"]
    for spec in found.values():
        records = spec["DnsConfig"]["DnsRecords"]
        assert [r["Type"] for r in records] == ["A"]  # JDBC and Node resolve A records, not SRV
        assert all(r["TTL"] <= 60 for r in records)  # a replaced task is found quickly
        assert "HealthCheckCustomConfig" in spec  # ECS reports task health


# --- services ------------------------------------------------------------------------------------


def test_task_definitions_match_the_config(dks, dks_templates):
    template = dks_templates["services.yaml"]
    tasks = task_definitions(template)
    assert sorted(tasks) == sorted(s.name for s in dks.services)
    for svc in dks.services:
        task = tasks[svc.name]
        assert task["NetworkMode"] == svc.network_mode
        if svc.network_mode == "bridge":  # Docker picks the host port: no two tasks on a host collide
            assert [m.get("HostPort", 0) for m in task["ContainerDefinitions"][0]["PortMappings"]] == [0]
        assert task["RequiresCompatibilities"] == ["EC2"]
        assert (str(task["Cpu"]), str(task["Memory"])) == (str(svc.cpu), str(svc.memory))
        assert task["RuntimePlatform"]["CpuArchitecture"] == "X86_64"  # t3.medium hosts
        logging = task["ContainerDefinitions"][0]["LogConfiguration"]
        assert logging["LogDriver"] == "awslogs"
        group = logging["Options"]["awslogs-group"]
        assert props(template["Resources"][group["Ref"]]).get("RetentionInDays")  # logs do not pile up forever
        assert template["Resources"][group["Ref"]]["Type"] == "AWS::Logs::LogGroup"


def test_ecs_services_are_wired_and_roll_back(dks, dks_templates):
    template = dks_templates["services.yaml"]
    found = ecs_services(template)
    assert sorted(found) == sorted(s.name for s in dks.services)
    (provider,) = resources(dks_templates["cluster.yaml"], "AWS::ECS::CapacityProvider")
    for svc in dks.services:
        _, resource = found[svc.name]
        p = props(resource)
        assert p["CapacityProviderStrategy"], "EC2 capacity comes from the cluster's capacity provider"
        assert resolve(dks_templates, "services.yaml", p["CapacityProviderStrategy"][0]["CapacityProvider"]) == \
            ("cluster.yaml", {"Ref": provider})
        if svc.network_mode == "bridge":  # no interface of its own to configure, no A record to register
            assert "NetworkConfiguration" not in p and "ServiceRegistries" not in p
        else:
            (registry,) = p["ServiceRegistries"]
            file, discovery = ref_target(dks_templates, "services.yaml", registry["RegistryArn"])
            # The Select index picks this service's own Cloud Map service, not a neighbour's.
            assert props(dks_templates[file]["Resources"][discovery])["Name"] == svc.name
        breaker = p["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
        assert breaker["Enable"] is True and breaker["Rollback"] is True


def test_public_services_sit_behind_their_target_group(dks, dks_templates):
    found = ecs_services(dks_templates["services.yaml"])
    for svc in dks.services:
        p = props(found[svc.name][1])
        if not svc.public:
            # ECS rejects a grace period on a service without a load balancer.
            assert "LoadBalancers" not in p and "HealthCheckGracePeriodSeconds" not in p
            continue
        assert p["HealthCheckGracePeriodSeconds"] == svc.health_check.grace_period
        (lb,) = p["LoadBalancers"]
        assert (lb["ContainerName"], lb["ContainerPort"]) == (svc.name, svc.port)
        file, group = ref_target(dks_templates, "services.yaml", lb["TargetGroupArn"])
        assert props(dks_templates[file]["Resources"][group])["Name"] == {"Fn::Sub": f"${{EnvironmentName}}-{svc.name}"}
        assert props(dks_templates[file]["Resources"][group])["Port"] == svc.port


def test_each_service_runs_in_its_own_security_group(dks, dks_templates):
    groups = [service_group(dks_templates, s.name) for s in dks.awsvpc_services]
    assert len(set(groups)) == len(groups)
    assert host_group(dks_templates) not in groups
    for svc, group in zip(dks.awsvpc_services, groups):
        assert dks_templates["network.yaml"]["Resources"][group]["Type"] == "AWS::EC2::SecurityGroup"
        assert svc.name in props(dks_templates["network.yaml"]["Resources"][group])["GroupDescription"]


def test_database_replaces_its_task_stop_first(dks_templates):
    # Two postgres tasks must never run against one database at once.
    _, db = ecs_services(dks_templates["services.yaml"])["dks-db"]
    deployment = props(db)["DeploymentConfiguration"]
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (0, 100)


def test_services_start_in_dependency_order(dks_templates):
    found = ecs_services(dks_templates["services.yaml"])
    assert found["dks-db"][0] in depends_on(found["dks-api"][1])
    assert found["dks-api"][0] in depends_on(found["dks-ui"][1])
    assert not depends_on(found["dks-db"][1])


def test_no_password_in_plain_environment(dks_templates):
    names = [e["Name"] for t in dks_templates.values() for task in resources(t, "AWS::ECS::TaskDefinition").values()
             for c in props(task)["ContainerDefinitions"] for e in c.get("Environment", [])]
    assert names  # the scan saw the environments
    assert [n for n in names if "PASSWORD" in n.upper()] == []


def test_passwords_come_from_generated_secrets(dks, dks_templates):
    template = dks_templates["services.yaml"]
    expected = {"dks-db": {"POSTGRES_PASSWORD": "postgres-password", "DB_ROLE_PASSWORD": "db-role-password"},
                "dks-api": {"DB_ROLE_PASSWORD": "db-role-password"}}
    for name, wanted in expected.items():
        secrets = {s["Name"]: s["ValueFrom"] for s in container(template, name)["Secrets"]}
        assert set(secrets) == set(wanted)
        for variable, secret in wanted.items():
            value = secrets[variable]
            assert value["Fn::Select"][1] == {"Ref": "SecretArns"}
            # The index must land on the right secret, not merely on some secret.
            file, lid = ref_target(dks_templates, "services.yaml", value)
            assert file == "secrets.yaml"
            assert props(dks_templates[file]["Resources"][lid])["Description"] == dks.secrets[secret].description


def test_api_finds_the_database_by_its_cloud_map_name(dks_templates):
    env = environment(dks_templates["services.yaml"], "dks-api")
    assert env["DB_HOST"] == "dks-db.dks.local"
    assert env["PGPORT"] == "5432"


def test_ui_gets_the_public_api_url(dks_templates):
    template = dks_templates["services.yaml"]
    value = environment(template, "dks-ui")["KNOWLEDGE_SHARE_API"]
    # The browser calls the API, so it is the public host (the load balancer's name without a domain) on
    # the API's listener port.
    assert value == {"Fn::Sub": "${UrlScheme}://${PublicHost}:8080"}
    where, _ = resolve(dks_templates, "services.yaml", {"Ref": "PublicHost"})
    assert where == "loadbalancer.yaml"
    _, domain, dns = dks_templates[where]["Outputs"]["PublicHost"]["Value"]["Fn::If"]
    assert domain == {"Ref": "DomainName"} and dns["Fn::GetAtt"][1] == "DNSName"


def test_database_init_script_is_written_before_postgres_starts(dks, dks_templates, tmp_path):
    db = container(dks_templates["services.yaml"], "dks-db")
    script = (dks.base_dir / "db-init.sh").read_text()
    env = environment(dks_templates["services.yaml"], "dks-db")
    # The script travels inside the task definition (no host step, no image rebuild).
    carriers = [k for k, v in env.items() if v == script]
    assert len(carriers) == 1
    shell, flag, wrapper, program = db["EntryPoint"]
    assert (shell, flag) == ("/bin/sh", "-c")
    assert "/docker-entrypoint-initdb.d/" in wrapper and f'"${carriers[0]}"' in wrapper
    assert (program, db["Command"]) == ("docker-entrypoint.sh", ["postgres"])
    # Run the wrapper (target folder moved into tmp_path, program replaced by echo): the file must
    # arrive byte for byte and executable, then the original program must run with its arguments.
    moved = wrapper.replace("/docker-entrypoint-initdb.d", str(tmp_path / "initdb"))
    run = subprocess.run([shell, flag, moved, "echo", *db["Command"]], capture_output=True, text=True,
                         env={**os.environ, carriers[0]: script})
    assert run.returncode == 0, run.stderr
    assert run.stdout == "postgres\n"
    written = tmp_path / "initdb" / "0_0_db.sh"
    assert written.read_text() == script
    assert os.access(written, os.X_OK)


# --- load balancer -------------------------------------------------------------------------------


def test_internet_facing_alb_in_the_public_subnets(dks_templates):
    (lb,) = resources(dks_templates["loadbalancer.yaml"], "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert props(lb)["Scheme"] == "internet-facing"
    assert props(lb).get("Type", "application") == "application"
    assert props(lb)["Subnets"] == {"Ref": "SubnetIds"}
    assert resolve(dks_templates, "loadbalancer.yaml", props(lb)["Subnets"])[0] == "network.yaml"


def test_listeners_forward_to_the_right_target_groups(dks_templates):
    template = dks_templates["loadbalancer.yaml"]
    groups = resources(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    by_service = {props(g)["Name"]["Fn::Sub"].rsplit("}-", 1)[1]: lid for lid, g in groups.items()}
    listeners = {props(listener)["Port"]: props(listener)
                 for listener in resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()}
    assert sorted(listeners) == [80, 443, 8080]
    for port, name in ((80, "dks-ui"), (443, "dks-ui"), (8080, "dks-api")):
        (action,) = listeners[port]["DefaultActions"]
        if "Fn::If" in action:  # port 80 without a certificate
            action = action["Fn::If"][2]
        assert action["Type"] == "forward"
        assert action["TargetGroupArn"] == {"Ref": by_service[name]}
    # awsvpc tasks register by IP; the bridge UI by its host (instance) and dynamic port
    for name, path, kind in (("dks-ui", "/", "instance"), ("dks-api", "/actuator/health", "ip")):
        group = props(groups[by_service[name]])
        assert group["TargetType"] == kind
        assert group["HealthCheckPath"] == path


# --- iam -----------------------------------------------------------------------------------------


def trusted_service(role: dict) -> set[str]:
    services = set()
    for statement in props(role)["AssumeRolePolicyDocument"]["Statement"]:
        principal = statement["Principal"]["Service"]
        services.update([principal] if isinstance(principal, str) else principal)
    return services


def test_host_role_and_instance_profile(dks_templates):
    template = dks_templates["iam.yaml"]
    data = launch_template_data(dks_templates)
    file, profile = ref_target(dks_templates, "cluster.yaml", data["IamInstanceProfile"]["Arn"])
    assert file == "iam.yaml" and template["Resources"][profile]["Type"] == "AWS::IAM::InstanceProfile"
    (role_ref,) = props(template["Resources"][profile])["Roles"]
    role = template["Resources"][role_ref["Ref"]]
    assert trusted_service(role) == {"ec2.amazonaws.com"}
    arns = [a["Fn::Sub"] if isinstance(a, dict) else a for a in props(role)["ManagedPolicyArns"]]
    assert any(a.endswith("/AmazonEC2ContainerServiceforEC2Role") for a in arns)  # ECS agent
    assert any(a.endswith("/AmazonSSMManagedInstanceCore") for a in arns)  # shell access without SSH


def test_execution_role_reads_only_the_apps_secrets(dks_templates):
    template = dks_templates["iam.yaml"]
    tasks = task_definitions(dks_templates["services.yaml"]).values()
    (execution,) = {ref_target(dks_templates, "services.yaml", t["ExecutionRoleArn"]) for t in tasks}
    assert execution[0] == "iam.yaml"
    policies = props(template["Resources"][execution[1]])["Policies"]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    (reads,) = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert reads["Resource"] == {"Ref": "SecretArns"}
    assert resolve(dks_templates, "iam.yaml", reads["Resource"])[0] == "secrets.yaml"


def test_no_wildcard_actions(dks_templates):
    actions = []
    for t in dks_templates.values():
        for node in walk(t["Resources"]):
            if isinstance(node, dict):
                for key in ("Action", "NotAction"):
                    if key in node:
                        actions += [node[key]] if isinstance(node[key], str) else node[key]
    assert "sts:AssumeRole" in actions and "secretsmanager:GetSecretValue" in actions  # the scan saw policies
    assert "kms:Decrypt" in actions and "kms:PutKeyPolicy" in actions  # and the key policy
    assert [a for a in actions if "*" in a] == []


def test_one_rotated_key_encrypts_the_secrets_and_the_log_groups(dks_templates):
    template = dks_templates["secrets.yaml"]
    ((key_id, key),) = resources(template, "AWS::KMS::Key").items()
    assert props(key)["EnableKeyRotation"] is True and 7 <= props(key)["PendingWindowInDays"] <= 30
    for secret in resources(template, "AWS::SecretsManager::Secret").values():
        assert props(secret)["KmsKeyId"] == {"Fn::If": ["NewKey", {"Ref": key_id}, {"Ref": "DataKeyArn"}]}
    for group in resources(dks_templates["services.yaml"], "AWS::Logs::LogGroup").values():
        assert resolve(dks_templates, "services.yaml", props(group)["KmsKeyId"]) == (
            "secrets.yaml", {"Fn::GetAtt": [key_id, "Arn"]})
    statements = {s["Sid"]: s for s in props(key)["KeyPolicy"]["Statement"]}
    logs = statements["LogsEncryptOwnLogGroups"]
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.${AWS::URLSuffix}"}}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]["Fn::Sub"].endswith(
        ":log-group:/ecs/${EnvironmentName}/*"), "CloudWatch Logs may use the key for this app's groups only"
    assert "kms:Decrypt" not in statements["AccountAdministersThroughIam"].get("NotAction", [])


def test_the_execution_role_decrypts_only_through_secrets_manager(dks_templates):
    template = dks_templates["iam.yaml"]
    statements = [s for r in resources(template, "AWS::IAM::Role").values() for p in props(r).get("Policies", [])
                  for s in p["PolicyDocument"]["Statement"]]
    (decrypt,) = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert decrypt["Action"] == ["kms:Decrypt"] and decrypt["Resource"] == [{"Ref": "KmsKeyArn"}]
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}


def test_image_tags_are_immutable_unless_asked(dks_templates):
    registry = dks_templates["registry.yaml"]
    assert registry["Parameters"]["ImageTagMutability"]["Default"] == "IMMUTABLE"
    for repository in resources(registry, "AWS::ECR::Repository").values():
        assert props(repository)["ImageTagMutability"] == {"Ref": "ImageTagMutability"}
        assert props(repository)["EncryptionConfiguration"] == {"EncryptionType": "KMS"}


def test_every_checkov_skip_says_why(dks_templates):
    skips = [(name, skip) for t in dks_templates.values() for name, r in t["Resources"].items()
             for skip in r.get("Metadata", {}).get("checkov", {}).get("skip", [])]
    assert {skip["id"] for _, skip in skips} == {"CKV_AWS_2", "CKV_AWS_103", "CKV_AWS_88", "CKV_AWS_91",
                                                  # the hosts function (cluster.py says why for each)
                                                  "CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173",
                                                  "CKV_AWS_272"}
    assert all(len(skip["comment"]) > 40 for _, skip in skips), skips


def test_one_task_role_per_service(dks, dks_templates):
    template = dks_templates["iam.yaml"]
    tasks = task_definitions(dks_templates["services.yaml"])
    roles = {}
    for svc in dks.services:
        file, role = ref_target(dks_templates, "services.yaml", tasks[svc.name]["TaskRoleArn"])
        assert file == "iam.yaml"
        assert trusted_service(template["Resources"][role]) == {"ecs-tasks.amazonaws.com"}
        assert f"-{svc.name}-" in props(template["Resources"][role])["RoleName"]["Fn::Sub"]  # its own role
        roles[svc.name] = role
    assert len(set(roles.values())) == len(dks.services)
    execution = {ref_target(dks_templates, "services.yaml", t["ExecutionRoleArn"])[1] for t in tasks.values()}
    assert not execution & set(roles.values())


# --- registry ------------------------------------------------------------------------------------


def test_repositories_scan_and_expire_old_images(dks, dks_templates):
    repositories = resources(dks_templates["registry.yaml"], "AWS::ECR::Repository")
    names = sorted(props(r)["RepositoryName"]["Fn::Sub"].removeprefix("${EnvironmentName}/")
                   for r in repositories.values())
    assert names == ["dks-api", "dks-ui", "mirror/library/postgres"]  # the images built, the one copied
    for repository in repositories.values():
        p = props(repository)
        assert p["ImageScanningConfiguration"]["ScanOnPush"] is True
        assert p["EmptyOnDelete"] is True  # the stack deletes even with images pushed
        (rule,) = json.loads(p["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
        assert rule["action"]["type"] == "expire"
        assert rule["selection"]["countType"] == "imageCountMoreThan"
        assert rule["selection"]["countNumber"] == dks.keep_images == 10


# --- root ----------------------------------------------------------------------------------------


def test_root_parameters_have_defaults_but_the_bucket(dks_templates):
    parameters = dks_templates["main.yaml"]["Parameters"]
    assert "Default" not in parameters["QSS3BucketName"]  # nobody shares a bucket name
    assert "Default" in parameters["QSS3KeyPrefix"]
    assert [n for n, p in parameters.items() if n != "QSS3BucketName" and "Default" not in p] == []


def test_nested_template_urls_follow_the_taskcat_convention(dks_templates):
    main = dks_templates["main.yaml"]
    stacks = resources(main, "AWS::CloudFormation::Stack")
    assert stacks
    children = set()
    for stack in stacks.values():
        url = props(stack)["TemplateURL"]
        assert set(url) == {"Fn::Sub"} and isinstance(url["Fn::Sub"], str)
        assert url["Fn::Sub"].startswith(URL_PREFIX)
        child = url["Fn::Sub"].removeprefix(URL_PREFIX)
        assert re.fullmatch(r"[a-z]+\.yaml", child)
        assert child in dks_templates and (BUILD / child).is_file()
        children.add(child)
    # Every rendered child is deployed; registry.yaml is deployed before the root, on its own.
    assert children == set(dks_templates) - {"main.yaml", "registry.yaml"}


def test_root_outputs(dks_templates):
    outputs = dks_templates["main.yaml"]["Outputs"]
    # The config refuses a url_output named like one of the others: it must know them all.
    # DKS publishes no port that is not HTTP: it has no Network Load Balancer, nor its output.
    assert set(outputs) == {"AppUrl", "ApiUrl", *config.ROOT_OUTPUTS} - {"NetworkLoadBalancerDnsName"}
    assert outputs["AppUrl"]["Value"]["Fn::Sub"][0] == "${UrlScheme}://${PublicHost}"
    assert outputs["ApiUrl"]["Value"]["Fn::Sub"][0] == "${UrlScheme}://${PublicHost}:8080"
    assert outputs["NamespaceName"]["Value"] == "dks.local"


def test_instance_type_choices_share_the_default_architecture(dks_templates):
    parameter = dks_templates["main.yaml"]["Parameters"]["InstanceType"]
    allowed = parameter["AllowedValues"]
    assert parameter["Default"] in allowed
    # The AMI and the images are built for one architecture; a Graviton type would not boot them.
    assert [t for t in allowed if is_arm64(t) != is_arm64(parameter["Default"])] == []


# --- stable logical IDs --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reversed_templates() -> dict[str, dict]:
    data = dks_data()
    data["services"].reverse()  # depends_on unchanged
    return templates(app_from(data))


def test_reordering_services_keeps_logical_ids(dks_templates, reversed_templates):
    # A logical ID that follows config order would make CloudFormation replace resources.
    assert set(reversed_templates) == set(dks_templates)
    for name, template in dks_templates.items():
        assert set(reversed_templates[name]["Resources"]) == set(template["Resources"]), name


def test_reordering_services_keeps_resource_bodies(dks_templates, reversed_templates):
    for name, template in dks_templates.items():
        for lid, resource in template["Resources"].items():
            assert without_select_indexes(reversed_templates[name]["Resources"][lid]) == \
                without_select_indexes(resource), f"{name}: {lid}"


def test_reordered_wiring_still_selects_each_services_own_resources(reversed_templates):
    # Select indexes move with the order; they must still land on the same service's resources.
    found = ecs_services(reversed_templates["services.yaml"])
    tasks = task_definitions(reversed_templates["services.yaml"])
    for name, (_, resource) in found.items():
        p = props(resource)
        if "ServiceRegistries" in p:  # awsvpc: its own Cloud Map service and security group
            file, discovery = ref_target(reversed_templates, "services.yaml",
                                         p["ServiceRegistries"][0]["RegistryArn"])
            assert props(reversed_templates[file]["Resources"][discovery])["Name"] == name
            group = service_group(reversed_templates, name)
            assert name in props(reversed_templates["network.yaml"]["Resources"][group])["GroupDescription"]
        file, role = ref_target(reversed_templates, "services.yaml", tasks[name]["TaskRoleArn"])
        assert f"-{name}-" in props(reversed_templates[file]["Resources"][role])["RoleName"]["Fn::Sub"]
        for lb in p.get("LoadBalancers", []):
            file, tg = ref_target(reversed_templates, "services.yaml", lb["TargetGroupArn"])
            assert props(reversed_templates[file]["Resources"][tg])["Port"] == lb["ContainerPort"]


# =================================================================================================
# Part 2: variants of the default config, one field changed, each checked and linted
# =================================================================================================


def graviton():
    data = dks_data()
    data["cluster"]["instance_type"] = "t4g.medium"
    return data


def three_azs():
    data = dks_data()
    data["network"]["availability_zones"] = 3
    return data


def five_services():
    data = dks_data()
    data["services"] += [
        {"name": "redis", "image": "redis:7-alpine", "port": 6379, "cpu": 256, "memory": 256},
        {"name": "worker", "image": "busybox:1.36", "port": 9000, "cpu": 256, "memory": 256,
         "depends_on": ["dks-api"], "environment": {"REDIS_HOST": "{redis.host}", "API": "{dks-api.url}"}},
    ]
    # 9 tasks at the deployment peak, two per t3.medium: five hosts.
    data["cluster"].update(max_size=5)
    return data


def paths_and_a_cycle():
    data = dks_data()
    data["services"] += [
        {"name": "chat", "image": "busybox:1.36", "port": 7000, "cpu": 256, "memory": 256,
         "public": {"port": 80, "path": "/chat/*"}, "environment": {"PRESENCE": "{presence.host}"}},
        {"name": "presence", "image": "busybox:1.36", "port": 7001, "cpu": 256, "memory": 256,
         "environment": {"CHAT": "{chat.host}"}},
    ]
    data["cluster"].update(max_size=5)
    return data


def no_public_service():
    data = dks_data()
    for svc in data["services"]:
        svc.pop("public", None)
        svc.pop("url_output", None)
    service(data, "dks-ui")["environment"]["KNOWLEDGE_SHARE_API"] = "http://api.example.com"
    return data


def no_repositories():
    data = dks_data()
    for svc in data["services"]:
        if svc.pop("repository", None):
            svc["image"] = f"ghcr.io/liatrio/{svc['name']}:1.0"
    # A Docker Hub image would be copied into a repository of the app's own.
    service(data, "dks-db")["image"] = "public.ecr.aws/docker/library/postgres:16.4-alpine"
    return data


VARIANTS = {f.__name__: f for f in (graviton, three_azs, five_services, paths_and_a_cycle, no_public_service,
                                     no_repositories)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_lints_clean(variant, tmp_path):
    assert_lints_clean(app_from(VARIANTS[variant]()), tmp_path)


def test_graviton_runs_arm64_everywhere():
    tpls = templates(app_from(graviton()))
    tasks = task_definitions(tpls["services.yaml"])
    assert len(tasks) == 3
    assert {t["RuntimePlatform"]["CpuArchitecture"] for t in tasks.values()} == {"ARM64"}
    parameters = tpls["main.yaml"]["Parameters"]
    assert "/arm64/" in parameters["EcsAmiId"]["Default"]
    allowed = parameters["InstanceType"]["AllowedValues"]
    assert "t4g.medium" in allowed and parameters["InstanceType"]["Default"] == "t4g.medium"
    assert allowed and all(is_arm64(t) for t in allowed), allowed


def test_three_azs_give_three_subnets():
    tpls = templates(app_from(three_azs()))
    network = tpls["network.yaml"]
    subnets = resources(network, "AWS::EC2::Subnet")
    assert sorted(int(props(s)["AvailabilityZone"]["Fn::Select"][0]) for s in subnets.values()) == [0, 1, 2]
    blocks = [ipaddress.ip_network(props(s)["CidrBlock"]) for s in subnets.values()]
    vpc = ipaddress.ip_network(props(next(iter(resources(network, "AWS::EC2::VPC").values())))["CidrBlock"])
    assert all(b.subnet_of(vpc) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    (table,) = resources(network, "AWS::EC2::RouteTable")
    assert {props(a)["SubnetId"]["Ref"] for a in resources(network, "AWS::EC2::SubnetRouteTableAssociation").values()
            if props(a)["RouteTableId"] == {"Ref": table}} == set(subnets)
    # Hosts, the ALB and the tasks all use all three.
    assert {s["Ref"] for s in network["Outputs"]["SubnetIds"]["Value"]["Fn::Join"][1]} == set(subnets)


def test_five_services_get_everything_each():
    app = app_from(five_services())
    tpls = templates(app)
    names = sorted(s.name for s in app.services)
    assert len(names) == 5
    assert sorted(task_definitions(tpls["services.yaml"])) == names
    assert sorted(ecs_services(tpls["services.yaml"])) == names
    discovery = resources(tpls["discovery.yaml"], "AWS::ServiceDiscovery::Service")
    awsvpc = sorted(s.name for s in app.awsvpc_services)
    assert sorted(props(s)["Name"] for s in discovery.values()) == awsvpc and len(awsvpc) == 4
    assert_dependency_edges(app, tpls)
    # The worker reaches redis through its Cloud Map name, so redis must let it in.
    worker, redis = service_group(tpls, "worker"), service_group(tpls, "redis")
    assert environment(tpls["services.yaml"], "worker")["REDIS_HOST"] == "redis.dks.local"
    assert any(r["_group"] == redis and r.get("SourceSecurityGroupId") == {"Ref": worker} and r["FromPort"] == 6379
               for r in sg_rules(tpls, "Ingress"))
    assert not any(r["_group"] == redis and is_cidr_rule(r) for r in sg_rules(tpls, "Ingress"))
    found = ecs_services(tpls["services.yaml"])
    assert found["dks-api"][0] in depends_on(found["worker"][1])
    assert "LoadBalancers" not in props(found["redis"][1])
    for name in awsvpc:  # lists grew to four: each Select still lands on the service's own resources
        (registry,) = props(found[name][1])["ServiceRegistries"]
        file, lid = ref_target(tpls, "services.yaml", registry["RegistryArn"])
        assert props(tpls[file]["Resources"][lid])["Name"] == name


def test_no_public_service_means_no_load_balancer():
    tpls = templates(app_from(no_public_service()))
    assert "loadbalancer.yaml" not in tpls
    for t in tpls.values():
        assert not [r for r in t["Resources"].values() if r["Type"].startswith("AWS::ElasticLoadBalancingV2::")]
        assert "AllowedIngressCidr" not in t.get("Parameters", {})
        assert "LoadBalancerDnsName" not in t.get("Parameters", {})
    for _, svc in ecs_services(tpls["services.yaml"]).values():
        assert "LoadBalancers" not in props(svc) and "HealthCheckGracePeriodSeconds" not in props(svc)
    # No load balancer group and nothing reachable from any CIDR: one group per awsvpc service plus the
    # hosts' (also the bridge UI's) and the data's.
    ingress = sg_rules(tpls, "Ingress")
    assert [r for r in ingress if is_cidr_rule(r)] == []
    assert len(resources(tpls["network.yaml"], "AWS::EC2::SecurityGroup")) == 2 + 1 + 1  # tasks, hosts, data
    outputs = tpls["main.yaml"]["Outputs"]
    assert {"ClusterName", "NamespaceName", "ServiceNames"} <= set(outputs)
    assert not [n for n in outputs if n.endswith("Url")]
    assert "LoadBalancerDnsName" not in json.dumps(outputs)
    assert environment(tpls["services.yaml"], "dks-ui")["KNOWLEDGE_SHARE_API"] == "http://api.example.com"


def test_no_repositories_means_no_registry():
    tpls = templates(app_from(no_repositories()))
    assert "registry.yaml" not in tpls
    for t in tpls.values():
        assert "ImageTag" not in t.get("Parameters", {})
        assert not resources(t, "AWS::ECR::Repository")
    images = {name: container(tpls["services.yaml"], name)["Image"] for name in ("dks-api", "dks-ui")}
    assert images["dks-api"] == "ghcr.io/liatrio/dks-api:1.0" and images["dks-ui"] == "ghcr.io/liatrio/dks-ui:1.0"
    # Nothing to pull from ECR, so the execution role gets no ECR permission.
    assert not [a for n in walk(tpls["iam.yaml"]["Resources"]) if isinstance(n, dict) and "Action" in n
                for a in n["Action"] if a.startswith("ecr:")]


def test_the_database_keeps_its_data_on_efs_and_none_opts_out(dks, dks_templates):
    storage = dks_templates["storage.yaml"]
    (system,) = resources(storage, "AWS::EFS::FileSystem").values()
    assert system["DeletionPolicy"] == "RetainExceptOnCreate", "a stack delete never loses the data"
    assert props(system)["Encrypted"] is True and props(system)["KmsKeyId"] == {"Ref": "KmsKeyArn"}
    (deny,) = props(system)["FileSystemPolicy"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    targets = resources(storage, "AWS::EFS::MountTarget").values()
    assert len(targets) == dks.network.availability_zones
    assert {json.dumps(props(t)["SubnetId"]) for t in targets} == {
        json.dumps({"Fn::Select": [i, {"Ref": "SubnetIds"}]}) for i in range(dks.network.availability_zones)}
    (point,) = resources(storage, "AWS::EFS::AccessPoint").values()
    db = dks.service("dks-db").data
    assert props(point)["PosixUser"] == {"Uid": str(db.uid), "Gid": str(db.gid)}
    assert props(point)["RootDirectory"]["CreationInfo"] == {"OwnerUid": str(db.uid), "OwnerGid": str(db.gid),
                                                             "Permissions": "0700"}
    # only the database's tasks reach the mount targets, by NFS
    ingress = [props(r) for r in resources(dks_templates["network.yaml"], "AWS::EC2::SecurityGroupIngress").values()
               if props(r)["GroupId"] == {"Ref": "DataSecurityGroup"}]
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in ingress] == [(2049, {"Ref": "DksDbSecurityGroup"})]

    data = dks_data()
    data["persistence"] = "none"
    plain = templates(app_from(data))
    assert "storage.yaml" not in plain
    # No EFS: the read-only database's data is on a volume as long-lived as the task (test_least_privilege).
    volumes = [v for t in resources(plain["services.yaml"], "AWS::ECS::TaskDefinition").values()
               for v in props(t).get("Volumes", [])]
    assert volumes == [{"Name": "data", "DockerVolumeConfiguration": {"Scope": "task", "Driver": "local"}}]
