"""network.yaml: one VPC, public subnets only, and every security group of the app.

No NAT gateway and no private subnet: hosts get public IPs and reach ECS, ECR and the logs
through the internet gateway; awsvpc tasks (awsvpc on EC2 gets no public IP) need no egress because
the host's agent pulls images, reads secrets and ships logs. Containers of a bridge service use the
host's interface and group: they leave through the host's public IP, which is how a web UI's server
reaches the app's own public URL. Security groups that reference each
other live here together. A client's egress to a service is a rule of the client's group (one
resource fewer per connection, so 200 services fit the 500-resource quota) unless the service can
also reach the client, directly or not: that egress is a separate resource, so no group depends on
another in a cycle. Ingress is always separate. Services that all reach each other share one group
instead of a rule per pair (peer_groups.py), so a Compose network of many services fits one stack.
"""
from __future__ import annotations

import ipaddress
import string

from troposphere import GetAZs, Join, Ref, Select, Sub, Tags
from troposphere.ec2 import (
    VPC,
    DHCPOptions,
    InternetGateway,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupEgress,
    SecurityGroupIngress,
    SecurityGroupRule,
    Subnet,
    SubnetRouteTableAssociation,
    VPCDHCPOptionsAssociation,
    VPCEndpoint,
    VPCGatewayAttachment,
)

from templates_src.app import capacity, peer_groups
from templates_src.stacks import discovery, links, loadbalancer
from templates_src.app.config import App, Service, logical_id
from templates_src.stacks.wiring import Stack

# A security group always has an egress rule; this one matches nothing, so only the rules added
# beside it allow traffic (the CDK's "disallow all traffic" rule).
NFS = 2049
HTTPS = 443
# Host ports Docker gives bridge containers that name no host port: the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 on Amazon Linux) or Docker's 49153-65535
# without it (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PortMapping.html).
EPHEMERAL = (32768, 65535)
NO_EGRESS = SecurityGroupRule(IpProtocol="icmp", FromPort=252, ToPort=86, CidrIp="255.255.255.255/32",
                              Description="Disallow all traffic")


def build(app: App) -> Stack:
    stack = Stack("network", app, f"{app.name}: VPC with public subnets only (no NAT), internet gateway, "
                                  "security groups")
    vpc = _vpc(stack)
    _search_domain(stack, vpc)
    subnets = _public_subnets(stack, vpc)
    tasks, host = _security_groups(stack, vpc)
    if stack.app.exec_endpoint_services:
        _exec_endpoint(stack, vpc, subnets, tasks, host)
    return stack


def subnet_cidrs(app: App) -> list[str]:
    vpc = ipaddress.IPv4Network(app.network.cidr)
    blocks = vpc.subnets(new_prefix=app.network.subnet_prefix)
    return [str(next(blocks)) for _ in range(app.network.availability_zones)]


def _vpc(stack: Stack) -> VPC:
    app = stack.app
    # Cloud Map A records resolve only with DNS support and hostnames on.
    vpc = stack.add(VPC("Vpc", CidrBlock=app.network.cidr, EnableDnsSupport=True, EnableDnsHostnames=True,
                        Tags=Tags(Name=app.name)))
    stack.publish(links.VPC_ID, Ref(vpc))
    return vpc


