"""Follow the packets of a DKS page through the rendered templates, hop by hop.

Next.js inlines one KNOWLEDGE_SHARE_API into the UI's server bundle and its browser bundle, so the
same URL is called from a visitor's browser and from the UI's own container. Each hop must be
allowed by a route and by a security group rule, evaluated as EC2 evaluates them:

- a rule naming a security group matches only traffic from (or to) the private addresses of the
  interfaces in that group, never traffic that arrives from a public address through the internet
  gateway (https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html#security-group-referencing);
- a packet to an address outside the VPC leaves by the subnet's route table, and the internet
  gateway carries it only for an interface that has a public IP (an awsvpc task on EC2 has none);
- a bridge container's packets leave from its host's interface, with the host's groups and address.

The hosts function writes the load balancer's HostAddresses rules at run time, one per host public
IP and port it is configured with; `host_address_rules` derives them from the function's own
configuration in cluster.yaml, and tests/stacks/test_hosts_function.py runs the function itself.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest
from helpers import app_from, dks_data, resources, service, templates
from test_templates import (
    covers_port,
    environment,
    group_ref,
    host_group,
    load_balancer_groups,
    props,
    ref_target,
    resolve,
    sg_rules,
    task_definitions,
)

OFFICE = "203.0.113.7/32"
VISITOR = "203.0.113.7"  # in the office
STRANGER = "198.18.0.1"  # anywhere else
ALB_PUBLIC = "3.5.7.9"  # what the load balancer's DNS name resolves to on the internet


@dataclass
class Interface:
    """A network interface: the groups on it, its private address (subnet) and public IP if any."""

    groups: set[str]
    private: str
    subnet: str
    public: str | None = None


@dataclass
class Network:
    tpls: dict
    parameters: dict[str, str]
    runtime: list[dict] = field(default_factory=list)  # rules the hosts function writes

    def value(self, file: str, expr) -> str:
        """A property value as deployed: a literal, or a root parameter (its default unless given)."""
        if isinstance(expr, str):
            return expr
        where, source = resolve(self.tpls, file, expr)
        assert where == "main.yaml" and set(source) == {"Ref"}, (file, expr)
        name = source["Ref"]
        return self.parameters.get(name, self.tpls["main.yaml"]["Parameters"][name].get("Default"))

    @property
    def vpc_cidr(self) -> ipaddress.IPv4Network:
        (vpc,) = resources(self.tpls["network.yaml"], "AWS::EC2::VPC").values()
        return ipaddress.ip_network(props(vpc)["CidrBlock"])

    def rules(self, direction: str) -> list[dict]:
        found = sg_rules(self.tpls, direction)
        return found + [r for r in self.runtime if direction == "Ingress"]

    def allows(self, direction: str, interface: Interface, port: int, peer_address: str,
               peer: Interface | None) -> list[str]:
        """The rules of `interface`'s groups letting tcp `port` in from (or out to) the peer. A peer
        reached through the internet gateway is seen by its public address, and no group reference
        matches it."""
        internet = ipaddress.ip_address(peer_address) not in self.vpc_cidr
        key = "SourceSecurityGroupId" if direction == "Ingress" else "DestinationSecurityGroupId"
        found = []
        for rule in self.rules(direction):
            if rule["_group"] not in interface.groups or not covers_port(rule, port):
                continue
            if "CidrIp" in rule:
                if ipaddress.ip_address(peer_address) in ipaddress.ip_network(self.value(rule["_file"],
                                                                                           rule["CidrIp"])):
                    found.append(f"{rule['_group']} {rule.get('Description', '')}")
            elif key in rule and not internet and peer is not None and group_ref(rule[key]) in peer.groups:
                found.append(f"{rule['_group']} {rule.get('Description', '')}")
        return found

    def route(self, subnet: str, address: str) -> str | None:
        """Where the subnet's route table sends a packet for `address`: local, igw, or nowhere."""
        if ipaddress.ip_address(address) in self.vpc_cidr:
            return "local"
        network = self.tpls["network.yaml"]
        (table,) = [props(a)["RouteTableId"]["Ref"] for a in
                    resources(network, "AWS::EC2::SubnetRouteTableAssociation").values()
                    if props(a)["SubnetId"] == {"Ref": subnet}]
        attached = {props(a)["InternetGatewayId"]["Ref"] for a in
                    resources(network, "AWS::EC2::VPCGatewayAttachment").values()}
        for route in resources(network, "AWS::EC2::Route").values():
            p = props(route)
            if p["RouteTableId"] == {"Ref": table} and \
                    ipaddress.ip_address(address) in ipaddress.ip_network(p["DestinationCidrBlock"]):
                return "igw" if p.get("GatewayId", {}).get("Ref") in attached else "elsewhere"
        return None


