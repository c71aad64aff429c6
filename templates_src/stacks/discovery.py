"""discovery.yaml: Cloud Map private DNS namespace and one discovery service per app service.

A task of service S registers an A record S.<namespace> with its own (awsvpc) address; that is
the name other services use (dks-api's DB_HOST is dks-db.dks.local). A records need awsvpc:
bridge and host networking only get SRV records, which JDBC and Node clients cannot use
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-discovery.html), so a bridge
service gets no discovery service; the config refuses a reference to its name.
"""
from __future__ import annotations

from troposphere import GetAtt, Ref
from troposphere.servicediscovery import DnsConfig, DnsRecord, HealthCheckCustomConfig, PrivateDnsNamespace
from troposphere.servicediscovery import Service as DiscoveryService

from templates_src.stacks import links
from templates_src.app.config import App, logical_id
from templates_src.stacks.wiring import Stack

# Seconds resolvers cache an answer: short, so a replaced task is found within seconds.
RECORD_TTL = 10


def namespace(app: App) -> str:
    return app.namespace or f"{app.name}.local"


def hostname(app: App, service: str) -> str:
    return f"{service}.{namespace(app)}"


def build(app: App) -> Stack:
    stack = Stack("discovery", app, f"{app.name}: Cloud Map namespace {namespace(app)} and discovery services")
    ns = stack.add(PrivateDnsNamespace("Namespace", Name=namespace(app), Vpc=stack.use(links.VPC_ID),
                                       Description=f"{app.name} services"))
    stack.publish(links.NAMESPACE_ID, Ref(ns))
    services = {svc.name: stack.add(DiscoveryService(
        f"{logical_id(svc.name)}Discovery", Name=svc.name, NamespaceId=Ref(ns),
        Description=f"{svc.name} tasks",
        DnsConfig=DnsConfig(DnsRecords=[DnsRecord(Type="A", TTL=RECORD_TTL)], RoutingPolicy="MULTIVALUE"),
        # ECS reports task health to Cloud Map itself (custom health check).
        HealthCheckCustomConfig=HealthCheckCustomConfig(FailureThreshold=1),
    )) for svc in app.awsvpc_services}
    for link in links.grouped_all(links.DISCOVERY_SERVICE_ARNS, app):
        stack.publish_members(link, {name: GetAtt(services[name], "Arn") for name in link.members(app)})
    return stack