def _search_domain(stack: Stack, vpc: VPC) -> DHCPOptions:
    """The VPC's DHCP options name the Cloud Map namespace as the domain, so `db` resolves as db.<namespace>
    from every task, as a Compose service name does, and nothing has to be rewritten to the long name.

    An awsvpc task's ENI carries the VPC's domain as its DomainNameSearchList, which the ECS agent writes
    into the task's resolv.conf (the pause container's DNSSearch, shared by the task's containers:
    amazon-ecs-agent agent/api/task/task.go, overrideDNS; the task metadata shows it as
    DomainNameSearchList, "us-west-2.compute.internal" by default:
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4.html).
    A bridge container gets its host's resolv.conf, whose search list the host's DHCP client writes
    from this same option. The task definition's dnsSearchDomains is not an alternative: awsvpc tasks
    do not support it (https://github.com/aws/containers-roadmap/issues/892).

    One domain, not the region's default (ec2.internal, <region>.compute.internal) beside it: EC2 sends
    the domain in DHCP option 15, which holds one name, and on Amazon Linux 2023 (the hosts' AMI)
    systemd-networkd turns "a b" into the single name "a032b", so neither would be searched
    (https://github.com/amazonlinux/amazon-linux-2023/issues/329). The default domain only shortens
    the hosts' own ip-... names, which nothing here uses; AmazonProvidedDNS still answers them in full.
    https://docs.aws.amazon.com/vpc/latest/userguide/DHCPOptionSetConcepts.html
    """
    options = stack.add(DHCPOptions(
        "DhcpOptions", DomainName=discovery.namespace(stack.app), DomainNameServers=["AmazonProvidedDNS"],
        Tags=Tags(Name=stack.app.name)))
    stack.add(VPCDHCPOptionsAssociation("DhcpOptionsAssociation", VpcId=Ref(vpc), DhcpOptionsId=Ref(options)))
    return options


def _public_subnets(stack: Stack, vpc: VPC) -> list[Subnet]:
    gateway = stack.add(InternetGateway("InternetGateway", Tags=Tags(Name=stack.app.name)))
    attachment = stack.add(VPCGatewayAttachment("GatewayAttachment", VpcId=Ref(vpc), InternetGatewayId=Ref(gateway)))
    table = stack.add(RouteTable("PublicRouteTable", VpcId=Ref(vpc), Tags=Tags(Name=f"{stack.app.name}-public")))
    stack.add(Route(
        "DefaultRoute", RouteTableId=Ref(table), DestinationCidrBlock="0.0.0.0/0", GatewayId=Ref(gateway),
        # The route names the gateway but a route to it fails until the gateway is attached.
        DependsOn=[attachment.title],
    ))
    subnets = []
    for index, cidr in enumerate(subnet_cidrs(stack.app)):
        letter = string.ascii_uppercase[index]
        subnet = stack.add(Subnet(
            f"PublicSubnet{letter}", VpcId=Ref(vpc), CidrBlock=cidr,
            AvailabilityZone=Select(index, GetAZs("")),
            # Hosts ask for a public IP in their launch template; nothing else here needs one.
            MapPublicIpOnLaunch=False,
            Tags=Tags(Name=f"{stack.app.name}-public-{letter.lower()}"),
        ))
        stack.add(SubnetRouteTableAssociation(f"PublicSubnet{letter}RouteTable", SubnetId=Ref(subnet),
                                              RouteTableId=Ref(table)))
        subnets.append(subnet)
    stack.publish(links.SUBNET_IDS, Join(",", [Ref(s) for s in subnets]))
    return subnets


