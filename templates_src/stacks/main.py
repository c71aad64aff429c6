"""main.yaml: the root stack. It declares what varies per deployment and wires the children.

Children are fetched by taskcat's convention,
https://<QSS3BucketName>.s3.<region>.<url suffix>/<QSS3KeyPrefix><child>.yaml, so the same build
deploys from `aws cloudformation deploy`, from taskcat and from `make deploy`. Every parameter
but the bucket has a default. Combinations of parameters that no single parameter's constraints
can refuse are refused by the template's Rules, which CloudFormation evaluates before it creates
or changes anything (`Stack.add_rule`).
"""
from __future__ import annotations

from troposphere import Equals, Join, Not, Or, Output, Parameter, Ref, Sub

from templates_src.app import capacity, config, instance_types, names, quotas
from templates_src.stacks import (
    alarms,
    cluster,
    discovery,
    iam,
    kept,
    links,
    loadbalancer,
    network,
    nlb,
    secrets,
    services,
    storage,
)
from templates_src.app.config import App
from templates_src.stacks.wiring import Stack, connect, output_of

BUCKET = "QSS3BucketName"
PREFIX = "QSS3KeyPrefix"
CERTIFICATE_PATTERN = r"^(arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+)?$"
CIDR_PATTERN = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$"
# Lowercase labels of letters, digits and inner hyphens, at least two of them; at most 64 characters,
# ACM's limit for a certificate's first name:
# https://docs.aws.amazon.com/acm/latest/APIReference/API_RequestCertificate.html
DOMAIN_PATTERN = r"^(([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]([a-z0-9-]*[a-z0-9])?)?$"
DOMAIN_MAX = 64
# A Route 53 hosted zone ID as CloudFormation takes it: without the /hostedzone/ prefix the API lists
# (at most 32 letters and digits).
ZONE_PATTERN = r"^([A-Z0-9]{1,32})?$"


def children(app: App) -> list[Stack]:
    """The nested stacks, in the order the architecture reads."""
    stacks = [iam.build(app), network.build(app), secrets.build(app)]
    if app.stored_services:
        stacks.append(storage.build(app))
    stacks += [cluster.build(app), discovery.build(app)]
    if app.public_services:
        stacks.append(loadbalancer.build(app))
    if app.nlb_services:
        stacks.append(nlb.build(app))
    if app.alarms:  # before the services: their deployments name its alarms
        stacks.append(alarms.build(app))
    groups = quotas.service_groups(app)
    made = [services.build(app, group) for group in range(len(groups))]
    for later, stack in enumerate(made):
        needs = {dep for name in groups[later] for dep in app.service(name).depends_on}
        stack.after = [made[earlier] for earlier in range(later) if needs & set(groups[earlier])]
    return stacks + made


