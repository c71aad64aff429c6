"""services.yaml: per app service a log group, a task definition and an ECS service.

A large app's services are split over several such stacks (services.yaml, services-2.yaml, ...;
see quotas): everything a service needs from elsewhere arrives through its stack's own wiring
links, nothing through sibling resources. Start order (depends_on) becomes DependsOn between ECS
services: CloudFormation waits for a service to be steady before creating the next, and deletes
them in reverse; across stacks, the root orders the stacks the same way.

A service's network mode (config.Service.network_mode) shapes both: awsvpc tasks get their own
interface, security group and Cloud Map record; a bridge service's containers use the host's
interface, so its ECS service has neither a network configuration nor a service registry, and its
load balancer target is the host and the port Docker picked.

Every container runs with the least it needs (config.Service.read_only, writable, capabilities, user,
init): a read-only root file system with tmpfs where the program writes, every Linux capability
dropped but the ones named, never privileged (the hosts refuse it too: cluster.py), an init process.
"""
from __future__ import annotations

import re
import shlex

from troposphere import Equals, GetAtt, If, Join, Ref, Sub
from troposphere.applicationautoscaling import (
    PredefinedMetricSpecification, ScalableTarget, ScalingPolicy, TargetTrackingScalingPolicyConfiguration,
)
from troposphere.ecs import (
    AuthorizationConfig, AwsvpcConfiguration, CapacityProviderStrategyItem, ContainerDefinition, DeploymentAlarms,
    DeploymentCircuitBreaker, DeploymentConfiguration, DockerVolumeConfiguration, EFSVolumeConfiguration, Environment,
    HealthCheck, KernelCapabilities, LinuxParameters, LoadBalancer, LogConfiguration, MountPoint, NetworkConfiguration,
    PlacementStrategy, PortMapping, RuntimePlatform, Secret, Service, ServiceRegistry, TaskDefinition, Tmpfs, Volume,
)
from troposphere.logs import LogGroup

from templates_src.app import instance_types, mirror, names, peer_groups, quotas
from templates_src.stacks import discovery, links, loadbalancer
from templates_src.app.config import REFERENCE, App, logical_id, references
from templates_src.app.config import Service as AppService
from templates_src.stacks.wiring import ListLink, Stack

CPU_ARCHITECTURE = {"x86_64": "X86_64", "arm64": "ARM64"}
DATA_VOLUME = "data"
STOPPED = "ServicesStopped"  # condition: ServicesRunning is false, every service runs no task


def stack_name(group: int) -> str:
    return "services" if group == 0 else f"services-{group + 1}"


def build(app: App, group: int = 0) -> Stack:
    """The services stack of one group of services (quotas.service_groups), in start order."""
    stack = Stack(stack_name(group), app, f"{app.name}: task definitions and ECS services")
    stack.group = group
    stack.use(links.ENVIRONMENT_NAME)
    stack.template.add_condition(STOPPED, Equals(stack.use(links.SERVICES_RUNNING), "false"))
    made = {}
    for name in quotas.service_groups(app)[group]:
        svc = app.service(name)
        logs = _log_group(stack, svc)
        task = _task_definition(stack, svc, logs)
        made[svc.name] = _service(stack, svc, task, set(made))
        if svc.scaling:
            _scaling(stack, svc, made[svc.name])
    stack.publish(links.service_names(group), Join(",", [GetAtt(s, "Name") for s in made.values()]))
    return stack


def _member(stack: Stack, link: ListLink, service: str):
    """This stack's entry for `service` in a per-service list."""
    return stack.member(links.grouped(link, stack.app, stack.group), service)


def _log_group(stack: Stack, svc: AppService) -> LogGroup:
    return stack.add(LogGroup(f"{logical_id(svc.name)}LogGroup", LogGroupName=names.log_group(svc).sub(),
                              RetentionInDays=stack.app.log_retention_days, KmsKeyId=stack.use(links.KEY_ARN)))


def image(stack: Stack, svc: AppService):
    """The image the hosts pull: always from the app's ECR when it is built or on Docker Hub."""
    if copy := mirror.copy_of(stack.app, svc.image):
        return names.image(copy.repository, copy.tag).sub()
    if svc.image:
        return svc.image
    stack.use(links.IMAGE_TAG)
    return names.image(svc.repository, f"${{{links.IMAGE_TAG.name}}}").sub()


