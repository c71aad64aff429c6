"""The app config's checks across fields, as one step after parsing: names, ports, the dependency
graph, AWS limits, and whether the tasks fit on the cluster. Every problem is collected and raised
together as a ConfigError of `path.to.field: reason` pairs.

config.py is the model these read; capacity, names, instance types and mirroring are the rules
they apply, which is why they run here, above all of them, rather than in the model.
"""
from __future__ import annotations

import difflib
import ipaddress
import re

from templates_src.app import capacity, instance_types, mirror, names
from templates_src.app.config import (
    Alarms, App, CAPABILITIES, CONTAINER_USER, Cluster, ConfigError, EMAIL, EMAIL_MAX, ENV_VAR, HEALTH_PATH,
    KERNEL_DIRECTORIES, LISTENER_PATH, LOG_RETENTION, MAX_DESIRED_COUNT, MAX_INSTANCES, MAX_REQUESTS_PER_TARGET,
    MIN_SIZE_MAX, NAME, NAMESPACE, Network, OUTPUT_NAME, PRIVATE_RANGES, RESERVED_PORTS, ROOT_DESCRIPTION,
    ROOT_OUTPUTS, Service, TARGET_GROUPS_PER_SERVICE, TASK_CPU, TASK_MEMORY, TEMPLATE_DESCRIPTION_BYTES,
    logical_id, references, url_output,
)


def validate(app: App) -> None:
    problems: list[tuple[str, str]] = []
    add = lambda path, reason: problems.append((path, reason))  # noqa: E731

    if not NAME.match(app.name) or len(app.name) > names.ENVIRONMENT_MAX:
        add("name", f"must be lowercase letters, digits and hyphens, start with a letter, at most "
                    f"{names.ENVIRONMENT_MAX} characters (it is the default EnvironmentName)")
    elif names.RESERVED_PREFIX.match(app.name):
        add("name", "must not start with 'aws', 'ecs' or 'fargate' (ECS reserves them for capacity providers)")
    if len(ROOT_DESCRIPTION.format(app.description).encode()) > TEMPLATE_DESCRIPTION_BYTES:
        longest = TEMPLATE_DESCRIPTION_BYTES - len(ROOT_DESCRIPTION.format("").encode())
        add("description", f"at most {longest} bytes: it starts main.yaml's Description, which CloudFormation "
                           f"limits to {TEMPLATE_DESCRIPTION_BYTES}")
    if app.namespace and not NAMESPACE.match(app.namespace):
        add("namespace", f"'{app.namespace}' is not a DNS domain name like dks.local")
    elif len(app.namespace) > 253 or any(len(label) > 63 for label in app.namespace.split(".")):
        add("namespace", "DNS allows at most 253 characters, 63 per label")
    if app.log_retention_days not in LOG_RETENTION:
        add("log_retention_days", f"CloudWatch Logs accepts only {', '.join(map(str, LOG_RETENTION))}")
    if not 1 <= app.keep_images <= 1000:
        add("keep_images", "must be between 1 and 1000")
    _validate_network(app.network, add)
    _validate_cluster(app.cluster, add)
    for key, secret in app.secrets.items():
        if not NAME.match(key):
            add(f"secrets.{key}", "secret names are lowercase letters, digits and hyphens")
        if not 20 <= secret.length <= 4096:
            add(f"secrets.{key}.length", "generated passwords are 20 to 4096 characters")
        if len(secret.description) > 2048:
            add(f"secrets.{key}.description", "Secrets Manager allows at most 2048 characters")
    _validate_services(app, add)
    _validate_scaling(app, add)
    if app.alarms is not None:
        _validate_alarms(app.alarms, add)
    if not problems:
        names.validate(app, add)
    if not problems:
        _validate_hosts_bound(app, add)
    if not problems:
        capacity.validate(app, add)
        _validate_tmpfs(app, add)
    if problems:
        raise ConfigError(problems, [svc.name for svc in app.services])




