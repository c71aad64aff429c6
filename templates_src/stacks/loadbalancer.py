"""loadbalancer.yaml: internet-facing ALB, one listener per public port, ip target groups.

Each public service is either a listener's default action or a path rule on it. The DKS API is
public too: the UI calls it from the visitor's browser, which cannot resolve Cloud Map names.

HTTPS is on exactly when there is a certificate: one made elsewhere (CertificateArn), or one this
stack makes for DomainName and validates in the Route 53 zone HostedZoneId. Then port 80 only
redirects to an HTTPS listener on 443, and every other listener serves HTTPS on its own port (TLS
1.2 or later). A certificate cannot cover the load balancer's own *.elb.amazonaws.com name, so
every URL is built on PublicHost (DomainName when given) and UrlScheme; with HostedZoneId an alias
record points DomainName at the load balancer. The root's Rules refuse the combinations that would
leave a certificate without its name or a name without a certificate. Access logs go to the
operator's bucket when AccessLogsBucket is given.
"""
from __future__ import annotations

from troposphere import And, Condition as ConditionRef, Equals, GetAtt, If, Join, Not, Or, Ref, Tags
from troposphere.certificatemanager import Certificate as AcmCertificate
from troposphere.certificatemanager import DomainValidationOption
from troposphere.elasticloadbalancingv2 import (
    Action,
    Certificate,
    Condition,
    FixedResponseConfig,
    Listener,
    ListenerRule,
    ListenerRuleAction,
    LoadBalancer,
    LoadBalancerAttributes,
    Matcher,
    PathPatternConfig,
    RedirectConfig,
    TargetGroup,
    TargetGroupAttribute,
)
from troposphere.route53 import AliasTarget, RecordSetType

from templates_src.app import names
from templates_src.app.capacity import HTTPS_PORT, called_ports, redirects
from templates_src.app.config import App, Service, logical_id
from templates_src.stacks import links
from templates_src.stacks.wiring import Stack, checkov_skip

HTTPS = "Https"  # condition: there is a certificate, given or made
GIVEN = "CertificateGiven"  # condition: CertificateArn names a certificate made elsewhere
MADE = "CertificateMade"  # condition: this stack makes the certificate (DomainName in HostedZoneId)
DOMAIN = "Domain"  # condition: DomainName was given; every URL is on it
ZONE = "HostedZone"  # condition: HostedZoneId was given; the alias record is written there
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # TLS 1.3 and 1.2 only
LOGS = "AccessLogs"  # condition: an access-log bucket was given


def _given(stack: Stack, link) -> Not:
    return Not(Equals(stack.use(link), ""))


def https_condition(stack: Stack) -> str:
    """Add (once) and name the condition "there is a certificate" to a stack that needs it."""
    t = stack.template
    if HTTPS not in t.conditions:
        t.add_condition(GIVEN, _given(stack, links.CERTIFICATE_ARN))
        t.add_condition(MADE, And(Equals(stack.use(links.CERTIFICATE_ARN), ""), _given(stack, links.DOMAIN_NAME),
                                  _given(stack, links.HOSTED_ZONE_ID)))
        t.add_condition(HTTPS, Or(ConditionRef(GIVEN), ConditionRef(MADE)))
    return HTTPS