def _security_groups(stack: Stack, vpc: VPC) -> tuple[dict[str, SecurityGroup], SecurityGroup]:
    """Every group; returns the awsvpc services' own groups by name and the hosts' group."""
    app = stack.app
    data = _data_group(stack, vpc) if app.stored_services else None
    reach = reachable(app)
    shared = peer_groups.covered(app)
    tasks: dict[str, SecurityGroup] = {}
    # Peers first, so an inline egress rule can name the peer's group. Counting the service itself
    # makes a client of a cycle sort after the cycle's members, which reach as much as it does.
    for name in sorted((s.name for s in app.awsvpc_services), key=lambda n: len(reach[n] | {n})):
        svc = app.service(name)
        inline = [peer for peer in app.peers(svc) if name not in reach[peer] and (name, peer) not in shared]
        tasks[name] = stack.add(SecurityGroup(
            f"{logical_id(name)}SecurityGroup", GroupDescription=f"{app.name} {name} tasks",
            VpcId=Ref(vpc),
            SecurityGroupEgress=[rule for peer in inline for rule in _egress_rules(app.service(peer), tasks[peer])]
            + _data_egress(svc, data) or [NO_EGRESS],
            Tags=Tags(Name=f"{app.name}-{name}"),
        ))
    tasks = {svc.name: tasks[svc.name] for svc in app.awsvpc_services}
    host = _host_group(stack, vpc, tasks, data)
    for svc in app.stored_services:
        if svc.network_mode == "awsvpc":
            stack.add(SecurityGroupIngress(
                f"{logical_id(svc.name)}ToData", GroupId=Ref(data), IpProtocol="tcp", FromPort=NFS, ToPort=NFS,
                SourceSecurityGroupId=Ref(tasks[svc.name]), Description=f"NFS from {svc.name}"))
    if any(svc.network_mode == "bridge" for svc in app.stored_services):
        stack.add(SecurityGroupIngress(
            "HostsToData", GroupId=Ref(data), IpProtocol="tcp", FromPort=NFS, ToPort=NFS,
            SourceSecurityGroupId=Ref(host), Description="NFS from the hosts (bridge services with data)"))
    for link in links.grouped_all(links.SERVICE_SECURITY_GROUPS, app):
        stack.publish_members(link, {name: Ref(tasks[name]) for name in link.members(app)})

    _peer_groups(stack, vpc, tasks)
    for svc in app.awsvpc_services:
        for peer in app.peers(svc):
            if (svc.name, peer) in shared:
                continue
            edge = f"{logical_id(svc.name)}To{logical_id(peer)}"
            _allow(stack, tasks[svc.name], tasks[peer], app.service(peer), edge,
                   separate_egress=svc.name in reach[peer])
    for peer, clients in _bridge_peers(app).items():
        target = app.service(peer)
        for port in target.listening_ports:
            stack.add(SecurityGroupIngress(
                f"HostsTo{logical_id(peer)}{_port_suffix(target, port)}Ingress", GroupId=Ref(tasks[peer]),
                IpProtocol="tcp", FromPort=port, ToPort=port, SourceSecurityGroupId=Ref(host),
                Description=f"{peer} from bridge services on the hosts: {', '.join(clients)}"))

    if app.public_services:
        _load_balancer_group(stack, vpc, tasks, host)
    if app.nlb_services:
        _network_load_balancer_group(stack, vpc, tasks, host)
    return tasks, host


def _peer_groups(stack: Stack, vpc: VPC, tasks: dict[str, SecurityGroup]) -> None:
    """One group per set of services that all reach each other (peer_groups): it sends to itself on the
    members' ports, and each member's own group admits it on that member's ports only."""
    app = stack.app
    made = {}
    for group in peer_groups.peer_groups(app):
        lid = logical_id(group.name)
        shared = made[group.name] = stack.add(SecurityGroup(
            f"{lid}SecurityGroup", VpcId=Ref(vpc), SecurityGroupEgress=[NO_EGRESS],
            GroupDescription=f"{app.name} tasks of {len(group.members)} services that all reach each other",
            Tags=Tags(Name=f"{app.name}-{group.name}")))
        ports = sorted({port for name in group.members for port in app.service(name).listening_ports})
        for port in ports:
            # Separate: a group's inline rule cannot name the group itself.
            stack.add(SecurityGroupEgress(
                f"{lid}Port{port}Egress", GroupId=Ref(shared), IpProtocol="tcp", FromPort=port, ToPort=port,
                DestinationSecurityGroupId=Ref(shared), Description=f"To the services of {group.name} on {port}"))
        for name in group.members:
            target = app.service(name)
            for port in target.listening_ports:
                stack.add(SecurityGroupIngress(
                    f"{lid}To{logical_id(name)}Port{port}Ingress", GroupId=Ref(tasks[name]), IpProtocol="tcp",
                    FromPort=port, ToPort=port, SourceSecurityGroupId=Ref(shared),
                    Description=f"{name} from the services of {group.name}"))
    if made:
        stack.publish_members(links.PEER_SECURITY_GROUPS, {name: Ref(group) for name, group in made.items()})