def _validate_alarms(alarms: Alarms, add) -> None:
    if alarms.email and (not EMAIL.match(alarms.email) or len(alarms.email) > EMAIL_MAX):
        add("alarms.email", f"'{alarms.email}' is not an email address like ops@example.com")
    for key in ("cpu_percent", "memory_percent"):
        if not 1 <= getattr(alarms, key) <= 100:
            add(f"alarms.{key}", "a utilization percentage between 1 and 100")
    if alarms.errors_per_minute < 1:
        add("alarms.errors_per_minute", "at least 1 (a 5xx count a minute above which the alarm fires)")


def _validate_network(net: Network, add) -> None:
    try:
        vpc = ipaddress.IPv4Network(net.cidr)
    except ValueError as err:
        add("network.cidr", f"'{net.cidr}' is not an IPv4 CIDR block: {err}")
        return
    sized = 16 <= vpc.prefixlen <= 28
    if not sized:
        add("network.cidr", f"a VPC block must be /16 to /28, got /{vpc.prefixlen}")
    if not any(vpc.subnet_of(block) for block in PRIVATE_RANGES):
        add("network.cidr", f"{vpc} is not a private (RFC 1918) range: use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16")
    if not 2 <= net.availability_zones <= 6:
        add("network.availability_zones", "an ALB needs at least 2 AZs; at most 6 are supported")
    if not sized:  # subnets of a block refused anyway would only repeat the problem
        return
    if not vpc.prefixlen <= net.subnet_prefix <= 27:
        add("network.subnet_prefix", f"must be between /{vpc.prefixlen} and /27 for {vpc} (an ALB needs /27 subnets)")
    elif 2 ** (net.subnet_prefix - vpc.prefixlen) < net.availability_zones:
        add("network.subnet_prefix", f"{net.availability_zones} subnets of /{net.subnet_prefix} do not fit in {vpc}")


def _validate_cluster(cluster: Cluster, add) -> None:
    if cluster.instance_type not in instance_types.TYPES:
        close = difflib.get_close_matches(cluster.instance_type, instance_types.TYPES, n=3)
        add("cluster.instance_type", f"unknown instance type '{cluster.instance_type}'"
            + (f" (did you mean {', '.join(close)}?)" if close else f"; known families: {instance_types.families()}"))
    if not 0 <= cluster.min_size <= MIN_SIZE_MAX:
        add("cluster.min_size", f"must be between 0 and {MIN_SIZE_MAX} (the template's MinSize bounds)")
    elif cluster.min_size > cluster.max_size:
        add("cluster", f"need min_size <= max_size, got {cluster.min_size} / {cluster.max_size}")
    if not 1 <= cluster.max_size <= MAX_INSTANCES:
        add("cluster.max_size", f"must be between 1 and {MAX_INSTANCES} (the template's MaxSize bounds)")
    if not 30 <= cluster.root_volume_gib <= 16384:
        add("cluster.root_volume_gib", "the ECS-optimized AL2023 AMI needs 30 GiB; gp3 allows up to 16384")
    if not 0 <= cluster.reserved_memory_mib <= 4096:
        add("cluster.reserved_memory_mib", "must be between 0 and 4096")


def _validate_hosts_bound(app: App, add) -> None:
    bound = capacity.max_hosts(app)
    if app.cluster.max_size > bound:
        add("cluster.max_size", f"at most {bound} here: bridge services call the app's URLs on "
                                f"{len(capacity.called_ports(app))} listener port(s), and the load balancer's "
                                f"group keeps a rule per host and port, which EC2 limits to 60 per group")