def build(app: App) -> Stack:
    stack = Stack("loadbalancer", app, f"{app.name}: internet-facing Application Load Balancer")
    stack.use(links.ENVIRONMENT_NAME)
    https_condition(stack)
    stack.template.add_condition(LOGS, Not(Equals(stack.use(links.ACCESS_LOGS_BUCKET), "")))
    balancer = stack.add(LoadBalancer(
        "LoadBalancer", Name=names.load_balancer().sub(), Scheme="internet-facing", Type="application",
        Subnets=stack.use(links.SUBNET_IDS), SecurityGroups=[stack.use(links.LOAD_BALANCER_SECURITY_GROUP)]
        + ([stack.use(links.HOST_ADDRESSES_SECURITY_GROUP)] if called_ports(app) else []),
        LoadBalancerAttributes=[
            LoadBalancerAttributes(Key="routing.http.drop_invalid_header_fields.enabled", Value="true"),
            LoadBalancerAttributes(Key="deletion_protection.enabled", Value="false"),
            LoadBalancerAttributes(Key="access_logs.s3.enabled", Value=If(LOGS, "true", "false")),
            If(LOGS, LoadBalancerAttributes(Key="access_logs.s3.bucket", Value=Ref(links.ACCESS_LOGS_BUCKET.name)),
               Ref("AWS::NoValue")),
        ],
        Metadata=checkov_skip(("CKV_AWS_91", "Access logs need a bucket with the region's ELB delivery policy, which "
                                     "belongs to the operator's logging setup: give it as AccessLogsBucket")),
    ))
    certificate = _certificate(stack)
    _alias_record(stack, balancer)
    stack.publish(links.LOAD_BALANCER_DNS, GetAtt(balancer, "DNSName"))
    stack.publish(links.PUBLIC_HOST, If(DOMAIN, Ref(links.DOMAIN_NAME.name), GetAtt(balancer, "DNSName")))
    stack.publish(links.URL_SCHEME, If(HTTPS, "https", "http"))
    groups = {svc.name: _target_group(stack, svc) for svc in app.public_services}
    for link in links.grouped_all(links.TARGET_GROUP_ARNS, app):
        stack.publish_members(link, {name: Ref(groups[name]) for name in link.members(app)})
    # The metric ALBRequestCountPerTarget is labelled by the load balancer's and the target group's last ARN parts:
    # https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PredefinedMetricSpecification.html
    for link in links.grouped_all(links.REQUEST_COUNT_LABELS, app):
        stack.publish_members(link, {name: Join("/", [GetAtt(balancer, "LoadBalancerFullName"),
                                                      GetAtt(groups[name], "TargetGroupFullName")])
                                     for name in link.members(app)})
    if app.alarms:  # the dimensions of the alarms' metrics (alarms.py)
        stack.publish(links.LOAD_BALANCER_FULL_NAME, GetAtt(balancer, "LoadBalancerFullName"))
        stack.publish_members(links.TARGET_GROUP_FULL_NAMES, {name: GetAtt(group, "TargetGroupFullName")
                                                              for name, group in groups.items()})
    for port in app.listener_ports:
        _listener(stack, balancer, port, groups, certificate)
    return stack


def _certificate(stack: Stack):
    """The listeners' certificate ARN: the one given, or one made for DomainName and validated in
    HostedZoneId. With DNS validation in a Route 53 zone of the account, CloudFormation writes the
    validation CNAME itself and the resource completes only once ACM has issued the certificate, so
    no listener is made with a pending one (and CloudFormation never deletes that CNAME):
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-certificatemanager-certificate.html
    """
    stack.template.add_condition(DOMAIN, _given(stack, links.DOMAIN_NAME))
    domain = Ref(links.DOMAIN_NAME.name)
    made = stack.add(AcmCertificate(
        "Certificate", Condition=MADE, DomainName=domain, ValidationMethod="DNS",
        DomainValidationOptions=[DomainValidationOption(DomainName=domain,
                                                        HostedZoneId=Ref(links.HOSTED_ZONE_ID.name))],
        Tags=Tags(Name=names.load_balancer().sub()),
    ))
    return If(MADE, Ref(made), Ref(links.CERTIFICATE_ARN.name))


def _alias_record(stack: Stack, balancer: LoadBalancer) -> None:
    """DomainName -> the load balancer, in HostedZoneId: an alias A record, answered from the ALB's
    own addresses as they change (AliasTarget takes the ALB's CanonicalHostedZoneID):
    https://docs.aws.amazon.com/Route53/latest/APIReference/API_AliasTarget.html"""
    stack.template.add_condition(ZONE, _given(stack, links.HOSTED_ZONE_ID))
    stack.add(RecordSetType(
        "DomainRecord", Condition=ZONE, HostedZoneId=Ref(links.HOSTED_ZONE_ID.name),
        Name=Ref(links.DOMAIN_NAME.name), Type="A",
        AliasTarget=AliasTarget(DNSName=GetAtt(balancer, "DNSName"),
                                HostedZoneId=GetAtt(balancer, "CanonicalHostedZoneID"), EvaluateTargetHealth=False),
    ))


def url(svc: Service) -> str:
    """The service's public URL as a Fn::Sub string over ${UrlScheme} and ${PublicHost}
    (port 80 is 443 under https: the same URL without a port; 8080 is 8080 either way)."""
    port = "" if svc.public.port == 80 else f":{svc.public.port}"
    prefix = (svc.public.path or "").rstrip("*").rstrip("/")
    return f"${{{links.URL_SCHEME.name}}}://${{{links.PUBLIC_HOST.name}}}{port}{prefix}"