def _bridge_peers(app: App) -> dict[str, list[str]]:
    """awsvpc service -> the bridge services that connect to it (their connections leave from the hosts)."""
    found: dict[str, list[str]] = {}
    for svc in app.bridge_services:
        for peer in app.peers(svc):
            found.setdefault(peer, []).append(svc.name)
    return dict(sorted(found.items()))


def _host_group(stack: Stack, vpc: VPC, tasks: dict[str, SecurityGroup], data: SecurityGroup | None) -> SecurityGroup:
    """The hosts' group, which is also every bridge container's: their connections leave from the host."""
    app = stack.app
    egress = [SecurityGroupRule(IpProtocol="tcp", FromPort=port, ToPort=port, CidrIp="0.0.0.0/0", Description=what)
              for port, what in ((443, "AWS APIs, ECR, Docker Hub"), (80, "Package mirrors"))]
    # A bridge container calling the app's public URL reaches the load balancer's public addresses,
    # which change: only the port can be named.
    egress += [SecurityGroupRule(IpProtocol="tcp", FromPort=port, ToPort=port, CidrIp="0.0.0.0/0",
                                 Description=f"The load balancer's listener {port} (bridge services call its URLs)")
               for port in capacity.called_ports(app) if port not in (80, 443)]
    egress += [rule for peer in _bridge_peers(app) for rule in _egress_rules(app.service(peer), tasks[peer])]
    if any(svc.network_mode == "bridge" for svc in app.stored_services):
        egress.append(SecurityGroupRule(IpProtocol="tcp", FromPort=NFS, ToPort=NFS,
                                        DestinationSecurityGroupId=Ref(data), Description="Bridge services' data"))
    inbound = "load balancer on the dynamic ports" if _bridge_public(app) else "no inbound"
    host = stack.add(SecurityGroup(
        "HostSecurityGroup", GroupDescription=f"{app.name} ECS hosts: {inbound}; HTTPS/HTTP out for ECS, ECR, SSM",
        VpcId=Ref(vpc), SecurityGroupIngress=[], SecurityGroupEgress=egress, Tags=Tags(Name=f"{app.name}-hosts"),
    ))
    stack.publish(links.HOST_SECURITY_GROUP, Ref(host))
    return host


def _bridge_public(app: App) -> list[Service]:
    return [svc for svc in app.public_services if svc.network_mode == "bridge"]


def _load_balancer_group(stack: Stack, vpc: VPC, tasks: dict[str, SecurityGroup], host: SecurityGroup) -> None:
    app = stack.app
    cidr = stack.use(links.INGRESS_CIDR)
    bridge = _bridge_public(app)
    balancer = stack.add(SecurityGroup(
        "LoadBalancerSecurityGroup", GroupDescription=f"{app.name} load balancer: listener ports from the allowed CIDR",
        VpcId=Ref(vpc),
        SecurityGroupIngress=[SecurityGroupRule(IpProtocol="tcp", FromPort=port, ToPort=port, CidrIp=cidr,
                                                Description=f"Listener {port}") for port in app.listener_ports],
        SecurityGroupEgress=[SecurityGroupRule(IpProtocol="tcp", FromPort=svc.port, ToPort=svc.port,
                                               DestinationSecurityGroupId=Ref(tasks[svc.name]),
                                               Description=f"To {svc.name}")
                             # Sorted: reordering the config must not change the group.
                             for svc in sorted(app.public_services, key=lambda s: s.name)
                             if svc.network_mode == "awsvpc"]
        + ([SecurityGroupRule(IpProtocol="tcp", FromPort=EPHEMERAL[0], ToPort=EPHEMERAL[1],
                              DestinationSecurityGroupId=Ref(host),
                              Description=f"To {', '.join(sorted(s.name for s in bridge))} on the hosts' "
                                          "dynamic ports")]
           if bridge else []),
        Tags=Tags(Name=f"{app.name}-alb"),
    ))
    stack.publish(links.LOAD_BALANCER_SECURITY_GROUP, Ref(balancer))
    if capacity.redirects(app):
        stack.add(SecurityGroupIngress(
            "LoadBalancerHttpsIngress", Condition=loadbalancer.https_condition(stack), GroupId=Ref(balancer),
            IpProtocol="tcp", FromPort=capacity.HTTPS_PORT, ToPort=capacity.HTTPS_PORT, CidrIp=cidr,
            Description=f"Listener {capacity.HTTPS_PORT} (with a certificate)"))
    for svc in app.public_services:
        if svc.network_mode == "awsvpc":
            stack.add(SecurityGroupIngress(
                f"LoadBalancerTo{logical_id(svc.name)}", GroupId=Ref(tasks[svc.name]), IpProtocol="tcp",
                FromPort=svc.port, ToPort=svc.port, SourceSecurityGroupId=Ref(balancer),
                Description=f"{svc.name} from the load balancer",
            ))
    if bridge:
        stack.add(SecurityGroupIngress(
            "LoadBalancerToHosts", GroupId=Ref(host), IpProtocol="tcp", FromPort=EPHEMERAL[0], ToPort=EPHEMERAL[1],
            SourceSecurityGroupId=Ref(balancer),
            Description=f"{', '.join(sorted(s.name for s in bridge))} from the load balancer (dynamic host ports)"))
    if capacity.called_ports(app):
        _host_addresses_group(stack, vpc)