def _validate_services(app: App, add) -> None:
    if not app.services:
        add("services", "an app needs at least one service")
        return
    seen: dict[str, int] = {}
    ids: dict[str, str] = {}
    repository_ids: dict[str, str] = {}
    for i, svc in enumerate(app.services):
        at = f"services[{i}]"
        if svc.name in seen:
            add(f"{at}.name", f"duplicate service name '{svc.name}' (also services[{seen[svc.name]}])")
        seen.setdefault(svc.name, i)
        if not NAME.match(svc.name) or len(svc.name) > 63:
            add(f"{at}.name", f"'{svc.name}' must be a DNS label: lowercase letters, digits and hyphens, "
                              "starting with a letter, at most 63 characters")
        elif (other := ids.setdefault(logical_id(svc.name), svc.name)) != svc.name:
            add(f"{at}.name", f"'{svc.name}' and '{other}' give the same resource names ({logical_id(svc.name)})")
        if bool(svc.image) == bool(svc.repository):
            add(at, "set exactly one of image (a public image) or repository (an ECR repository this app owns)"
                if not svc.image else "set image or repository, not both")
        if svc.repository and not NAME.match(svc.repository):
            add(f"{at}.repository", "repository names are lowercase letters, digits and hyphens")
        elif svc.repository and (other := repository_ids.setdefault(logical_id(svc.repository), svc.repository)) \
                != svc.repository:
            add(f"{at}.repository", f"'{svc.repository}' and '{other}' give the same resource names "
                                    f"({logical_id(svc.repository)})")
        if not 1 <= svc.port <= 65535:
            add(f"{at}.port", f"{svc.port} is not a TCP port")
        elif svc.port in RESERVED_PORTS:
            add(f"{at}.port", f"{svc.port} is reserved on ECS hosts (SSH, Docker or the ECS agent)")
        if not TASK_CPU[0] <= svc.cpu <= TASK_CPU[1]:
            add(f"{at}.cpu", f"{svc.cpu} CPU units is outside what ECS accepts on EC2 ({TASK_CPU[0]}-{TASK_CPU[1]})")
        if not TASK_MEMORY[0] <= svc.memory <= TASK_MEMORY[1]:
            add(f"{at}.memory", f"{svc.memory} MiB is outside what ECS accepts ({TASK_MEMORY[0]}-{TASK_MEMORY[1]})")
        if not 0 <= svc.desired_count <= MAX_DESIRED_COUNT:
            add(f"{at}.desired_count", f"must be between 0 and {MAX_DESIRED_COUNT}")
        _validate_deployment(svc, f"{at}.deployment", add)
        _validate_health(svc, f"{at}.health_check", add)
        if svc.data:
            _validate_data(svc, f"{at}.data", add)
        _validate_privileges(svc, at, add)
        _validate_exec(svc, at, add)
        for key in svc.environment:
            if not ENV_VAR.match(key):
                add(f"{at}.environment.{key}", "not a valid environment variable name")
        for key, secret in svc.secrets.items():
            if not ENV_VAR.match(key):
                add(f"{at}.secrets.{key}", "not a valid environment variable name")
            if secret not in app.secrets:
                add(f"{at}.secrets.{key}", f"unknown secret '{secret}' (declare it under top-level secrets)")
            if key in svc.environment:
                add(f"{at}.secrets.{key}", "also set in environment; a variable comes from one place")
        for target, secret in svc.secret_files.items():
            if not target.startswith("/") or target.endswith("/"):
                add(f"{at}.secret_files.{target}", "must be an absolute file path inside the container")
            if secret not in app.secrets:
                add(f"{at}.secret_files.{target}", f"unknown secret '{secret}' (declare it under top-level secrets)")
            if target in svc.files:
                add(f"{at}.secret_files.{target}", "also under files; a file comes from one place")
        if svc.secret_files and not (svc.entrypoint or svc.command):
            add(f"{at}.secret_files", "secret files are written by a wrapper that then runs the image's program: "
                                      "set entrypoint and/or command to what the image runs")
        if svc.files and not (svc.entrypoint or svc.command):
            add(f"{at}.files", "files are written by a wrapper that then runs the image's program: "
                               "set entrypoint and/or command to what the image runs")
        for target in svc.files:
            if not target.startswith("/") or target.endswith("/"):
                add(f"{at}.files.{target}", "must be an absolute file path inside the container")
        if svc.url_output and not OUTPUT_NAME.match(svc.url_output):
            add(f"{at}.url_output", "must be an alphanumeric CloudFormation output name")
        if svc.url_output and not svc.public:
            add(f"{at}.url_output", "only public services have a URL")
        if svc.public:
            if not 1 <= svc.public.port <= 65535:
                add(f"{at}.public.port", f"{svc.public.port} is not a TCP port")
            if svc.public.path is not None and (not LISTENER_PATH.match(svc.public.path) or len(svc.public.path) > 128):
                add(f"{at}.public.path", "must start with / and use only characters ALB path patterns allow (max 128)")
        _validate_published(svc, at, add)
    mirror.validate(app, add)
    _validate_ports(app, add)
    _validate_references(app, seen, add)
    _validate_reach(app, seen, add)
    _validate_graph(app, seen, add)
    _validate_architecture(app, add)