HOSTS = (("10.20.0.10", "198.51.100.10"), ("10.20.1.11", "198.51.100.11"))  # (private, public) of two hosts


def network(tpls: dict, cidr: str, with_host_addresses: bool = True,
            hosts: tuple[tuple[str, str], ...] = HOSTS) -> tuple[Network, dict[str, Interface]]:
    net = Network(tpls, {"AllowedIngressCidr": cidr})
    subnets = sorted(resources(tpls["network.yaml"], "AWS::EC2::Subnet"))
    host = host_group(tpls)
    places = {f"host-{n}": Interface({host}, private, subnets[n % len(subnets)], public)
              for n, (private, public) in enumerate(hosts)}
    places["alb"] = Interface(set(load_balancer_groups(tpls)), "10.20.0.100", subnets[0], ALB_PUBLIC)
    for number, (name, task) in enumerate(sorted(task_definitions(tpls["services.yaml"]).items()), start=20):
        if task["NetworkMode"] == "awsvpc":
            _, svc = next((lid, r) for lid, r in resources(tpls["services.yaml"], "AWS::ECS::Service").items()
                          if props(r)["ServiceName"] == name)
            vpc = props(svc)["NetworkConfiguration"]["AwsvpcConfiguration"]
            assert vpc["AssignPublicIp"] == "DISABLED"  # awsvpc tasks on EC2 get no public IP
            places[name] = Interface({ref_target(tpls, "services.yaml", group)[1] for group in vpc["SecurityGroups"]},
                                     f"10.20.1.{number}", subnets[1])
        else:  # a bridge container uses its host's interface
            places[name] = places["host-0"]
    if with_host_addresses:
        net.runtime = host_address_rules(tpls, [places[f"host-{n}"] for n in range(len(hosts))])
    return net, places


def host_address_rules(tpls: dict, hosts: list[Interface]) -> list[dict]:
    """The ingress rules the hosts function keeps: each host's public IP on each configured port, in
    the group it is configured with (its environment, as deployed)."""
    (function,) = resources(tpls["cluster.yaml"], "AWS::Lambda::Function").values()
    variables = props(function)["Environment"]["Variables"]
    if not variables["PORTS"]:
        return []
    file, group = ref_target(tpls, "cluster.yaml", variables["SECURITY_GROUP"])
    assert file == "network.yaml"
    return [{"_file": file, "_group": group, "IpProtocol": "tcp", "FromPort": int(port), "ToPort": int(port),
             "CidrIp": f"{h.public}/32", "Description": "host"} for h in hosts for port in variables["PORTS"].split(",")]


def listener_target(tpls: dict, port: int) -> dict:
    """The target group a listener port forwards to without a certificate (its default action)."""
    lb = tpls["loadbalancer.yaml"]
    (listener,) = [props(r) for r in resources(lb, "AWS::ElasticLoadBalancingV2::Listener").values()
                   if props(r)["Port"] == port]
    (action,) = listener["DefaultActions"]
    action = action["Fn::If"][2] if "Fn::If" in action else action
    assert action["Type"] == "forward"
    return props(lb["Resources"][action["TargetGroupArn"]["Ref"]])