def _target_group(stack: Stack, svc: Service) -> TargetGroup:
    check = svc.health_check
    return stack.add(TargetGroup(
        f"{logical_id(svc.name)}TargetGroup", Name=names.target_group(svc).sub(),
        # awsvpc tasks register by their own IP address; bridge tasks by their host and the dynamic
        # host port Docker gave them (the group's Port is only a default ECS overrides per target).
        TargetType="ip" if svc.network_mode == "awsvpc" else "instance", Protocol="HTTP", Port=svc.port,
        VpcId=stack.use(links.VPC_ID),
        HealthCheckPath=check.path, HealthCheckIntervalSeconds=check.interval, HealthCheckTimeoutSeconds=check.timeout,
        HealthyThresholdCount=2, UnhealthyThresholdCount=check.retries, Matcher=Matcher(HttpCode="200-399"),
        # Drain quickly: 30 s instead of 300 s per deployment and per delete.
        TargetGroupAttributes=[TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value="30")],
    ))


def _listener(stack: Stack, balancer: LoadBalancer, port: int, groups: dict[str, TargetGroup], certificate) -> None:
    on_port = [s for s in stack.app.public_services if s.public.port == port]
    default = next((s for s in on_port if s.public.path is None), None)
    action = (Action(Type="forward", TargetGroupArn=Ref(groups[default.name])) if default else
              Action(Type="fixed-response", FixedResponseConfig=FixedResponseConfig(
                  StatusCode="404", ContentType="text/plain", MessageBody="Not found")))
    plain = ("CKV_AWS_2", "HTTP only while there is no certificate (DomainName with HostedZoneId or CertificateArn); "
                          "with one this listener "
                          + ("redirects to HTTPS on 443" if port == 80 and redirects(stack.app) else "serves HTTPS"))
    tls = ("CKV_AWS_103", "TLS 1.2+ (ELBSecurityPolicy-TLS13-1-2-2021-06) whenever there is a certificate")
    certificates = [Certificate(CertificateArn=certificate)]
    if port == 80 and redirects(stack.app):
        redirect = Action(Type="redirect", RedirectConfig=RedirectConfig(
            Protocol="HTTPS", Port=str(HTTPS_PORT), Host="#{host}", Path="/#{path}", Query="#{query}",
            StatusCode="HTTP_301"))
        stack.add(Listener(f"Listener{port}", LoadBalancerArn=Ref(balancer), Port=port, Protocol="HTTP",
                           DefaultActions=[If(HTTPS, redirect, action)], Metadata=checkov_skip(plain, tls)))
        secure = stack.add(Listener(f"Listener{HTTPS_PORT}", Condition=HTTPS, LoadBalancerArn=Ref(balancer),
                                    Port=HTTPS_PORT, Protocol="HTTPS", Certificates=certificates,
                                    SslPolicy=TLS_POLICY, DefaultActions=[action]))
        listener_arn = If(HTTPS, Ref(secure), Ref(f"Listener{port}"))
    else:
        listener = stack.add(Listener(
            f"Listener{port}", LoadBalancerArn=Ref(balancer), Port=port, Protocol=If(HTTPS, "HTTPS", "HTTP"),
            Certificates=If(HTTPS, certificates, Ref("AWS::NoValue")),
            SslPolicy=If(HTTPS, TLS_POLICY, Ref("AWS::NoValue")), DefaultActions=[action],
            Metadata=checkov_skip(plain, tls)))
        listener_arn = Ref(listener)
    # Most specific path first; priorities follow from the paths, not from config order.
    ruled = sorted((s for s in on_port if s.public.path), key=lambda s: (-len(s.public.path), s.public.path))
    for priority, svc in enumerate(ruled, start=1):
        stack.add(ListenerRule(
            f"{logical_id(svc.name)}ListenerRule", ListenerArn=listener_arn, Priority=priority,
            Conditions=[Condition(Field="path-pattern", PathPatternConfig=PathPatternConfig(Values=[svc.public.path]))],
            Actions=[ListenerRuleAction(Type="forward", TargetGroupArn=Ref(groups[svc.name]))],
        ))