def _validate_published(svc: Service, at: str, add) -> None:
    """Each Network Load Balancer port: a real port, one container mapping per port, and a TCP port to check."""
    groups = (1 if svc.public else 0) + len(svc.published)
    if groups > TARGET_GROUPS_PER_SERVICE:
        add(f"{at}.published", f"{groups} target groups (the public port and each published one): an ECS service "
                               f"registers with at most {TARGET_GROUPS_PER_SERVICE}")
    mapped = {svc.port: "TCP"}  # the service's own port is always mapped over TCP (services.py)
    for j, pub in enumerate(svc.published):
        where = f"{at}.published[{j}]"
        for key in ("port", "target", "health_port"):
            value = getattr(pub, key)
            if value is not None and not 1 <= value <= 65535:
                add(f"{where}.{key}", f"{value} is not a port")
        if pub.container_port in RESERVED_PORTS:
            add(f"{where}.target", f"{pub.container_port} is reserved on ECS hosts (SSH, Docker or the ECS agent)")
        # A container maps a port once: the same port over TCP and UDP is refused by ECS ("Container port
        # ... is used in more than one port mapping", https://github.com/aws/amazon-ecs-agent/issues/3428).
        other = mapped.setdefault(pub.container_port, pub.protocol)
        if other != pub.protocol:
            add(f"{where}.protocol", f"container port {pub.container_port} is mapped over {other} already (the "
                                     f"service's port is TCP): an ECS container maps a port over TCP or UDP, not both")
        if pub.protocol == "TCP" and pub.health_port is not None:
            add(f"{where}.health_port", "only a UDP port takes one: a TCP port is checked on itself")
    for j, pub in enumerate(svc.published):
        if pub.protocol != "UDP":
            continue
        where = f"{at}.published[{j}]"
        checked = pub.checked_port(svc)
        if svc.network_mode == "bridge":
            add(f"{where}.protocol", "UDP needs network_mode awsvpc: its health check goes to another port, which "
                                     "Docker maps to a host port the load balancer cannot know")
        elif mapped.get(checked) != "TCP":
            # https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html
            add(f"{where}.health_port", f"{checked} is not a TCP port of the container (its port or a published TCP "
                                        "port): a Network Load Balancer checks a UDP target over TCP, HTTP or HTTPS, "
                                        "never UDP; name a TCP port the container listens on")


