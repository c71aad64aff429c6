"""CloudFormation's per-stack quotas, checked on every build, and the split of services over stacks.

CloudFormation refuses a template with more than 500 resources, 200 parameters or 200 outputs, a
template file over 1 MB in S3 (51,200 bytes passed inline, as `aws cloudformation deploy
--template-file` does for the root and the registry), and a parameter value over 4,096 bytes;
EC2 refuses a 61st inbound (or outbound) rule in a security group, by default. troposphere checks
only the outputs. Per-service resources grow with the app, so the services are
split over as many services stacks as keep each one within the quotas; the values those stacks
need from the others (security groups, roles, discovery and target group ARNs) cross as one joined
list per services stack, sized so the longest possible list still fits in one parameter value.
"""
from __future__ import annotations

from templates_src.app.config import App

RESOURCES = 500
PARAMETERS = 200
OUTPUTS = 200
TEMPLATE_BYTES = 1_048_576  # a template in S3
INLINE_BYTES = 51_200  # a template passed in the request body
PARAMETER_VALUE_BYTES = 4_096
# ECS refuses a RegisterTaskDefinition whose task definition is over 64 KiB ("Task definition size",
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-quotas.html): environment values
# and the files a wrapper writes count whole.
TASK_DEFINITION_BYTES = 65_536
# The most a value CloudFormation resolves (Ref, GetAtt, a ${} in Fn::Sub) can add: ARNs and ECR image
# URIs stay within it.
RESOLVED_BYTES = 256
# EC2's default quota, per direction; AWS can raise it on request:
# https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html#vpc-limits-security-groups
RULES_PER_GROUP = 60
INLINE = ("main.yaml", "registry.yaml")  # deployed with --template-file in the README

# Longest value one member of a joined list can take, plus its comma. Names are at their longest
# (environment 12, region 15 characters, partition aws-us-gov); generated IDs at their fixed size.
MEMBER_BYTES = {
    "security group": len("sg-0123456789abcdef0") + 1,
    "task role": len("arn:aws-us-gov:iam::123456789012:role/") + 64 + 1,  # role names stop at 64
    "discovery service": len("arn:aws-us-gov:servicediscovery:ap-southeast-2:123456789012:service/srv-") + 16 + 1,
    "target group": len("arn:aws-us-gov:elasticloadbalancing:ap-southeast-2:123456789012:targetgroup/") + 32 + 18,
    "secret": len("arn:aws-us-gov:secretsmanager:ap-southeast-2:123456789012:secret:") + 64 + 7 + 1,
    # app/<load balancer, 32>/<16 hex>/targetgroup/<target group, 32>/<16 hex>
    "request count label": len("app/") + 32 + 1 + 16 + len("/targetgroup/") + 32 + 1 + 16 + 1,
}
RESOURCES_PER_SERVICE = 3  # log group, task definition, ECS service
# Headroom under the resource quota for what a services stack may gain besides its services.
RESOURCE_BUDGET = RESOURCES - 50


