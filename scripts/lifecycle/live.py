"""What a deployment looks like right now: its stacks, ECS services, targets, discovery, URLs.

Read by name from the root stack's outputs (ClusterName, ServiceNames, the URL outputs), then from
each service's own description (its target groups and Cloud Map services), so status and verify
never guess a physical name.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from lifecycle import stacks
from lifecycle.aws import Target, missing


@dataclass
class Live:
    stacks: list[tuple[str, dict]] = field(default_factory=list)  # (label, description): root, nested, registry
    cluster: str | None = None
    services: list[dict] = field(default_factory=list)  # ECS DescribeServices, in start order
    targets: dict[str, list[dict]] = field(default_factory=dict)  # target group ARN -> DescribeTargetHealth
    discovered: dict[str, list[dict]] = field(default_factory=dict)  # Cloud Map service id -> instances
    instances: list[str] = field(default_factory=list)  # container instance ARNs
    hosts: list[dict] = field(default_factory=list)  # DescribeContainerInstances
    tasks: list[dict] = field(default_factory=list)  # DescribeTasks of the tasks meant to run (RUNNING, PROVISIONING)
    urls: dict[str, str] = field(default_factory=dict)  # output name -> URL

    @property
    def root(self) -> dict | None:
        return self.stacks[0][1] if self.stacks and self.stacks[0][0] == "root" else None


def gather(target: Target) -> Live:
    live = Live()
    root = stacks.describe(target, target.stack)
    if root:
        live.stacks.append(("root", root))
        cfn = target.client("cloudformation")
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=root["StackId"]):
            for item in page["StackResourceSummaries"]:
                if item["ResourceType"] == "AWS::CloudFormation::Stack" and item.get("PhysicalResourceId"):
                    child = stacks.describe(target, item["PhysicalResourceId"])
                    if child:
                        live.stacks.append((item["LogicalResourceId"], child))
    registry = stacks.describe(target, target.registry)
    if registry:
        live.stacks.append(("registry", registry))
    out = stacks.outputs(root)
    live.urls = {k: v for k, v in out.items() if k.endswith("Url")}
    live.cluster = out.get("ClusterName")
    names = stacks.service_names(out)
    if not live.cluster or not names:
        return live
    ecs = target.client("ecs")
    try:
        live.services += stacks.describe_services(ecs, live.cluster, names)
        live.instances = [arn for page in ecs.get_paginator("list_container_instances").paginate(cluster=live.cluster)
                          for arn in page["containerInstanceArns"]]
        for start in range(0, len(live.instances), 100):
            live.hosts += ecs.describe_container_instances(cluster=live.cluster,
                                                           containerInstances=live.instances[start:start + 100])[
                "containerInstances"]
        tasks = [arn for page in ecs.get_paginator("list_tasks").paginate(cluster=live.cluster, desiredStatus="RUNNING")
                 for arn in page["taskArns"]]
        for start in range(0, len(tasks), 100):
            live.tasks += ecs.describe_tasks(cluster=live.cluster, tasks=tasks[start:start + 100])["tasks"]
    except ClientError as error:
        if not missing(error):
            raise
    elb = target.client("elbv2")
    sd = target.client("servicediscovery")
    for svc in live.services:
        for lb in svc.get("loadBalancers", []):
            arn = lb["targetGroupArn"]
            live.targets[arn] = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        for registry_ref in svc.get("serviceRegistries", []):
            service_id = registry_ref["registryArn"].rsplit("/", 1)[-1]
            live.discovered[service_id] = [i for page in sd.get_paginator("list_instances").paginate(
                ServiceId=service_id) for i in page["Instances"]]
    return live


def print_table(headers: list[str], rows: list[list[str]], title: str = "", out=None) -> None:
    """A rich table on a terminal; aligned plain text elsewhere."""
    out = out or sys.stdout
    if out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, title=title or None)
        for row in rows:
            table.add_row(*row)
        Console(file=out).print(table)
        return
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    if title:
        print(title, file=out)
    for row in [headers, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)
