"""python -m templates_src plan: where the tasks go, how many hosts that takes, and what a month costs.

`make(app, region, ...)` is pure: the per-host placement is capacity.py's own (the fit check's), the
quantities come from the config, the unit prices from prices.json (dated, with a source per item).
`text(plan)` and `to_json(plan)` render it; `main(argv)` is the command.

The monthly cost is the steady state: the hosts managed scaling settles on (the tasks without their
rolling-deployment surge, within MinSize and MaxSize). The deployment peak needs more hosts for the
length of a deployment; the plan shows how many, it does not bill them. A scaled service (config.Scaling) is
billed at its desired_count; what its `max` tasks take, hosts and cost, is a separate line. Beside the app as built
(public subnets, a public IP per host) the plan prices the same app with private subnets and one NAT
gateway per AZ, so the cost of the usual alternative is visible.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from templates_src.app.words import plural

PRICES = Path(__file__).with_name("prices.json")
REGION = "us-east-1"


@dataclass(frozen=True)
class Assumptions:
    """What the config cannot say; each is a command option, these are its defaults."""

    # Average LCUs an hour: one LCU is 25 new connections/s, 3,000 active connections or 1 GB/h,
    # more than a small app uses.
    alb_lcus: float = 1.0
    # The same for the Network Load Balancer (when a service publishes a port that is not HTTP): one NLCU is
    # 800 new TCP connections/s, 100,000 active ones, 400 new UDP flows/s or 1 GB/h.
    nlb_lcus: float = 1.0
    # Container logs ingested into CloudWatch Logs a month.
    log_gb: float = 5.0
    # Stored on EFS by the services with `data` (a small database); counted when persistence is efs.
    efs_gb: float = 1.0
    # Through the NAT gateways a month (private-subnet variant): image pulls, log shipping, API calls.
    nat_gb: float = 20.0
    # Stored per ECR repository: the images kept (keep_images) share most layers, and ECR stores a
    # layer once; a built image, or a copied Docker Hub one, is some hundred MB compressed.
    ecr_gb: float = 1.0
    # Through the ssmmessages endpoint a month (services with `exec`): shell sessions' keystrokes and output,
    # and the Session Manager agents' keep-alive traffic.
    exec_gb: float = 1.0


class PlanError(Exception):
    """A plan the command refuses: unknown region, type or price, or too few hosts."""


@dataclass(frozen=True)
class Line:
    item: str  # key in prices.json
    label: str
    quantity: float
    unit: str
    price: float
    per: str  # what the price is for, as prices.json says
    hours: float  # hours a month for hourly prices, 1 for monthly ones
    note: str = ""

    @property
    def monthly(self) -> float:
        return round(self.quantity * self.price * self.hours, 2)


@dataclass(frozen=True)
class Variant:
    name: str
    lines: tuple[Line, ...]

    @property
    def total(self) -> float:
        return round(sum(line.monthly for line in self.lines), 2)

    def line(self, item: str) -> Line:
        return next(line for line in self.lines if line.item == item)


@dataclass(frozen=True)
class Resource:
    used: int
    capacity: int

    @property
    def left(self) -> int:
        return self.capacity - self.used


@dataclass(frozen=True)
class HostUse:
    tasks: tuple[tuple[str, bool], ...]  # (service, surge)
    enis: Resource
    cpu: Resource
    memory: Resource


@dataclass(frozen=True)
class Scaled:
    """A service whose task count auto scaling moves: min..max, billed at desired."""

    service: str
    min: int
    desired: int
    max: int
    cpu: int | None
    requests_per_target: int | None


@dataclass(frozen=True)
class Plan:
    app: str
    region: str
    instance_type: str
    architecture: str
    hosts: int
    hosts_steady: int
    hosts_peak: int
    min_size: int
    max_size: int
    placement: tuple[HostUse, ...]
    public: Variant
    nat: Variant
    assumptions: Assumptions
    as_of: str
    currency: str
    hours_per_month: float
    unconfirmed: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    # Scaled services, and the hosts and monthly cost as built with each at its max (outside deployments).
    scaled: tuple[Scaled, ...] = ()
    hosts_at_max: int = 0
    total_at_max: float = 0.0
    hosts_peak_at_max: int = 0

    @property
    def delta(self) -> float:
        return round(self.nat.total - self.public.total, 2)


def load_prices(path: Path = PRICES) -> dict:
    return json.loads(path.read_text())


def make(app, region: str = REGION, instance_type: str | None = None, hosts: int | None = None,
         assumptions: Assumptions = Assumptions(), prices: dict | None = None) -> Plan:
    from templates_src.app import capacity, config, instance_types, mirror

    prices = prices if prices is not None else load_prices()
    items = prices["items"]
    hourly = float(prices["hours_per_month"])
    regions = sorted(items["ec2"]["prices"])
    if region not in regions:
        raise PlanError(f"no prices for region {region} in templates_src/plan/prices.json (as of {prices['as_of']}); "
                        f"regions with prices: {', '.join(regions)}")
    name = instance_type or app.cluster.instance_type
    allowed = capacity.allowed_instance_types(app)
    if name not in allowed:
        known = "not an InstanceType the template offers" if name in instance_types.TYPES else "unknown instance type"
        raise PlanError(f"{name}: {known} for {app.name} (the tasks must fit within the hosts "
                        f"{app.cluster.instance_type} needs); offered: {', '.join(allowed)}")
    ec2 = items["ec2"]["prices"][region]
    if name not in ec2:
        raise PlanError(f"no {region} price for {name} in templates_src/plan/prices.json (as of {prices['as_of']}); "
                        f"priced there: {', '.join(t for t in instance_types.TYPES if t in ec2)}")
    itype = instance_types.TYPES[name]
    peak = capacity.placement(app, itype, at_max=False)
    steady = capacity.placement(app, itype, surge=False, at_max=False)
    at_max = capacity.placement(app, itype)  # the fit check's: scaled services at max, with their surge
    busy = capacity.placement(app, itype, surge=False)  # scaled services at max, outside deployments
    assert peak is not None and steady is not None and at_max is not None and busy is not None, \
        "allowed_instance_types only offers types the tasks fit on"
    min_size, max_size = app.cluster.min_size, app.cluster.max_size
    if hosts is None:  # managed scaling (target capacity 100%) keeps what the tasks need, within the group's bounds
        hosts = min(max(len(steady), min_size), max_size)
    elif hosts < len(steady):
        raise PlanError(f"--hosts {hosts}: the tasks need {len(steady)} x {name} outside deployments "
                        f"({len(peak)} at the deployment peak)")
    elif hosts > config.MAX_INSTANCES:
        raise PlanError(f"--hosts {hosts}: the template allows at most {config.MAX_INSTANCES} instances")

    offer = capacity.host(itype, app.cluster.reserved_memory_mib)
    placement = tuple(HostUse(tuple((t.service, t.surge) for t in tasks),
                              Resource(sum(t.eni for t in tasks), offer.slots),  # bridge tasks take none
                              Resource(sum(t.cpu for t in tasks), offer.cpu),
                              Resource(sum(t.memory for t in tasks), offer.memory)) for tasks in peak)

    def line(item: str, label: str, quantity: float, unit: str, hours: float, note: str = "") -> Line:
        prices_here = items[item]["prices"][region]
        value = prices_here[name] if item == "ec2" else prices_here
        return Line(item, label, quantity, unit, float(value), items[item]["unit"], hours, note)

    azs = app.network.availability_zones
    alb = 1 if app.public_services else 0
    nlb = 1 if app.nlb_services else 0
    balancers = alb + nlb  # an internet-facing load balancer has a public address in each AZ
    repositories = len(app.repositories) + len(mirror.repositories(app))  # registry.yaml's
    disk = app.cluster.root_volume_gib
    common = [
        line("ec2", f"EC2 {name}", hosts, "instance", hourly),
        line("ebs_gp3", "EBS gp3 root volumes", hosts * disk, "GB", 1, f"{hosts} x {disk} GiB"),
        line("alb_hour", "ALB hours", alb, "load balancer", hourly),
        line("alb_lcu", "ALB LCUs", alb * assumptions.alb_lcus, "LCU", hourly,
             f"assumed {assumptions.alb_lcus:g} LCU on average (--alb-lcus)"),
    ] + ([  # only an app with a port that is not HTTP has one
        line("nlb_hour", "NLB hours", nlb, "load balancer", hourly),
        line("nlb_lcu", "NLB NLCUs", nlb * assumptions.nlb_lcus, "NLCU", hourly,
             f"assumed {assumptions.nlb_lcus:g} NLCU on average (--nlb-lcus)"),
    ] if nlb else [])
    rest = [
        line("cloud_map_namespace", f"Cloud Map namespace {app.namespace or app.name + '.local'}", 1, "namespace", 1,
             "a Route 53 private hosted zone"),
        line("secret", "Secrets Manager secrets", len(app.secrets), "secret", 1),
        # secrets.yaml always holds one key, for the secrets and the log groups.
        line("kms_key", "KMS key", 1, "key", 1, "secrets and log groups"),
        line("logs_ingest", "CloudWatch Logs ingestion", assumptions.log_gb, "GB", 1,
             f"assumed {assumptions.log_gb:g} GB a month (--log-gb)"),
        line("efs_standard", "EFS standard storage", assumptions.efs_gb if app.stored_services else 0, "GB", 1,
             f"assumed {assumptions.efs_gb:g} GB of data (--efs-gb)" if app.stored_services else
             "not in this config (no service keeps data on EFS)"),
        line("ecr_storage", "ECR storage", repositories * assumptions.ecr_gb, "GB", 1,
             f"{repositories} repositories x {assumptions.ecr_gb:g} GB assumed (--ecr-gb)" if repositories else
             "no repository in this config (no image built or copied from Docker Hub)"),
    ] + (_alarm_lines(app, line) if app.alarms else [])
    # ECS Exec from awsvpc tasks needs the ssmmessages interface endpoint as built (network.py): they have no public
    # IP and the VPC no NAT. Behind NAT gateways they would reach Session Manager through them, so the NAT variant
    # has no endpoint.
    endpoint = [
        line("vpc_endpoint_hour", "VPC endpoint ssmmessages (ECS Exec)", azs, "endpoint-AZ", hourly,
             f"one interface per AZ, for {', '.join(s.name for s in app.exec_endpoint_services)}"),
        line("vpc_endpoint_gb", "VPC endpoint data processed", assumptions.exec_gb, "GB", 1,
             f"assumed {assumptions.exec_gb:g} GB a month (--exec-gb)"),
    ] if app.exec_endpoint_services else []
    public = Variant("public subnets, no NAT (as built)", tuple(common + [
        line("public_ipv4", "public IPv4 addresses", hosts + balancers * azs, "address", hourly,
             f"{plural(hosts, 'host')} + {balancers * azs} for the {_balancers(alb, nlb)} (one per AZ)"),
    ] + endpoint + rest))
    nat = Variant(f"private subnets, {azs} NAT gateways (one per AZ)", tuple(common + [
        line("public_ipv4", "public IPv4 addresses", balancers * azs + azs, "address", hourly,
             f"{balancers * azs} for the {_balancers(alb, nlb)} + {azs} NAT gateway Elastic IPs; hosts have none"),
        line("nat_hour", "NAT gateway hours", azs, "NAT gateway", hourly),
        line("nat_gb", "NAT data processed", assumptions.nat_gb, "GB", 1,
             f"assumed {assumptions.nat_gb:g} GB a month (--nat-gb)"),
    ] + rest))
    used = {line.item for line in public.lines + nat.lines}
    unconfirmed = tuple(item for item, data in items.items() if region in data.get("unconfirmed", ()) and item in used)
    notes = []
    if len(peak) > hosts:
        notes.append(f"a rolling deployment needs {plural(len(peak), 'host')}: managed scaling adds "
                     f"{len(peak) - hosts} for its length (not in the monthly figures)")
    if len(at_max) > max_size:
        scaled = " with every scaled service at its max" if app.scaled_services else ""
        notes.append(f"{name} needs MaxSize {len(at_max)} at the deployment peak{scaled} (the config's max_size is "
                     f"{max_size})")
    if app.alarms:
        email = items["sns_email"]
        notes.append(f"alarm emails are not counted: SNS mails the first 1,000 a month free, then "
                     f"${email['prices'][region]:g} per {email['unit']} (an alarm mails when it fires and when it "
                     "clears)")
    if app.stored_services:  # kept.py: the data outlives the stacks with its key and its secrets
        kept = public.line("kms_key").price + len(app.secrets) * public.line("secret").price
        secrets = f" and the {len(app.secrets)} secrets" if app.secrets else ""
        notes.append(f"make cleanup KEEP_DATA=1 keeps the data's file system, its KMS key{secrets}: {_money(kept)} "
                     f"a month plus ${public.line('efs_standard').price:g} per GB stored, until they are deleted")
    # At max, managed scaling runs the hosts every scaled service's max tasks need; each more than billed costs what
    # a billed host does: the instance, its root volume and its public address.
    added = max(len(busy) - hosts, 0)
    per_host = public.line("ec2").monthly / hosts + public.line("ebs_gp3").price * disk \
        + public.line("public_ipv4").price * hourly if hosts else 0.0
    scaled = tuple(Scaled(s.name, s.scaling.min, s.desired_count, s.scaling.max, s.scaling.cpu,
                          s.scaling.requests_per_target) for s in app.scaled_services)
    return Plan(app.name, region, name, itype.architecture, hosts, len(steady), len(peak), min_size, max_size,
                placement, public, nat, assumptions, prices["as_of"], prices["currency"], hourly, unconfirmed,
                tuple(notes), scaled, hosts + added, round(public.total + added * per_host, 2), len(at_max))


def _alarm_lines(app, line) -> list[Line]:
    """alarms.yaml's alarms (billed per metric each reads), its dashboard and the topic's email."""
    from templates_src.stacks import alarms

    count, metrics = alarms.alarm_metrics(app)
    return [
        line("cloudwatch_alarm", "CloudWatch alarms", metrics, "alarm metric", 1,
             f"{plural(count, 'alarm')} reading {metrics} metrics (a metric-math alarm counts each); "
             "the free tier's 10 a month not subtracted"),
        line("cloudwatch_dashboard", "CloudWatch dashboard", 1, "dashboard", 1,
             "the free tier's 3 a month not subtracted: other dashboards may use them"),
    ]


# --- rendering ---------------------------------------------------------------------------------


def _balancers(alb: int, nlb: int) -> str:
    return " and ".join(name for name, count in (("ALB", alb), ("NLB", nlb)) if count) or "load balancers"


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _quantity(line: Line) -> str:
    unit = line.unit if line.quantity == 1 or line.unit == "GB" else line.unit + ("es" if line.unit[-1] == "s" else "s")
    amount = f"{line.quantity:g} {unit}"
    return f"{amount} x {line.hours:g} h" if line.hours != 1 else amount


def _unit_price(line: Line) -> str:
    return f"${line.price:g}/h" if line.hours != 1 else f"${line.price:g}/{line.per}"


def _table(rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            .rstrip() for row in rows]


def _variant(variant: Variant) -> list[str]:
    rows = [["item", "quantity", "unit price", "monthly", "note"]]
    rows += [[line.label, _quantity(line), _unit_price(line), _money(line.monthly), line.note]
             for line in variant.lines]
    rows.append(["total", "", "", _money(variant.total), ""])
    return _table(rows, right={3})


def _scaling(plan: Plan) -> list[str]:
    """The scaled services' ranges and what their max takes; nothing for an app that does not scale."""
    if not plan.scaled:
        return []
    rows = [["service", "tasks desired..max", "min", "targets"]]
    for s in plan.scaled:
        targets = [f"CPU {s.cpu}%" if s.cpu is not None else "",
                   f"{s.requests_per_target:,} requests/min per task" if s.requests_per_target is not None else ""]
        rows.append([s.service, f"{s.desired}..{s.max}", str(s.min), ", ".join(t for t in targets if t)])
    added = plan.hosts_at_max - plan.hosts
    return ["", "Auto scaling (billed at desired; at max every scaled service runs its max tasks):"] \
        + ["  " + row for row in _table(rows)] \
        + [f"  at max: {plural(plan.hosts_at_max, 'host')} ({plan.hosts_peak_at_max} during a deployment), {added} "
           f"more than billed (managed scaling adds them); "
           f"{_money(plan.total_at_max)} a month as built if it stayed there (billed: {_money(plan.public.total)})"]