def url_port(tpls: dict, service_name: str, variable: str) -> int:
    """The port of a URL value (`${UrlScheme}://${PublicHost}:8080`). PublicHost is DomainName (an alias
    record of the load balancer) or the load balancer's own name: either resolves to its public addresses."""
    value = environment(tpls["services.yaml"], service_name)[variable]
    text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
    assert "${PublicHost}" in text
    host = tpls["loadbalancer.yaml"]["Outputs"]["PublicHost"]["Value"]["Fn::If"]
    assert host[0] == "Domain" and host[2] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}
    (lb,) = resources(tpls["loadbalancer.yaml"], "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert props(lb)["Scheme"] == "internet-facing"  # the name resolves to public addresses
    tail = text.split("${PublicHost}", 1)[1]
    return int(tail[1:].split("/")[0]) if tail.startswith(":") else 80


def blocked_hops(net: Network, places: dict[str, Interface], source: str, port: int, target: str,
                 client_address: str | None = None) -> list[str]:
    """Each hop from `source` (a service, or a visitor's address) to the load balancer on `port`, and from
    it to the target service's task: the hops no route or rule allows (empty: the packets arrive)."""
    tpls = net.tpls
    blocked = []
    if client_address is None:  # a container of the app
        origin = places[source]
        if not net.allows("Egress", origin, port, ALB_PUBLIC, None):
            blocked.append(f"{source}: no egress to the load balancer's public address on {port}")
        if net.route(origin.subnet, ALB_PUBLIC) != "igw" or origin.public is None:
            blocked.append(f"{source}: no way to the internet gateway (route or public IP)")
        client_address = origin.public or origin.private
    alb = places["alb"]
    if not net.allows("Ingress", alb, port, client_address, None):
        blocked.append(f"load balancer: nothing admits {client_address} on {port}")
    group = listener_target(tpls, port)
    task = places[target]
    target_port = group["Port"] if group["TargetType"] == "ip" else 49153  # a dynamic host port
    if not net.allows("Egress", alb, target_port, task.private, task):
        blocked.append(f"load balancer: no egress to {target} on {target_port}")
    if net.route(alb.subnet, task.private) != "local":
        blocked.append(f"load balancer: no route to {target}")
    if not net.allows("Ingress", task, target_port, alb.private, alb):
        blocked.append(f"{target}: does not admit the load balancer on {target_port}")
    return blocked


@pytest.fixture(scope="module")
def dks_tpls(dks_templates):
    return dks_templates


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", OFFICE])
def test_the_ui_reaches_the_api_from_its_server_and_from_the_browser(dks_tpls, cidr):
    port = url_port(dks_tpls, "dks-ui", "KNOWLEDGE_SHARE_API")
    assert port == 8080
    net, places = network(dks_tpls, cidr)
    # the UI's server side: from its container, through its host's public IP, back in to the API
    assert blocked_hops(net, places, "dks-ui", port, "dks-api") == []
    # the browser: from the visitor, to the same URL
    assert blocked_hops(net, places, "visitor", port, "dks-api", client_address=VISITOR) == []
    # and the page itself: the UI behind port 80, on its host's dynamic port
    assert blocked_hops(net, places, "visitor", 80, "dks-ui", client_address=VISITOR) == []
    if cidr == OFFICE:  # nobody outside the office gets in
        assert blocked_hops(net, places, "x", 80, "dks-ui", client_address=STRANGER) != []


def test_a_narrowed_cidr_needs_the_hosts_addresses(dks_tpls):
    # The UI's calls arrive from the hosts' public IPs: the office CIDR does not admit them, and the
    # hosts' group reference does not match traffic that came through the internet gateway.
    net, places = network(dks_tpls, OFFICE, with_host_addresses=False)
    assert blocked_hops(net, places, "dks-ui", 8080, "dks-api") == [
        "load balancer: nothing admits 198.51.100.10 on 8080"]
    # the hosts function keeps both hosts in, on the port the UI calls
    net.runtime = host_address_rules(dks_tpls, [places["host-0"], places["host-1"]])
    assert {r["CidrIp"] for r in net.runtime} == {"198.51.100.10/32", "198.51.100.11/32"}
    assert {r["FromPort"] for r in net.runtime} == {8080}
    assert blocked_hops(net, places, "dks-ui", 8080, "dks-api") == []


def test_an_awsvpc_ui_could_not_reach_the_api_url():
    # What DKS did before: the UI in its own interface, which has no public IP and no NAT to use.
    data = dks_data()
    service(data, "dks-ui")["network_mode"] = "awsvpc"
    tpls = templates(app_from(data))
    net, places = network(tpls, "0.0.0.0/0")
    assert blocked_hops(net, places, "dks-ui", 8080, "dks-api") == [
        "dks-ui: no egress to the load balancer's public address on 8080",
        "dks-ui: no way to the internet gateway (route or public IP)"]


def test_without_a_bridge_service_calling_a_url_there_is_no_host_addresses_group():
    data = dks_data()
    service(data, "dks-ui")["environment"]["KNOWLEDGE_SHARE_API"] = "http://api.example.com"
    tpls = templates(app_from(data))
    assert len(load_balancer_groups(tpls)) == 1
    assert "HostAddressesSecurityGroup" not in tpls["network.yaml"]["Resources"]
    (function,) = resources(tpls["cluster.yaml"], "AWS::Lambda::Function").values()
    assert props(function)["Environment"]["Variables"]["PORTS"] == ""
    assert not resources(tpls["cluster.yaml"], "AWS::Events::Rule")
