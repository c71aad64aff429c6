"""loadbalancer.yaml: internet-facing ALB, one listener per public port, ip target groups.

Each public service is either a listener's default action or a path rule on it. The DKS API is
public too: the UI calls it from the visitor's browser, which cannot resolve Cloud Map names.
"""
from __future__ import annotations

from troposphere import GetAtt, Ref
from troposphere.elasticloadbalancingv2 import (
    Action, Condition, FixedResponseConfig, Listener, ListenerRule, ListenerRuleAction, LoadBalancer,
    LoadBalancerAttributes, Matcher, PathPatternConfig, TargetGroup, TargetGroupAttribute,
)

from templates_src import links, names
from templates_src.config import App, Service, logical_id
from templates_src.wiring import Stack


def build(app: App) -> Stack:
    stack = Stack("loadbalancer", app, f"{app.name}: internet-facing Application Load Balancer")
    stack.use(links.ENVIRONMENT_NAME)
    balancer = stack.add(LoadBalancer(
        "LoadBalancer", Name=names.load_balancer().sub(), Scheme="internet-facing", Type="application",
        Subnets=stack.use(links.SUBNET_IDS), SecurityGroups=[stack.use(links.LOAD_BALANCER_SECURITY_GROUP)],
        LoadBalancerAttributes=[
            LoadBalancerAttributes(Key="routing.http.drop_invalid_header_fields.enabled", Value="true"),
            LoadBalancerAttributes(Key="deletion_protection.enabled", Value="false"),
        ],
    ))
    stack.publish(links.LOAD_BALANCER_DNS, GetAtt(balancer, "DNSName"))
    groups = {svc.name: _target_group(stack, svc) for svc in app.public_services}
    for link in links.grouped_all(links.TARGET_GROUP_ARNS, app):
        stack.publish_members(link, {name: Ref(groups[name]) for name in link.members(app)})
    for port in app.listener_ports:
        _listener(stack, balancer, port, groups)
    return stack


def url(svc: Service) -> str:
    """The service's public URL as a Fn::Sub string over ${LoadBalancerDnsName}."""
    port = "" if svc.public.port == 80 else f":{svc.public.port}"
    prefix = (svc.public.path or "").rstrip("*").rstrip("/")
    return f"http://${{{links.LOAD_BALANCER_DNS.name}}}{port}{prefix}"


def _target_group(stack: Stack, svc: Service) -> TargetGroup:
    check = svc.health_check
    return stack.add(TargetGroup(
        f"{logical_id(svc.name)}TargetGroup", Name=names.target_group(svc).sub(),
        # awsvpc tasks register by IP address, not by instance.
        TargetType="ip", Protocol="HTTP", Port=svc.port, VpcId=stack.use(links.VPC_ID),
        HealthCheckPath=check.path, HealthCheckIntervalSeconds=check.interval, HealthCheckTimeoutSeconds=check.timeout,
        HealthyThresholdCount=2, UnhealthyThresholdCount=check.retries, Matcher=Matcher(HttpCode="200-399"),
        # Drain quickly: 30 s instead of 300 s per deployment and per delete.
        TargetGroupAttributes=[TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value="30")],
    ))


def _listener(stack: Stack, balancer: LoadBalancer, port: int, groups: dict[str, TargetGroup]) -> None:
    on_port = [s for s in stack.app.public_services if s.public.port == port]
    default = next((s for s in on_port if s.public.path is None), None)
    action = (Action(Type="forward", TargetGroupArn=Ref(groups[default.name])) if default else
              Action(Type="fixed-response", FixedResponseConfig=FixedResponseConfig(
                  StatusCode="404", ContentType="text/plain", MessageBody="Not found")))
    listener = stack.add(Listener(f"Listener{port}", LoadBalancerArn=Ref(balancer), Port=port, Protocol="HTTP",
                                  DefaultActions=[action]))
    # Most specific path first; priorities follow from the paths, not from config order.
    ruled = sorted((s for s in on_port if s.public.path), key=lambda s: (-len(s.public.path), s.public.path))
    for priority, svc in enumerate(ruled, start=1):
        stack.add(ListenerRule(
            f"{logical_id(svc.name)}ListenerRule", ListenerArn=Ref(listener), Priority=priority,
            Conditions=[Condition(Field="path-pattern", PathPatternConfig=PathPatternConfig(Values=[svc.public.path]))],
            Actions=[ListenerRuleAction(Type="forward", TargetGroupArn=Ref(groups[svc.name]))],
        ))