class QuotaError(Exception):
    """A stack the build would produce breaks a CloudFormation quota."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def fits(names: list[str], app: App) -> bool:
    """Whether one services stack can carry these services."""
    public = sum(1 for name in names if app.service(name).public)
    per_list = [len(names) * MEMBER_BYTES[kind] for kind in ("security group", "task role", "discovery service")]
    per_list.append(public * MEMBER_BYTES["target group"])
    scaled = [app.service(name).scaling for name in names if app.service(name).scaling]
    per_list.append(sum(1 for s in scaled if s.requests_per_target) * MEMBER_BYTES["request count label"])
    # A scaled service adds its scalable target and a policy per target.
    resources = len(names) * RESOURCES_PER_SERVICE + sum(1 + (s.cpu is not None) + (s.requests_per_target is not None)
                                                         for s in scaled)
    return max(per_list) <= PARAMETER_VALUE_BYTES and resources <= RESOURCE_BUDGET


_groups: dict[int, tuple[App, list[tuple[str, ...]]]] = {}


def service_groups(app: App) -> list[tuple[str, ...]]:
    """The services of each services stack, in start order: a service never waits on a later stack.

    Asked for every per-service link of every stack, so worked out once per app.
    """
    cached = _groups.get(id(app))
    if cached is not None and cached[0] is app:
        return cached[1]
    from templates_src.app.config import start_order

    groups: list[list[str]] = [[]]
    for name in start_order(app):
        if groups[-1] and not fits([*groups[-1], name], app):
            groups.append([])
        groups[-1].append(name)
    _groups[id(app)] = (app, [tuple(group) for group in groups])
    return _groups[id(app)][1]


def problems(name: str, template: dict, text: str) -> list[str]:
    """What in one rendered template breaks a quota, each said with the number and the limit."""
    found = []
    counts = {"resources": (len(template.get("Resources", {})), RESOURCES),
              "parameters": (len(template.get("Parameters", {})), PARAMETERS),
              "outputs": (len(template.get("Outputs", {})), OUTPUTS)}
    for what, (count, limit) in counts.items():
        if count > limit:
            found.append(f"{name}: {count} {what}, CloudFormation allows {limit} per stack")
    found += rule_problems(name, template)
    for logical_id, resource in template.get("Resources", {}).items():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            size = resolved_bytes(resource.get("Properties", {}))
            if size > TASK_DEFINITION_BYTES:
                found.append(f"{name}: task definition {logical_id} takes up to {size:,} bytes (its environment, "
                             f"command and files), ECS allows {TASK_DEFINITION_BYTES:,}")
    size = len(text.encode())
    limit, where = (INLINE_BYTES, "passed inline by `aws cloudformation deploy --template-file`") \
        if name in INLINE else (TEMPLATE_BYTES, "read from S3")
    if size > limit:
        found.append(f"{name}: {size:,} bytes, CloudFormation allows {limit:,} for a template {where}")
    return found


def resolved_bytes(node: object) -> int:
    """The most bytes `node` takes as JSON once CloudFormation has resolved its functions."""
    import json
    import re

    if isinstance(node, dict):
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                names = re.findall(r"\$\{[^!}][^}]*\}", text)
                return len(json.dumps(text)) - sum(map(len, names)) + RESOLVED_BYTES * len(names)
            if key == "Fn::If":
                return max(resolved_bytes(value[1]), resolved_bytes(value[2]))
            if key == "Fn::Join" and isinstance(value[1], list):
                return 2 + len(value[0]) * max(0, len(value[1]) - 1) + sum(resolved_bytes(v) - 2 for v in value[1])
            if key == "Ref" or key.startswith("Fn::"):
                return RESOLVED_BYTES
        return 2 + sum(len(json.dumps(key)) + 2 + resolved_bytes(value) for key, value in node.items())
    if isinstance(node, list):
        return 2 + sum(resolved_bytes(item) + 1 for item in node)
    return len(json.dumps(node))


def rule_problems(name: str, template: dict) -> list[str]:
    """Security groups given more inbound or outbound rules than EC2 allows by default."""
    resources = template.get("Resources", {})
    counts: dict[tuple[str, str], int] = {}
    for logical_id, resource in resources.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::EC2::SecurityGroup":
            for direction in ("Ingress", "Egress"):
                key = (logical_id, direction)
                counts[key] = counts.get(key, 0) + len(props.get(f"SecurityGroup{direction}", []))
        elif kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            group = props["GroupId"]
            key = (group["Ref"] if isinstance(group, dict) else group, kind.rsplit("Group", 1)[1])
            counts[key] = counts.get(key, 0) + 1
    words = {"Ingress": "inbound", "Egress": "outbound"}
    return [f"{name}: security group {group} ({_described(resources, group)}) gets {count} {words[direction]} "
            f"rules, EC2 allows {RULES_PER_GROUP} by default ('Inbound or outbound rules per security group', "
            "a quota AWS can raise)"
            for (group, direction), count in sorted(counts.items()) if count > RULES_PER_GROUP]


def _described(resources: dict, group: str) -> str:
    """What the group is for, so the sentence names the services behind the rules."""
    description = resources.get(group, {}).get("Properties", {}).get("GroupDescription", "")
    return description if isinstance(description, str) else group


def check(app: App, rendered: dict[str, tuple[dict, str]]) -> None:
    """Refuse a build any of whose templates, or the secrets list, CloudFormation would refuse."""
    found = [p for name, (template, text) in rendered.items() for p in problems(name, template, text)]
    secrets = len(app.secrets) * MEMBER_BYTES["secret"]
    if secrets > PARAMETER_VALUE_BYTES:
        found.append(f"secrets: {len(app.secrets)} secret ARNs may take {secrets:,} bytes as one parameter, "
                     f"CloudFormation allows {PARAMETER_VALUE_BYTES:,}")
    from templates_src.app.peer_groups import peer_groups

    shared = len(peer_groups(app)) * MEMBER_BYTES["security group"]
    if shared > PARAMETER_VALUE_BYTES:
        found.append(f"network: {len(peer_groups(app))} sets of services that all reach each other may take "
                     f"{shared:,} bytes of group IDs as one parameter, CloudFormation allows {PARAMETER_VALUE_BYTES:,}")
    if found:
        raise QuotaError(found)