def root_parameters(app: App) -> dict[str, tuple[links.Link, dict]]:
    """Deploy-time knobs, each with the default the build was checked against."""
    configured = instance_types.TYPES[app.cluster.instance_type]
    needed = capacity.instances_needed(app, configured)
    return {link.name: (link, props) for link, props in [
        (links.ENVIRONMENT_NAME, dict(Default=app.name, MaxLength=names.ENVIRONMENT_MAX,
                                      AllowedPattern=names.ENVIRONMENT_PATTERN,
                                      ConstraintDescription="lowercase letters, digits and hyphens; not starting "
                                                            "with aws, ecs or fargate")),
        (links.INSTANCE_TYPE, dict(Default=app.cluster.instance_type, AllowedValues=capacity.allowed_instance_types(app),
                                   ConstraintDescription=f"{configured.architecture} types on which the tasks fit "
                                                         f"within {needed} hosts (checked at build time)")),
        (links.MIN_SIZE, dict(Default=str(app.cluster.min_size), MinValue=0, MaxValue=config.MIN_SIZE_MAX)),
        (links.MAX_SIZE, dict(Default=str(app.cluster.max_size), MinValue=needed,
                              MaxValue=capacity.max_hosts(app),
                              ConstraintDescription=f"the tasks need {needed} hosts at the deployment peak")),
        (links.IMAGE_TAG, dict(Default="latest", AllowedPattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")),
        (links.SERVICES_RUNNING, dict(Default="true", AllowedValues=["true", "false"])),
        (links.DOMAIN_NAME, dict(Default="", AllowedPattern=DOMAIN_PATTERN, MaxLength=DOMAIN_MAX,
                                 ConstraintDescription=f"a lowercase DNS name such as dks.example.com (at most "
                                                       f"{DOMAIN_MAX} characters), or empty")),
        (links.HOSTED_ZONE_ID, dict(Default="", AllowedPattern=ZONE_PATTERN,
                                    ConstraintDescription="a Route 53 hosted zone ID such as Z0123456789ABCDEFGHIJ "
                                                          "(without /hostedzone/), or empty")),
        (links.CERTIFICATE_ARN, dict(Default="", AllowedPattern=CERTIFICATE_PATTERN,
                                     ConstraintDescription="an ACM certificate ARN, or empty")),
        (links.ACCESS_LOGS_BUCKET, dict(Default="", AllowedPattern=r"^([0-9a-z][0-9a-z.-]{1,61}[0-9a-z])?$",
                                        ConstraintDescription="an S3 bucket name, or empty")),
        (links.INGRESS_CIDR, dict(Default="0.0.0.0/0", AllowedPattern=CIDR_PATTERN,
                                  ConstraintDescription="an IPv4 CIDR block such as 203.0.113.0/24")),
        *([(links.ALARM_EMAIL, dict(Default=app.alarms.email, MaxLength=config.EMAIL_MAX,
                                    AllowedPattern=f"^({config.EMAIL.pattern[1:-1]})?$",
                                    ConstraintDescription="an email address such as ops@example.com, or empty"))]
          if app.alarms else []),
        (links.AMI_ID, dict(Type="AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                            Default=cluster.ami_parameter(configured.architecture),
                            Description="SSM parameter naming the ECS-optimized Amazon Linux 2023 AMI "
                                        f"({configured.architecture})")),
    ]}


def build(app: App, stacks: list[Stack], local_urls: bool = False) -> Stack:
    root = Stack("main", app, config.ROOT_DESCRIPTION.format(app.description or app.name))
    if not local_urls:  # the local variant (for cfn-lint) reads children from disk, not S3
        root.template.add_parameter(Parameter(
            BUCKET, Type="String", AllowedPattern=r"^[0-9a-z][0-9a-z-]*[0-9a-z]$",
            Description="S3 bucket holding the built templates (no dots: it is used in a virtual-hosted URL)",
            ConstraintDescription="lowercase letters, digits and hyphens"))
        root.template.add_parameter(Parameter(
            PREFIX, Type="String", Default=f"{app.name}/", AllowedPattern=r"^([0-9a-zA-Z!_.*'()-]+/)*$",
            Description="Key prefix of the templates in the bucket, ending with /",
            ConstraintDescription="S3 key characters, ending with /"))
    wanted = {name for child in stacks for name in child.inputs}
    for name, (link, props) in {**root_parameters(app), **kept.root_parameters(app)}.items():
        if name in wanted:
            root.use(link, **props)

    def template_url(child: Stack):
        if local_urls:
            return f"./{child.name}.yaml"
        return Sub(f"https://${{{BUCKET}}}.s3.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{PREFIX}}}{child.name}.yaml")

    connect(root, stacks, template_url)
    if links.DOMAIN_NAME.name in root.inputs:
        _domain_rules(root)
    _size_rules(root)
    kept.add_rules(root)
    _outputs(root, stacks)
    return root


def _given(link: links.Link) -> Not:
    return Not(Equals(Ref(link.name), ""))


def _domain_rules(root: Stack) -> None:
    """HTTPS needs both a certificate and the name it covers: an ACM certificate cannot cover the load
    balancer's own *.elb.amazonaws.com name, so a certificate without DomainName would redirect every
    visitor to a name that fails the TLS check, and a DomainName without a certificate would serve
    nothing on it."""
    domain, zone, certificate = links.DOMAIN_NAME.name, links.HOSTED_ZONE_ID.name, links.CERTIFICATE_ARN.name
    root.add_rule("CertificateNeedsDomain", [(
        _given(links.DOMAIN_NAME),
        f"{certificate} needs {domain}: give the name the certificate covers, which every URL then uses (a "
        f"certificate cannot cover the load balancer's own name)")], when=_given(links.CERTIFICATE_ARN))
    root.add_rule("ZoneNeedsDomain", [(
        _given(links.DOMAIN_NAME),
        f"{zone} needs {domain}: give the name to serve from that hosted zone")], when=_given(links.HOSTED_ZONE_ID))
    root.add_rule("DomainNeedsCertificate", [(
        Or(_given(links.HOSTED_ZONE_ID), _given(links.CERTIFICATE_ARN)),
        f"{domain} needs {zone} (a certificate is made and validated in that Route 53 zone) or {certificate} "
        f"(a certificate made elsewhere for {domain})")], when=_given(links.DOMAIN_NAME))


def _size_rules(root: Stack) -> None:
    """MinSize <= MaxSize. Rules compare no numbers, only list membership, so each MinSize above the
    lowest MaxSize gets a rule listing the MaxSize values below it (config.MIN_SIZE_MAX bounds MinSize
    and so their number). The Auto Scaling group would refuse the pair too, but only midway through a
    deploy, after the stacks before it were made."""
    lowest = root.template.parameters[links.MAX_SIZE.name].properties["MinValue"]
    for size in range(lowest + 1, config.MIN_SIZE_MAX + 1):
        root.add_rule(f"MinSize{size}NeedsMaxSize", [(
            # troposphere has no class for the rule function Fn::Contains: the plain mapping.
            Not({"Fn::Contains": [[str(n) for n in range(lowest, size)], Ref(links.MAX_SIZE.name)]}),
            f"MinSize {size} needs MaxSize of at least {size}: raise MaxSize or lower MinSize")],
            when=Equals(Ref(links.MIN_SIZE.name), str(size)))


def _outputs(root: Stack, stacks: list[Stack]) -> None:
    app = root.app
    t = root.template
    for svc in app.public_services:
        t.add_output(Output(config.url_output(svc), Description=f"Public URL of {svc.name}",
                            Value=Sub(loadbalancer.url(svc), **{
                                link.name: output_of(stacks, link) for link in (links.PUBLIC_HOST,
                                                                                links.URL_SCHEME)})))
    if app.public_services:
        t.add_output(Output(links.LOAD_BALANCER_DNS.name,
                            Description="DNS name of the load balancer: point DomainName at it (alias A record or "
                                        "CNAME) unless HostedZoneId was given, which writes that record",
                            Value=output_of(stacks, links.LOAD_BALANCER_DNS)))
    if app.nlb_services:
        t.add_output(Output(links.NLB_DNS.name,
                            Description=f"DNS name of the Network Load Balancer: {nlb.endpoints(app)}"[:1024],
                            Value=output_of(stacks, links.NLB_DNS)))
    t.add_output(Output("ClusterName", Description="ECS cluster", Value=output_of(stacks, links.CLUSTER_NAME)))
    t.add_output(Output("NamespaceName", Description="Cloud Map namespace: services resolve as <service>.<namespace>",
                        Value=discovery.namespace(app)))
    names = [output_of(stacks, links.service_names(group)) for group in range(len(quotas.service_groups(app)))]
    t.add_output(Output("ServiceNames", Description="ECS services, in start order",
                        Value=names[0] if len(names) == 1 else Join(",", names)))