def _exec_endpoint(stack: Stack, vpc: VPC, subnets: list[Subnet], tasks: dict[str, SecurityGroup],
                   host: SecurityGroup) -> VPCEndpoint:
    """ECS Exec's path from awsvpc tasks to Session Manager: an interface endpoint for ssmmessages.

    ECS Exec runs Session Manager's agent in the task, which opens its channels to the ssmmessages endpoint
    over HTTPS (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec.html). An awsvpc task on
    EC2 gets no public IP, whatever its subnet (AssignPublicIp is for Fargate tasks; EC2 tasks reach the
    internet through a NAT gateway:
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-networking-awsvpc.html), and this VPC has
    no NAT, so without the endpoint it reaches nothing outside the VPC; a bridge container leaves through its
    host's interface and public IP and needs none. ssmmessages is the one endpoint ECS Exec needs: AWS's own
    ECS Exec checker looks for it alone (https://github.com/aws-containers/amazon-ecs-exec-checker,
    check-ecs-exec.sh, "VPC Endpoints"); ssm and ec2messages serve Run Command and instance registration,
    which tasks do not use, and kms and logs only session encryption and session logging, not configured here.

    Private DNS makes the region's ssmmessages name resolve to the endpoint's addresses in this VPC, which needs
    the VPC's DNS support and DNS hostnames (both on: _vpc) and the Amazon-provided resolver, which the DHCP
    options keep (_search_domain names only the search domain)
    (https://docs.aws.amazon.com/vpc/latest/privatelink/privatelink-access-aws-services.html). One endpoint
    interface per subnet, so one per AZ, each billed by the hour (`make plan`).

    The endpoint's group admits HTTPS from the groups of the services with exec, and from the hosts' group:
    with private DNS on, the hosts (their own Session Manager agent: AmazonSSMManagedInstanceCore) and every
    bridge container resolve ssmmessages to the endpoint too, and must still reach it.
    """
    app = stack.app
    exec_services = sorted(app.exec_endpoint_services, key=lambda s: s.name)
    group = stack.add(SecurityGroup(
        "ExecEndpointSecurityGroup", VpcId=Ref(vpc),
        GroupDescription=f"{app.name} ssmmessages endpoint (ECS Exec): HTTPS from the exec services and the hosts",
        SecurityGroupIngress=[SecurityGroupRule(IpProtocol="tcp", FromPort=HTTPS, ToPort=HTTPS,
                                                SourceSecurityGroupId=Ref(tasks[svc.name]),
                                                Description=f"ECS Exec in {svc.name}") for svc in exec_services]
        + [SecurityGroupRule(IpProtocol="tcp", FromPort=HTTPS, ToPort=HTTPS, SourceSecurityGroupId=Ref(host),
                             Description="The hosts and bridge containers (Session Manager's agent)")],
        SecurityGroupEgress=[NO_EGRESS], Tags=Tags(Name=f"{app.name}-exec-endpoint")))
    for svc in exec_services:
        # Separate: the endpoint's group names the task's group, so the task's group cannot name it back inline.
        stack.add(SecurityGroupEgress(
            f"{logical_id(svc.name)}ToExecEndpointEgress", GroupId=Ref(tasks[svc.name]), IpProtocol="tcp",
            FromPort=HTTPS, ToPort=HTTPS, DestinationSecurityGroupId=Ref(group),
            Description="ECS Exec: Session Manager's channels through the ssmmessages endpoint"))
    return stack.add(VPCEndpoint(
        "ExecEndpoint", VpcId=Ref(vpc), VpcEndpointType="Interface",
        ServiceName=Sub("com.amazonaws.${AWS::Region}.ssmmessages"), PrivateDnsEnabled=True,
        SubnetIds=[Ref(subnet) for subnet in subnets], SecurityGroupIds=[Ref(group)]))