def text(plan: Plan) -> str:
    first = plan.placement[0] if plan.placement else None
    out = [f"Plan for {plan.app} in {plan.region}: prices as of {plan.as_of}, {plan.currency}, "
           f"{plan.hours_per_month:g} hours a month", ""]
    if first:
        out.append(f"Hosts: {plan.instance_type} ({plan.architecture}); each offers tasks {first.enis.capacity} "
                   f"ENIs, {first.cpu.capacity} CPU units, {first.memory.capacity} MiB")
    surge = sum(s for host in plan.placement for _, s in host.tasks)
    tasks = sum(len(host.tasks) for host in plan.placement)
    out += [f"  deployment peak: {plural(plan.hosts_peak, 'host')} for {plural(tasks, 'task')} "
            f"({surge} of them rolling-deployment surge)",
            f"  steady state: {plural(plan.hosts_steady, 'host')}; billed: {plan.hosts} "
            f"(MinSize {plan.min_size}, MaxSize {plan.max_size})", "",
            "Placement at the deployment peak (+ marks a surge task):"]
    rows = [["host", "tasks", "ENIs used/left", "CPU used/left", "MiB used/left"]]
    for i, host in enumerate(plan.placement, 1):
        rows.append([str(i), ", ".join(name + ("+" if s else "") for name, s in host.tasks),
                     f"{host.enis.used}/{host.enis.left}", f"{host.cpu.used}/{host.cpu.left}",
                     f"{host.memory.used}/{host.memory.left}"])
    out += ["  " + row for row in _table(rows)]
    out += _scaling(plan)
    out += ["", f"Monthly cost, {plan.public.name}:"] + ["  " + row for row in _variant(plan.public)]
    out += ["", f"Same app, {plan.nat.name}:"] + ["  " + row for row in _variant(plan.nat)]
    nat = plan.nat.line("nat_hour").monthly + plan.nat.line("nat_gb").monthly
    saved = round(plan.public.line("public_ipv4").monthly - plan.nat.line("public_ipv4").monthly, 2)
    out += ["", f"NAT variant: {'+' if plan.delta >= 0 else '-'}{_money(abs(plan.delta))} a month "
                f"(NAT {_money(nat)}, public IPv4 {'saved' if saved >= 0 else 'added'} {_money(abs(saved))})"]
    for note in plan.notes:
        out.append(f"Note: {note}")
    if plan.unconfirmed:
        out.append(f"Unconfirmed {plan.region} prices (see templates_src/plan/prices.json): "
                   f"{', '.join(plan.unconfirmed)}")
    return "\n".join(out) + "\n"