def _validate_deployment(svc: Service, at: str, add) -> None:
    d = svc.deployment
    if not 0 <= d.min_healthy_percent <= 100:
        add(f"{at}.min_healthy_percent", "must be between 0 and 100")
    if not 100 <= d.max_percent <= 200:
        add(f"{at}.max_percent", "must be between 100 and 200")
    elif svc.desired_count and -(-svc.desired_count * d.min_healthy_percent // 100) >= svc.desired_count \
            and svc.desired_count * d.max_percent // 100 <= svc.desired_count:
        add(at, f"min_healthy_percent {d.min_healthy_percent} and max_percent {d.max_percent} leave a rolling "
                "deployment no room to replace a task: lower min_healthy_percent or raise max_percent")


def _validate_data(svc: Service, at: str, add) -> None:
    data = svc.data
    if not data.path.startswith("/") or data.path.rstrip("/") == "" or len(data.path) > 255 \
            or not data.path.isprintable():
        add(f"{at}.path", "must be an absolute container directory other than / (at most 255 characters, no line "
                          "breaks or control characters)")
    elif (kernel := next((top for top in KERNEL_DIRECTORIES
                          if data.path.rstrip("/") == top or data.path.startswith(top + "/")), None)):
        add(f"{at}.path", f"{data.path} is inside {kernel}, which the container runtime mounts from the kernel; "
                          "a volume cannot be mounted there")
    for key in ("uid", "gid"):
        if not 0 <= getattr(data, key) <= 4_294_967_295:
            add(f"{at}.{key}", "must be between 0 and 4294967295")
    # Two tasks writing one data directory corrupt it (postgres refuses, others do not).
    if svc.desired_count > 1 or svc.deployment.max_percent > 100:
        add(at, "a service with data runs one task at a time: desired_count at most 1 and deployment "
                "max_percent 100 (min_healthy_percent 0), so a new task starts after the old one stopped")


def _validate_exec(svc: Service, at: str, add) -> None:
    """ECS Exec runs Session Manager's agent inside the container, and the agent writes its files under the
    container's root (/var/lib/amazon/ssm, /var/log/amazon/ssm): on a read-only root it dies at launch
    (https://github.com/aws/containers-roadmap/issues/1359,
    https://github.com/aws-containers/amazon-ecs-exec-checker/issues/21)."""
    if svc.exec and svc.read_only:
        add(f"{at}.exec", "ECS Exec needs a writable root file system (Session Manager's agent writes its files "
                          "there and fails on a read-only one): set read_only: false for this service, or exec: false")


def _validate_scaling(app: App, add) -> None:
    """Bounds of each scaled service's task count and targets, and the services that cannot scale."""
    for i, svc in enumerate(app.services):
        scaling, at = svc.scaling, f"services[{i}].scaling"
        if scaling is None:
            continue
        if svc.data:
            # _validate_data already holds such a service to one task: say why scaling cannot lift that.
            add(at, "a service with data cannot scale: its data is one directory for one task, and a second task "
                    "would share it or race for it (postgres refuses a second server on its files, most programs "
                    "corrupt them); scale the services that keep no data")
            continue
        if not 1 <= scaling.min <= MAX_DESIRED_COUNT:
            add(f"{at}.min", f"must be between 1 and {MAX_DESIRED_COUNT}")
        if not 1 <= scaling.max <= MAX_DESIRED_COUNT:
            add(f"{at}.max", f"must be between 1 and {MAX_DESIRED_COUNT}")
        elif scaling.max < scaling.min:
            add(f"{at}.max", f"{scaling.max} is below min {scaling.min}")
        elif not scaling.min <= svc.desired_count <= scaling.max:
            add(f"services[{i}].desired_count", f"{svc.desired_count} is outside scaling.min..max ({scaling.min}.."
                                                f"{scaling.max}): a scaled service's desired_count is its usual "
                                                "count, the one make plan bills, between the two")
        if scaling.cpu is None and scaling.requests_per_target is None:
            add(at, "name at least one target: cpu (average CPU percent) or requests_per_target (requests a "
                    "minute per task, public services only)")
        # A target tracking policy's TargetValue is any positive number the API can hold (8.515920e-109 to
        # 1.174271e+108, https://docs.aws.amazon.com/autoscaling/application/APIReference/
        # API_TargetTrackingScalingPolicyConfiguration.html); a CPU target beyond 100 percent of what the
        # tasks reserve is one they cannot reach.
        if scaling.cpu is not None and not 1 <= scaling.cpu <= 100:
            add(f"{at}.cpu", f"{scaling.cpu} is not a CPU percent from 1 to 100")
        if scaling.requests_per_target is not None:
            if not 1 <= scaling.requests_per_target <= MAX_REQUESTS_PER_TARGET:
                add(f"{at}.requests_per_target", f"must be between 1 and {MAX_REQUESTS_PER_TARGET:,} requests a minute")
            elif not svc.public:
                add(f"{at}.requests_per_target", "needs public: the metric is the load balancer's requests per "
                                                 "target of the service's target group, which only a public "
                                                 "service has")


def _validate_privileges(svc: Service, at: str, add) -> None:
    for j, path in enumerate(svc.writable):
        if not path.startswith("/") or path.rstrip("/") == "" or len(path) > 255 or re.search(r"[\s,:]", path):
            add(f"{at}.writable[{j}]", f"'{path}' must be an absolute container directory other than / (no spaces, "
                                      "commas or colons; at most 255 characters)")
        elif svc.data and path.rstrip("/") == svc.data.path.rstrip("/"):
            add(f"{at}.writable[{j}]", f"'{path}' is the service's data directory, writable already")
        elif path in svc.writable[:j]:
            add(f"{at}.writable[{j}]", f"'{path}' is listed twice")
    if svc.read_only and "/" in svc.tmpfs_paths():
        add(f"{at}.files", "a file directly in / cannot be written on a read-only root file system: put it in a "
                           "folder (it becomes a tmpfs) or set read_only: false")
    for j, capability in enumerate(svc.capabilities):
        if capability not in CAPABILITIES:
            close = difflib.get_close_matches(capability.upper().removeprefix("CAP_"), CAPABILITIES, n=1)
            add(f"{at}.capabilities[{j}]", f"'{capability}' is not a Linux capability ECS can add"
                + (f" (did you mean {close[0]}?)" if close else "") + "; ALL is not accepted: name the ones needed")
        elif capability in svc.capabilities[:j]:
            add(f"{at}.capabilities[{j}]", f"'{capability}' is listed twice")
    if svc.user is not None and not CONTAINER_USER.match(svc.user):
        add(f"{at}.user", f"'{svc.user}' is not a user ECS can run a container as: a name or uid, optionally "
                          "followed by :group or :gid")


def _validate_tmpfs(app: App, add) -> None:
    """A tmpfs takes the task's memory as it fills (within its limit, which the fit check reserves): with the
    fit, it is checked once every field is right."""
    for i, svc in enumerate(app.services):
        if svc.tmpfs_paths() and svc.tmpfs_mib() < 1:
            add(f"services[{i}]", f"{len(svc.tmpfs_paths())} tmpfs (writable directories and folders of files) "
                                  f"cannot share half of the task's {svc.memory} MiB at 1 MiB each: raise memory or "
                                  "write fewer directories")


def _validate_health(svc: Service, at: str, add) -> None:
    h = svc.health_check
    if not 5 <= h.interval <= 300:
        add(f"{at}.interval", "must be between 5 and 300 seconds")
    if not 2 <= h.timeout <= 60 or h.timeout >= h.interval:
        add(f"{at}.timeout", "must be 2 to 60 seconds and shorter than the interval")
    if not 1 <= h.retries <= 10:
        add(f"{at}.retries", "must be between 1 and 10")
    elif (svc.public or svc.published) and h.retries < 2:
        add(f"{at}.retries", "a public service needs at least 2: the load balancer's unhealthy threshold is the same "
                             "count, and it takes 2 to 10")
    if not 0 <= h.start_period <= 300:
        add(f"{at}.start_period", "must be between 0 and 300 seconds")
    if not 0 <= h.grace_period <= 2_147_483_647:
        add(f"{at}.grace_period", "must not be negative")
    if not HEALTH_PATH.match(h.path) or len(h.path) > 1024:
        add(f"{at}.path", "must start with / and be at most 1024 visible ASCII characters, no space or line break "
                          "(the load balancer sends it as the path of an HTTP request)")


def _validate_ports(app: App, add) -> None:
    """Two services cannot answer the same listener port and path."""
    claims: dict[tuple[int, Optional[str]], str] = {}
    for i, svc in enumerate(app.services):
        if not svc.public:
            continue
        key = (svc.public.port, svc.public.path)
        if key in claims:
            what = f"path {svc.public.path}" if svc.public.path else "the default route"
            add(f"services[{i}].public", f"port conflict: '{claims[key]}' already takes {what} on "
                                         f"listener port {svc.public.port}")
        claims.setdefault(key, svc.name)
    listeners: dict[int, str] = {}
    for i, svc in enumerate(app.services):
        for j, pub in enumerate(svc.published):
            # One listener per port: a second protocol on a port would need TCP_UDP, which ECS cannot serve.
            if pub.port in listeners:
                add(f"services[{i}].published[{j}].port", f"port conflict: {listeners[pub.port]} takes Network Load "
                                                          f"Balancer port {pub.port} already")
            listeners.setdefault(pub.port, f"'{svc.name}'")
    outputs = dict.fromkeys(ROOT_OUTPUTS, "the root stack")
    for i, svc in enumerate(app.services):
        if not svc.public:
            continue
        name = url_output(svc)
        if name in outputs:
            # A default output name comes from the service name: point at what the file says.
            add(f"services[{i}].url_output" if svc.url_output else f"services[{i}].name",
                f"'{name}' is also used by {outputs[name]}")
        outputs.setdefault(name, f"'{svc.name}'")


def _validate_references(app: App, known: dict[str, int], add) -> None:
    for i, svc in enumerate(app.services):
        for key, value in svc.environment.items():
            for ref in references(value):
                if ref.service not in known:
                    add(f"services[{i}].environment.{key}", f"refers to unknown service '{ref.service}'")
                elif ref.attribute == "url" and not app.services[known[ref.service]].public:
                    add(f"services[{i}].environment.{key}", f"'{ref.service}' has no URL: it is not public")
                elif ref.attribute != "url" and app.services[known[ref.service]].network_mode == "bridge":
                    target = app.services[known[ref.service]]
                    add(f"services[{i}].environment.{key}",
                        f"'{ref.service}' runs with network_mode bridge: it has no Cloud Map name or address of its "
                        "own that another task could reach; make it awsvpc"
                        + (f", or call its public URL ({{{ref.service}.url}})" if target.public else ""))


def _validate_reach(app: App, known: dict[str, int], add) -> None:
    for i, svc in enumerate(app.services):
        for j, peer in enumerate(svc.reaches):
            at = f"services[{i}].reaches[{j}]"
            if peer not in known:
                add(at, f"unknown service '{peer}'")
            elif peer == svc.name:
                add(at, f"'{svc.name}' always reaches itself: leave it out")
            elif peer in svc.reaches[:j]:
                add(at, f"'{peer}' is listed twice")
            elif app.services[known[peer]].network_mode == "bridge":
                add(at, f"'{peer}' runs with network_mode bridge: it has no address of its own that another task "
                        "could reach; make it awsvpc")
        for j, port in enumerate(svc.ports):
            at = f"services[{i}].ports[{j}]"
            if not 1 <= port <= 65535:
                add(at, f"{port} is not a TCP port")
            elif port == svc.port:
                add(at, f"{port} is the service's port already")
            elif port in svc.ports[:j]:
                add(at, f"{port} is listed twice")
            elif svc.network_mode == "bridge":
                add(at, "a bridge service has no address another task could reach on it: make it awsvpc or "
                        "leave ports out")


def _validate_graph(app: App, known: dict[str, int], add) -> None:
    for i, svc in enumerate(app.services):
        for j, dep in enumerate(svc.depends_on):
            if dep not in known:
                add(f"services[{i}].depends_on[{j}]", f"unknown service '{dep}'")
            elif dep == svc.name:
                add(f"services[{i}].depends_on[{j}]", f"'{svc.name}' cannot depend on itself")
    graph = {s.name: [d for d in s.depends_on if d in known and d != s.name] for s in app.services}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> Optional[list[str]]:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                return trail[trail.index(dep):] + [dep] if dep in trail else [node, dep]
            if dep not in state and (cycle := visit(dep, trail + [dep])):
                return cycle
        state[node] = 2
        return None

    for name in graph:
        if name not in state and (cycle := visit(name, [name])):
            add(f"services[{known[cycle[0]]}].depends_on", f"cyclic dependency: {' -> '.join(cycle)}")
            return


def _validate_architecture(app: App, add) -> None:
    if app.cluster.instance_type not in instance_types.TYPES:
        return
    arch = instance_types.TYPES[app.cluster.instance_type].architecture
    for i, svc in enumerate(app.services):
        if svc.architectures == ():
            add(f"services[{i}].architectures", "name at least one of x86_64, arm64, or leave it out (any)")
        elif svc.architectures is not None and arch not in svc.architectures:
            add(f"services[{i}].architectures",
                f"the image exists for {', '.join(svc.architectures)} but {app.cluster.instance_type} hosts are "
                f"{arch}: "
                f"choose a {' or '.join(svc.architectures)} instance type or an image built for {arch}")