def _nlb_ports(svc: Service) -> list[tuple[str, int]]:
    """(protocol, container port) a Network Load Balancer reaches on `svc`'s tasks: each published port and, for a
    UDP one, the TCP port its health check goes to. Health checks obey the load balancer's outbound rules and the
    targets' inbound ones:
    https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html"""
    found = [(pub.protocol.lower(), pub.container_port) for pub in svc.published]
    found += [("tcp", pub.checked_port(svc)) for pub in svc.published if pub.protocol == "UDP"]
    return sorted(set(found))


def _network_load_balancer_group(stack: Stack, vpc: VPC, tasks: dict[str, SecurityGroup],
                                 host: SecurityGroup) -> None:
    """The Network Load Balancer's group: its listeners from AllowedIngressCidr, out only to the tasks' ports."""
    app = stack.app
    cidr = stack.use(links.INGRESS_CIDR)
    bridge = sorted(s.name for s in app.nlb_services if s.network_mode == "bridge")
    awsvpc = sorted((s for s in app.nlb_services if s.network_mode == "awsvpc"), key=lambda s: s.name)
    balancer = stack.add(SecurityGroup(
        "NetworkLoadBalancerSecurityGroup", VpcId=Ref(vpc),
        GroupDescription=f"{app.name} network load balancer: listener ports from the allowed CIDR",
        SecurityGroupIngress=[SecurityGroupRule(IpProtocol=pub.protocol.lower(), FromPort=pub.port, ToPort=pub.port,
                                                CidrIp=cidr, Description=f"Listener {pub.port}/{pub.protocol}")
                              for _, pub in app.nlb_listeners],
        SecurityGroupEgress=[SecurityGroupRule(IpProtocol=protocol, FromPort=port, ToPort=port,
                                               DestinationSecurityGroupId=Ref(tasks[svc.name]),
                                               Description=f"To {svc.name}")
                             for svc in awsvpc for protocol, port in _nlb_ports(svc)]
        + ([SecurityGroupRule(IpProtocol="tcp", FromPort=EPHEMERAL[0], ToPort=EPHEMERAL[1],
                              DestinationSecurityGroupId=Ref(host),
                              Description=f"To {', '.join(bridge)} on the hosts' dynamic ports")] if bridge else []),
        Tags=Tags(Name=f"{app.name}-nlb"),
    ))
    stack.publish(links.NLB_SECURITY_GROUP, Ref(balancer))
    for svc in awsvpc:
        for protocol, port in _nlb_ports(svc):
            stack.add(SecurityGroupIngress(
                f"NetworkLoadBalancerTo{logical_id(svc.name)}{protocol.capitalize()}{port}",
                GroupId=Ref(tasks[svc.name]), IpProtocol=protocol, FromPort=port, ToPort=port,
                SourceSecurityGroupId=Ref(balancer),
                Description=f"{svc.name} from the network load balancer"))
    if bridge:
        stack.add(SecurityGroupIngress(
            "NetworkLoadBalancerToHosts", GroupId=Ref(host), IpProtocol="tcp", FromPort=EPHEMERAL[0],
            ToPort=EPHEMERAL[1], SourceSecurityGroupId=Ref(balancer),
            Description=f"{', '.join(bridge)} from the network load balancer (dynamic host ports)"))