def environment_value(stack: Stack, value: str):
    """Resolve {svc.host}, {svc.port} and {svc.url}; a URL needs the public host and scheme."""
    app = stack.app

    def resolve(match: re.Match) -> str:
        target = app.service(match.group(1))
        if match.group(2) == "host":
            return discovery.hostname(app, target.name)
        if match.group(2) == "port":
            return str(target.port)
        return "\0" + loadbalancer.url(target) + "\0"

    if not references(value):
        return value
    resolved = REFERENCE.sub(resolve, value)
    if "\0" not in resolved:
        return resolved
    # Fn::Sub: escape literal ${ in the user's text, keep the URL's ${PublicHost}.
    parts = resolved.split("\0")
    text = "".join(part if i % 2 else part.replace("${", "${!") for i, part in enumerate(parts))
    stack.use(links.PUBLIC_HOST)
    stack.use(links.URL_SCHEME)
    return Sub(text)


def file_variable(target: str) -> str:
    return "APP_FILE_" + re.sub(r"[^A-Za-z0-9]", "_", target.strip("/")).upper()


def secret_file_variable(target: str) -> str:
    return "APP_SECRET_FILE_" + re.sub(r"[^A-Za-z0-9]", "_", target.strip("/")).upper()


def launcher(svc: AppService) -> tuple[list[str] | None, list[str] | None]:
    """EntryPoint and Command; with `files`, a shell wrapper writes them, then runs the program.

    Each file travels in an environment variable of the task definition, so the files arrive with
    the task on any host, with no step on the host (the DB init script for postgres, for example).
    """
    entrypoint = list(svc.entrypoint) if svc.entrypoint else None
    command = list(svc.command) if svc.command else None
    if not svc.files and not svc.secret_files:
        return entrypoint, command
    lines = ["set -e"]
    for target in sorted(svc.files):
        folder = target.rsplit("/", 1)[0] or "/"
        lines += [f"mkdir -p {shlex.quote(folder)}",
                  f'printf %s "${file_variable(target)}" > {shlex.quote(target)}',
                  f"chmod 0755 {shlex.quote(target)}"]
    # A secret file is readable by every user, as Compose mounts one (mode 0444 by default,
    # https://docs.docker.com/reference/compose-file/services/#secrets): an entrypoint that starts as
    # root and steps down to the image's user must still read it. Its variable is unset before the
    # program starts, so the value is in the file only, as under Compose.
    for target in sorted(svc.secret_files):
        folder = target.rsplit("/", 1)[0] or "/"
        variable = secret_file_variable(target)
        lines += [f"mkdir -p {shlex.quote(folder)}",
                  f'printf %s "${variable}" > {shlex.quote(target)}',
                  f"chmod 0444 {shlex.quote(target)}",
                  f"unset {variable}"]
    lines.append('exec "$0" "$@"')
    program = (entrypoint or []) + (command or [])
    return ["/bin/sh", "-c", "\n".join(lines), program[0]], program[1:]


def privileges(svc: AppService) -> dict:
    """The container definition's properties that bound what it may do.

    Capabilities: with Drop ALL, the container has exactly the ones in Add; privileged would ignore both
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_KernelCapabilities.html).
    Tmpfs (EC2 only; Size in MiB is required) takes the container's memory as it fills, within the task's
    limit, which the fit check already reserves: Service.tmpfs_mib bounds them to half of it
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Tmpfs.html).
    A writable directory is noexec; the folders of `files` are exec, since the wrapper writes the files
    executable for the image's entrypoint to run (postgres runs an executable init script and sources
    one it cannot execute). ReadonlyRootFilesystem, User, Privileged and InitProcessEnabled map to
    docker run's --read-only, --user, --privileged and --init
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html).
    """
    files = {target.rsplit("/", 1)[0] or "/" for target in svc.files}
    tmpfs = [Tmpfs(ContainerPath=path, Size=svc.tmpfs_mib(),
                   MountOptions=["nosuid", "nodev", "exec" if path in files else "noexec"])
             for path in svc.tmpfs_paths()]
    return {
        "ReadonlyRootFilesystem": svc.read_only,
        "Privileged": False,
        "LinuxParameters": LinuxParameters(
            Capabilities=KernelCapabilities(Drop=["ALL"], **({"Add": list(svc.capabilities)} if svc.capabilities
                                                             else {})),
            InitProcessEnabled=svc.init, **({"Tmpfs": tmpfs} if tmpfs else {})),
        **({"User": svc.user} if svc.user else {}),
    }


