"""nlb.yaml: the internet-facing Network Load Balancer, for the ports that are not HTTP.

A game server, a gRPC or MQTT broker, a DNS or mail server speaks its own protocol: behind the ALB's
HTTP listener its health checks could never pass. Each such port (config.Published) is a TCP or UDP
listener here, forwarding to the service's container port as it comes. One load balancer carries
every such port of the app (one hourly charge), and the stack exists only when some service has one.

The load balancer has a security group (network.py): listeners admit AllowedIngressCidr, and the
tasks admit the load balancer's group, which holds even where the client's own address is preserved
(UDP): https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html.
A group can only be given to a Network Load Balancer when it is made, never added later (same page).

Health checks are TCP: a TCP port is checked on itself; a UDP port on a TCP port of the same task
(Published.health_port, default the service's port), since a Network Load Balancer checks over TCP,
HTTP or HTTPS only: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
"""
from __future__ import annotations

from troposphere import GetAtt, Ref
from troposphere.elasticloadbalancingv2 import (
    Action,
    Listener,
    LoadBalancer,
    LoadBalancerAttributes,
    TargetGroup,
    TargetGroupAttribute,
)

from templates_src.app import names, quotas
from templates_src.stacks import links
from templates_src.app.config import App, Published, Service, logical_id
from templates_src.stacks.wiring import Stack, checkov_skip


def build(app: App) -> Stack:
    stack = Stack("nlb", app, f"{app.name}: internet-facing Network Load Balancer for the ports that are not HTTP")
    stack.use(links.ENVIRONMENT_NAME)
    balancer = stack.add(LoadBalancer(
        "NetworkLoadBalancer", Name=names.network_load_balancer().sub(), Scheme="internet-facing", Type="network",
        Subnets=stack.use(links.SUBNET_IDS), SecurityGroups=[stack.use(links.NLB_SECURITY_GROUP)],
        LoadBalancerAttributes=[
            LoadBalancerAttributes(Key="deletion_protection.enabled", Value="false"),
            # A service's single task runs in one AZ; without cross-zone, the other AZ's node (its address in
            # the load balancer's DNS answer) has no target to send to
            # ("Cross-zone load balancing", https://docs.aws.amazon.com/elasticloadbalancing/latest/network/
            # network-load-balancers.html)
            LoadBalancerAttributes(Key="load_balancing.cross_zone.enabled", Value="true"),
        ],
        Metadata=checkov_skip(("CKV_AWS_91", "A Network Load Balancer writes access logs for TLS listeners only, and "
                                             "these are TCP and UDP: https://docs.aws.amazon.com/elasticloadbalancing/"
                                             "latest/network/load-balancer-access-logs.html")),
    ))
    stack.publish(links.NLB_DNS, GetAtt(balancer, "DNSName"))
    groups = {}
    for svc, pub in app.nlb_listeners:
        group = _target_group(stack, svc, pub)
        groups[links.listener_key(svc, pub)] = group
        stack.add(Listener(f"NetworkListener{pub.port}", LoadBalancerArn=Ref(balancer), Port=pub.port,
                           Protocol=pub.protocol,
                           DefaultActions=[Action(Type="forward", TargetGroupArn=Ref(group))]))
    for group in range(len(quotas.service_groups(app))):
        link = links.grouped_listeners(app, group)
        if link.members(app):
            stack.publish_members(link, {key: Ref(groups[key]) for key in link.members(app)})
    if app.alarms:  # the dimensions of the alarms' metrics (alarms.py)
        stack.publish(links.NLB_FULL_NAME, GetAtt(balancer, "LoadBalancerFullName"))
        stack.publish_members(links.NLB_TARGET_GROUP_FULL_NAMES, {key: GetAtt(group, "TargetGroupFullName")
                                                                  for key, group in groups.items()})
    return stack


def _target_group(stack: Stack, svc: Service, pub: Published) -> TargetGroup:
    check = svc.health_check
    # No Name: CloudFormation makes a unique one, and a service with several ports would otherwise need
    # a name per port within the 32 characters a target group name may have.
    return stack.add(TargetGroup(
        f"{logical_id(svc.name)}Port{pub.port}TargetGroup",
        # awsvpc tasks register by their own address; bridge tasks by host and the port Docker gave them.
        TargetType="ip" if svc.network_mode == "awsvpc" else "instance", Protocol=pub.protocol,
        Port=pub.container_port, VpcId=stack.use(links.VPC_ID),
        HealthCheckProtocol="TCP",
        HealthCheckPort="traffic-port" if pub.protocol == "TCP" else str(pub.checked_port(svc)),
        HealthCheckIntervalSeconds=check.interval, HealthCheckTimeoutSeconds=check.timeout,
        HealthyThresholdCount=2, UnhealthyThresholdCount=check.retries,
        TargetGroupAttributes=[TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value="30")],
    ))


def endpoints(app: App) -> str:
    """What the load balancer's DNS name serves, for the root output's description."""
    return ", ".join(f"{svc.name} on {pub.port}/{pub.protocol}" for svc, pub in app.nlb_listeners)