def to_json(plan: Plan) -> str:
    def variant(v: Variant) -> dict:
        return {"name": v.name, "total": v.total,
                "lines": [{**asdict(line), "monthly": line.monthly} for line in v.lines]}

    data = {
        "app": plan.app, "region": plan.region, "as_of": plan.as_of, "currency": plan.currency,
        "hours_per_month": plan.hours_per_month, "instance_type": plan.instance_type,
        "architecture": plan.architecture,
        "hosts": {"billed": plan.hosts, "steady": plan.hosts_steady, "peak": plan.hosts_peak,
                  "min_size": plan.min_size, "max_size": plan.max_size},
        "placement": [{"tasks": [{"service": name, "surge": s} for name, s in host.tasks],
                       **{kind: {**asdict(getattr(host, kind)), "left": getattr(host, kind).left}
                          for kind in ("enis", "cpu", "memory")}} for host in plan.placement],
        "public": variant(plan.public), "nat": variant(plan.nat), "nat_minus_public": plan.delta,
        "assumptions": asdict(plan.assumptions), "unconfirmed": list(plan.unconfirmed), "notes": list(plan.notes),
        "scaling": {"services": [asdict(s) for s in plan.scaled], "hosts_at_max": plan.hosts_at_max,
                    "hosts_peak_at_max": plan.hosts_peak_at_max, "public_total_at_max": plan.total_at_max},
    }
    return json.dumps(data, indent=2) + "\n"