def _data_volume(stack: Stack, svc: AppService) -> Volume:
    """Where the service's `data` lives: EFS, or (without EFS, on a read-only root) a Docker volume that
    lives as long as the task, on the host's disk rather than in memory; Docker fills a new volume with
    what the image has at that path, owner included
    (https://docs.docker.com/engine/storage/volumes/#populate-a-volume-using-a-container)."""
    if svc in stack.app.stored_services:
        return Volume(Name=DATA_VOLUME, EFSVolumeConfiguration=EFSVolumeConfiguration(
            FilesystemId=stack.use(links.FILE_SYSTEM_ID), TransitEncryption="ENABLED",
            # IAM: the task role must be allowed to mount (iam.yaml); the access point sets owner and root.
            AuthorizationConfig=AuthorizationConfig(AccessPointId=_member(stack, links.ACCESS_POINT_IDS, svc.name),
                                                    IAM="ENABLED")))
    return Volume(Name=DATA_VOLUME, DockerVolumeConfiguration=DockerVolumeConfiguration(Scope="task", Driver="local"))


def _task_definition(stack: Stack, svc: AppService, logs: LogGroup) -> TaskDefinition:
    app = stack.app
    entrypoint, command = launcher(svc)
    variables = {key: environment_value(stack, value) for key, value in svc.environment.items()}
    variables.update({file_variable(target): app.file_contents[source] for target, source in svc.files.items()})
    check = svc.health_check
    mounted = svc in app.stored_services or bool(svc.data and svc.read_only)
    container = ContainerDefinition(
        Name=svc.name, Image=image(stack, svc), Essential=True,
        # bridge: no HostPort, so Docker picks one from the host's ephemeral range per task (the load
        # balancer's instance target group learns it from ECS); awsvpc: the task's own address.
        PortMappings=port_mappings(svc),
        Environment=[Environment(Name=key, Value=variables[key]) for key in sorted(variables)],
        Secrets=[Secret(Name=key, ValueFrom=stack.member(links.SECRET_ARNS, secret))
                 for key, secret in sorted({**svc.secrets, **{secret_file_variable(target): secret for target, secret
                                                               in svc.secret_files.items()}}.items())],
        LogConfiguration=LogConfiguration(LogDriver="awslogs", Options={
            "awslogs-group": Ref(logs), "awslogs-region": Ref("AWS::Region"), "awslogs-stream-prefix": svc.name}),
        **({"HealthCheck": HealthCheck(Command=["CMD-SHELL", check.command], Interval=check.interval,
                                        Timeout=check.timeout, Retries=check.retries, StartPeriod=check.start_period)}
           if check.command else {}),
        **({"EntryPoint": entrypoint} if entrypoint else {}),
        **({"Command": command} if command else {}),
        **({"MountPoints": [MountPoint(SourceVolume=DATA_VOLUME, ContainerPath=svc.data.path)]} if mounted else {}),
        **privileges(svc),
    )
    arch = instance_types.TYPES[app.cluster.instance_type].architecture
    return stack.add(TaskDefinition(
        f"{logical_id(svc.name)}TaskDefinition", Family=names.task_family(svc).sub(),
        # A new image tag replaces the task definition, and CloudFormation deregisters the revision it
        # replaces: UpdateService then refuses it ("you can't update an existing service to reference an
        # INACTIVE task definition",
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html).
        # Retained, the previous revisions stay ACTIVE for make rollback; make cleanup deregisters them by the
        # tags the stack gives them (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/
        # aws-attribute-updatereplacepolicy.html). A stack delete still deregisters the current one.
        UpdateReplacePolicy="Retain",
        # W3011 wants DeletionPolicy Retain beside it; a stack delete is meant to deregister the revision it runs.
        Metadata={"cfn-lint": {"config": {"ignore_checks": ["W3011"]}}},
        NetworkMode=svc.network_mode, RequiresCompatibilities=["EC2"], Cpu=str(svc.cpu), Memory=str(svc.memory),
        RuntimePlatform=RuntimePlatform(CpuArchitecture=CPU_ARCHITECTURE[arch], OperatingSystemFamily="LINUX"),
        ExecutionRoleArn=stack.use(links.EXECUTION_ROLE_ARN), TaskRoleArn=_member(stack, links.TASK_ROLE_ARNS, svc.name),
        ContainerDefinitions=[container],
        **({"Volumes": [_data_volume(stack, svc)]} if mounted else {}),
    ))