def _host_addresses_group(stack: Stack, vpc: VPC) -> None:
    """The load balancer's second group: the hosts' public addresses on the listener ports their bridge
    containers call. Those calls leave through the internet gateway and arrive from the hosts' public
    IPs, which a reference to the hosts' group does not match (a referenced group admits "the private IP
    addresses of the network interfaces ... and not the public IP or Elastic IP addresses",
    https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html#security-group-referencing),
    nor does AllowedIngressCidr once it is narrowed. The hosts come and go, so the cluster stack's hosts
    function keeps one rule per host and port here; the template writes none."""
    group = stack.add(SecurityGroup(
        "HostAddressesSecurityGroup", VpcId=Ref(vpc),
        GroupDescription=f"{stack.app.name} load balancer: public addresses of the hosts (kept by the hosts function)",
        SecurityGroupIngress=[], SecurityGroupEgress=[NO_EGRESS], Tags=Tags(Name=f"{stack.app.name}-host-addresses")))
    stack.publish(links.HOST_ADDRESSES_SECURITY_GROUP, Ref(group))


def reachable(app: App) -> dict[str, set[str]]:
    """For each service, every service it connects to, directly or through others."""
    reach = {svc.name: set(app.peers(svc)) for svc in app.services}
    changed = True
    while changed:
        changed = False
        for found in reach.values():
            more = set().union(*(reach[peer] for peer in found)) - found
            if more:
                found |= more
                changed = True
    return reach


def _data_group(stack: Stack, vpc: VPC) -> SecurityGroup:
    """The EFS mount targets' group: NFS from the services that keep data, nothing else."""
    app = stack.app
    group = stack.add(SecurityGroup(
        "DataSecurityGroup", GroupDescription=f"{app.name} EFS mount targets: NFS from the services with data",
        VpcId=Ref(vpc), SecurityGroupEgress=[NO_EGRESS], Tags=Tags(Name=f"{app.name}-data")))
    stack.publish(links.DATA_SECURITY_GROUP, Ref(group))
    return group


def _data_egress(svc: Service, data: SecurityGroup | None) -> list[SecurityGroupRule]:
    if data is None or svc.data is None:
        return []
    return [SecurityGroupRule(IpProtocol="tcp", FromPort=NFS, ToPort=NFS, DestinationSecurityGroupId=Ref(data),
                              Description=f"{svc.name} data on EFS")]


def _port_suffix(service: Service, port: int) -> str:
    """No suffix for the service's own port (the logical IDs it always had), else Port<n>: stable when reordered."""
    return "" if port == service.port else f"Port{port}"


def _egress_rules(service: Service, target: SecurityGroup) -> list[SecurityGroupRule]:
    return [SecurityGroupRule(IpProtocol="tcp", FromPort=port, ToPort=port, DestinationSecurityGroupId=Ref(target),
                              Description=f"To {service.name}" + (f" on {port}" if port != service.port else ""))
            for port in service.listening_ports]


def _allow(stack: Stack, source: SecurityGroup, target: SecurityGroup, service: Service, name: str,
           separate_egress: bool) -> None:
    """Tasks of `source` may open connections to every port `service` listens on, on tasks of `target`."""
    for port in service.listening_ports:
        suffix = _port_suffix(service, port)
        if separate_egress:
            stack.add(SecurityGroupEgress(
                f"{name}{suffix}Egress", GroupId=Ref(source), IpProtocol="tcp", FromPort=port, ToPort=port,
                DestinationSecurityGroupId=Ref(target), Description=f"To {service.name}",
            ))
        stack.add(SecurityGroupIngress(
            f"{name}{suffix}Ingress", GroupId=Ref(target), IpProtocol="tcp", FromPort=port, ToPort=port,
            SourceSecurityGroupId=Ref(source), Description=f"{service.name} from its clients",
        ))
