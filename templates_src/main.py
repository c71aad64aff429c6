"""main.yaml: the root stack. It declares what varies per deployment and wires the children.

Children are fetched by taskcat's convention,
https://<QSS3BucketName>.s3.<region>.<url suffix>/<QSS3KeyPrefix><child>.yaml, so the same build
deploys from `aws cloudformation deploy`, from taskcat and from `make deploy`. Every parameter
but the bucket has a default.
"""
from __future__ import annotations

from troposphere import Join, Output, Parameter, Sub

from templates_src import (
    capacity,
    cluster,
    config,
    discovery,
    iam,
    instance_types,
    kept,
    links,
    loadbalancer,
    names,
    network,
    quotas,
    secrets,
    services,
    storage,
)
from templates_src.config import App
from templates_src.wiring import Stack, connect, output_of

BUCKET = "QSS3BucketName"
PREFIX = "QSS3KeyPrefix"
CERTIFICATE_PATTERN = r"^(arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+)?$"
CIDR_PATTERN = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$"


def children(app: App) -> list[Stack]:
    """The nested stacks, in the order the architecture reads."""
    stacks = [iam.build(app), network.build(app), secrets.build(app)]
    if app.stored_services:
        stacks.append(storage.build(app))
    stacks += [cluster.build(app), discovery.build(app)]
    if app.public_services:
        stacks.append(loadbalancer.build(app))
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
    sizes = dict(MinValue=0, MaxValue=config.MAX_INSTANCES)
    return {link.name: (link, props) for link, props in [
        (links.ENVIRONMENT_NAME, dict(Default=app.name, MaxLength=names.ENVIRONMENT_MAX,
                                      AllowedPattern=names.ENVIRONMENT_PATTERN,
                                      ConstraintDescription="lowercase letters, digits and hyphens; not starting "
                                                            "with aws, ecs or fargate")),
        (links.INSTANCE_TYPE, dict(Default=app.cluster.instance_type, AllowedValues=capacity.allowed_instance_types(app),
                                   ConstraintDescription=f"{configured.architecture} types on which the tasks fit "
                                                         f"within {needed} hosts (checked at build time)")),
        (links.MIN_SIZE, dict(Default=str(app.cluster.min_size), **sizes)),
        (links.DESIRED_CAPACITY, dict(Default=str(app.cluster.desired_capacity), **sizes)),
        (links.MAX_SIZE, dict(Default=str(app.cluster.max_size), MinValue=needed, MaxValue=config.MAX_INSTANCES,
                              ConstraintDescription=f"the tasks need {needed} hosts at the deployment peak")),
        (links.IMAGE_TAG, dict(Default="latest", AllowedPattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")),
        (links.SERVICES_RUNNING, dict(Default="true", AllowedValues=["true", "false"])),
        (links.CERTIFICATE_ARN, dict(Default="", AllowedPattern=CERTIFICATE_PATTERN,
                                     ConstraintDescription="an ACM certificate ARN, or empty")),
        (links.ACCESS_LOGS_BUCKET, dict(Default="", AllowedPattern=r"^([0-9a-z][0-9a-z.-]{1,61}[0-9a-z])?$",
                                        ConstraintDescription="an S3 bucket name, or empty")),
        (links.INGRESS_CIDR, dict(Default="0.0.0.0/0", AllowedPattern=CIDR_PATTERN,
                                  ConstraintDescription="an IPv4 CIDR block such as 203.0.113.0/24")),
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
    kept.add_rules(root)
    _outputs(root, stacks)
    return root


def _outputs(root: Stack, stacks: list[Stack]) -> None:
    app = root.app
    t = root.template
    for svc in app.public_services:
        t.add_output(Output(config.url_output(svc), Description=f"Public URL of {svc.name}",
                            Value=Sub(loadbalancer.url(svc), **{
                                link.name: output_of(stacks, link) for link in (links.LOAD_BALANCER_DNS,
                                                                                links.URL_SCHEME)})))
    t.add_output(Output("ClusterName", Description="ECS cluster", Value=output_of(stacks, links.CLUSTER_NAME)))
    t.add_output(Output("NamespaceName", Description="Cloud Map namespace: services resolve as <service>.<namespace>",
                        Value=discovery.namespace(app)))
    names = [output_of(stacks, links.service_names(group)) for group in range(len(quotas.service_groups(app)))]
    t.add_output(Output("ServiceNames", Description="ECS services, in start order",
                        Value=names[0] if len(names) == 1 else Join(",", names)))