def port_mappings(svc: AppService) -> list[PortMapping]:
    """The service's port over TCP, and each Network Load Balancer port's container port once (config refuses
    one port over both protocols, which ECS cannot map)."""
    ports = {svc.port: "tcp"}
    for pub in svc.published:
        ports.setdefault(pub.container_port, pub.protocol.lower())
    return [PortMapping(Name=f"{svc.name}-{port}" + ("-udp" if protocol == "udp" else ""), ContainerPort=port,
                        Protocol=protocol) for port, protocol in ports.items()]


def _deployment_alarms(stack: Stack, svc: AppService) -> dict:
    """With alarms on, a public service's deployment fails, and ECS rolls it back to the last one that completed,
    when its target group's 5xx or unhealthy-target alarm (alarms.py) goes into ALARM during the rollout or the
    bake time after it; the circuit breaker still fails one whose tasks never start:
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-alarm-failure.html,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-ecs-service-deploymentalarms.html.
    A service without a load balancer has no such signal of its own: CPU, memory or a task count below desired
    are what a rollout looks like for a while, so they notify but never fail a deployment."""
    if not (stack.app.alarms and svc.public):
        return {}
    return {"Alarms": DeploymentAlarms(AlarmNames=[_member(stack, links.TARGET_ERROR_ALARMS, svc.name),
                                                   _member(stack, links.UNHEALTHY_ALARMS, svc.name)],
                                       Enable=True, Rollback=True)}


def _service(stack: Stack, svc: AppService, task: TaskDefinition, here: set[str]) -> Service:
    balanced = ([LoadBalancer(ContainerName=svc.name, ContainerPort=svc.port,
                              TargetGroupArn=_member(stack, links.TARGET_GROUP_ARNS, svc.name))] if svc.public else [])
    balanced += [LoadBalancer(ContainerName=svc.name, ContainerPort=pub.container_port,
                              TargetGroupArn=stack.member(links.grouped_listeners(stack.app, stack.group),
                                                          links.listener_key(svc, pub)))
                 for pub in sorted(svc.published, key=lambda p: p.port)]
    public = {"LoadBalancers": balanced, "HealthCheckGracePeriodSeconds": svc.health_check.grace_period} \
        if balanced else {}
    return stack.add(Service(
        f"{logical_id(svc.name)}Service", ServiceName=svc.name, Cluster=stack.use(links.CLUSTER_NAME),
        TaskDefinition=Ref(task), DesiredCount=If(STOPPED, 0, _running_count(svc)),
        CapacityProviderStrategy=[CapacityProviderStrategyItem(
            CapacityProvider=stack.use(links.CAPACITY_PROVIDER), Weight=1, Base=0)],
        DeploymentConfiguration=DeploymentConfiguration(
            MinimumHealthyPercent=svc.deployment.min_healthy_percent, MaximumPercent=svc.deployment.max_percent,
            DeploymentCircuitBreaker=DeploymentCircuitBreaker(Enable=True, Rollback=True),
            **_deployment_alarms(stack, svc)),
        **({"NetworkConfiguration": NetworkConfiguration(AwsvpcConfiguration=AwsvpcConfiguration(
            Subnets=stack.use(links.SUBNET_IDS), AssignPublicIp="DISABLED",
            SecurityGroups=[_member(stack, links.SERVICE_SECURITY_GROUPS, svc.name)]
            + [stack.member(links.PEER_SECURITY_GROUPS, group.name)
               for group in peer_groups.groups_of(stack.app, svc.name)])),
            "ServiceRegistries": [ServiceRegistry(RegistryArn=_member(stack, links.DISCOVERY_SERVICE_ARNS, svc.name))]}
           if svc.network_mode == "awsvpc" else {}),
        PlacementStrategies=[PlacementStrategy(Type="spread", Field="attribute:ecs.availability-zone"),
                             PlacementStrategy(Type="binpack", Field="memory")],
        EnableECSManagedTags=True, PropagateTags="SERVICE",
        # ECS Exec (config.Service.exec): ECS starts each task with Session Manager's agent beside the program
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec.html).
        **({"EnableExecuteCommand": True} if svc.exec else {}),
        # Start order: nothing in the properties tells CloudFormation that this service needs the
        # ones it depends on (a DB_HOST is just a string), so it is said here; a dependency in an
        # earlier services stack is ordered by the root.
        **({"DependsOn": [f"{logical_id(dep)}Service" for dep in svc.depends_on if dep in here]}
           if any(dep in here for dep in svc.depends_on) else {}),
        **public,
    ))