# --- the command -------------------------------------------------------------------------------


def _amount(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return number


def main(argv: list[str] | None = None) -> int:
    defaults = Assumptions()
    parser = argparse.ArgumentParser(prog="python -m templates_src plan",
                                     description="Hosts, placement and monthly cost of an app, as built and with NAT.")
    parser.add_argument("--config", type=Path, help="app config (YAML); default: the DKS app")
    parser.add_argument("--region", default=REGION, help=f"region to price (default: {REGION})")
    parser.add_argument("--instance-type", help="the InstanceType parameter (default: the config's)")
    parser.add_argument("--hosts", type=int, help="instances running (default: what managed scaling settles on)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--alb-lcus", type=_amount, default=defaults.alb_lcus,
                        help=f"average ALB LCUs an hour (default: {defaults.alb_lcus:g})")
    parser.add_argument("--nlb-lcus", type=_amount, default=defaults.nlb_lcus,
                        help=f"average NLB NLCUs an hour, when a port is not HTTP (default: {defaults.nlb_lcus:g})")
    parser.add_argument("--log-gb", type=_amount, default=defaults.log_gb,
                        help=f"GB of logs ingested a month (default: {defaults.log_gb:g})")
    parser.add_argument("--efs-gb", type=_amount, default=defaults.efs_gb,
                        help=f"GB stored on EFS, when the config has EFS (default: {defaults.efs_gb:g})")
    parser.add_argument("--nat-gb", type=_amount, default=defaults.nat_gb,
                        help=f"GB a month through NAT gateways, NAT variant (default: {defaults.nat_gb:g})")
    parser.add_argument("--ecr-gb", type=_amount, default=defaults.ecr_gb,
                        help=f"GB stored per ECR repository (default: {defaults.ecr_gb:g})")
    parser.add_argument("--exec-gb", type=_amount, default=defaults.exec_gb,
                        help=f"GB a month through the ssmmessages endpoint, when a service has exec "
                             f"(default: {defaults.exec_gb:g})")
    args = parser.parse_args(argv)

    from templates_src.app import config, loading

    path = args.config or config.DEFAULT_CONFIG
    app = loading.load_or_report(path)
    if app is None:
        return 2
    try:
        plan = make(app, args.region, args.instance_type, args.hosts,
                    Assumptions(alb_lcus=args.alb_lcus, nlb_lcus=args.nlb_lcus, log_gb=args.log_gb, efs_gb=args.efs_gb,
                                nat_gb=args.nat_gb, ecr_gb=args.ecr_gb, exec_gb=args.exec_gb))
    except PlanError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(to_json(plan) if args.format == "json" else text(plan))
    return 0