def _running_count(svc: AppService):
    """DesiredCount while services run. A scaled service's is left out: CloudFormation then creates it with one
    task and, on every later update, leaves the count auto scaling chose alone instead of resetting it
    (https://github.com/aws/containers-roadmap/issues/493,
    https://github.com/awsdocs/aws-cloudformation-user-guide/issues/866); registering its scalable target
    lifts the count into min..max."""
    return Ref("AWS::NoValue") if svc.scaling else svc.desired_count


# Seconds after a scale-out before the next: a new task needs about a minute to start and take load, so a
# quicker second step would add tasks for load the first one has already met. Scale-in waits the
# default 300: "You should scale in conservatively to protect your application's availability"
# (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_TargetTrackingScalingPolicyConfiguration.html).
SCALE_OUT_COOLDOWN = 60
SCALE_IN_COOLDOWN = 300


def _scaling(stack: Stack, svc: AppService, service: Service) -> ScalableTarget:
    """The service's task count as an Application Auto Scaling target, and one target tracking policy per target.

    No RoleARN: registering an ECS service makes (once per account) and uses the service-linked role
    AWSServiceRoleForApplicationAutoScaling_ECSService
    (https://docs.aws.amazon.com/autoscaling/application/userguide/services-that-can-integrate-ecs.html); the
    first registration in an account needs iam:CreateServiceLinkedRole of whoever deploys
    (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html).
    With ServicesRunning false, min and max are 0: registering a target moves the service's count into its
    range (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html),
    so the service runs no task and no policy can add one; true again lifts it to min.
    """
    scaling = svc.scaling
    target = stack.add(ScalableTarget(
        f"{logical_id(svc.name)}ScalableTarget", ServiceNamespace="ecs", ScalableDimension="ecs:service:DesiredCount",
        ResourceId=Join("/", ["service", stack.use(links.CLUSTER_NAME), GetAtt(service, "Name")]),
        MinCapacity=If(STOPPED, 0, scaling.min), MaxCapacity=If(STOPPED, 0, scaling.max),
    ))
    metrics = []
    if scaling.cpu is not None:
        metrics.append(("Cpu", "cpu", float(scaling.cpu), PredefinedMetricSpecification(
            PredefinedMetricType="ECSServiceAverageCPUUtilization")))
    if scaling.requests_per_target is not None:
        metrics.append(("Requests", "requests", float(scaling.requests_per_target), PredefinedMetricSpecification(
            PredefinedMetricType="ALBRequestCountPerTarget",
            ResourceLabel=_member(stack, links.REQUEST_COUNT_LABELS, svc.name))))
    for suffix, name, value, metric in metrics:
        stack.add(ScalingPolicy(
            f"{logical_id(svc.name)}{suffix}Scaling", PolicyName=f"{svc.name}-{name}",
            PolicyType="TargetTrackingScaling", ScalingTargetId=Ref(target),
            TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
                TargetValue=value, PredefinedMetricSpecification=metric,
                ScaleOutCooldown=SCALE_OUT_COOLDOWN, ScaleInCooldown=SCALE_IN_COOLDOWN),
        ))
    return target
