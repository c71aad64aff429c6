"""make rollback: each service (or one) back on its previous task definition, outside CloudFormation.

"Previous" is the newest ACTIVE revision of the service's family older than the one it runs that
this deployment made. A new image tag replaces a task definition, and CloudFormation would deregister
the revision it replaces, which UpdateService then refuses ("you can't update an existing service to
reference an INACTIVE task definition",
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html): the
templates keep them (UpdateReplacePolicy: Retain, services.py), all of them until make cleanup;
an ACTIVE revision costs nothing. Which revisions are this deployment's is proven by the tags
CloudFormation gave them, never by the family name alone: the stack tag make deploy writes, and
CloudFormation's own `aws:cloudformation:stack-name` (the `aws:` prefix is reserved) naming a nested
stack of this deployment, and `aws:cloudformation:logical-id` the same task definition resource as the
revision the service runs
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-resource-tags.html).

The rollback is UpdateService(taskDefinition=...), a new ECS deployment followed as deploy follows one
(rollouts.py). The stack's template still names the newer revision: CloudFormation does not see the
change. The next make deploy that changes a task definition (a new IMAGE_TAG) moves its service to
the new revision; a deploy that changes nothing of a service leaves it where the rollback put it.
"""
from __future__ import annotations

import re
import sys

from botocore.exceptions import ClientError

from lifecycle import approval, rollouts, stacks
from lifecycle.aws import TAG, InputError, Target, missing
from templates_src.app.words import plural

MADE_BY, LOGICAL_ID = "aws:cloudformation:stack-name", "aws:cloudformation:logical-id"


def _tags(described: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in described.get("tags") or []}


def owned(stack: str, tags: dict[str, str]) -> bool:
    """Made by CloudFormation in a nested stack of this deployment, which make deploy tagged."""
    return tags.get(TAG) == stack and re.fullmatch(
        rf"{re.escape(stack)}-[A-Za-z0-9]+Stack-[A-Za-z0-9]+", tags.get(MADE_BY, "")) is not None


def describe(target: Target, task_definition: str) -> tuple[dict, dict[str, str]]:
    found = target.client("ecs").describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
    return found["taskDefinition"], _tags(found)


def previous(target: Target, running: str) -> str | None:
    """The newest ACTIVE revision older than `running` of its family, made for the same resource of
    this deployment; None when there is none."""
    current, tags = describe(target, running)
    if not owned(target.stack, tags):
        return None
    ecs = target.client("ecs")
    arns = [arn for page in ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=current["family"], status="ACTIVE") for arn in page["taskDefinitionArns"]]
    older = sorted((int(arn.rsplit(":", 1)[-1]), arn) for arn in arns
                   if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == current["family"]
                   and int(arn.rsplit(":", 1)[-1]) < current["revision"])
    for _, arn in reversed(older):
        candidate, candidate_tags = describe(target, arn)
        if owned(target.stack, candidate_tags) and candidate_tags.get(LOGICAL_ID) == tags.get(LOGICAL_ID):
            return candidate["taskDefinitionArn"]
    return None


def run(target: Target, service: str | None, yes: bool, wait: int) -> int:
    root = stacks.describe(target, target.stack)
    if root is None:
        raise InputError(f"no stack {target.stack} in {target.region}: nothing to roll back")
    outputs = stacks.outputs(root)
    cluster, names = outputs.get("ClusterName"), stacks.service_names(outputs)
    if not cluster or not names:
        raise InputError(f"stack {target.stack} has no services to roll back (no ClusterName or ServiceNames output)")
    if service is not None and service not in names:
        raise InputError(f"SERVICE: {service!r} is not a service of {target.stack} (it has {', '.join(names)})")
    chosen = [service] if service else names
    ecs = target.client("ecs")
    described = stacks.describe_services(ecs, cluster, chosen)
    plan, stay = [], []
    for svc in described:
        back = previous(target, svc["taskDefinition"])
        (plan if back else stay).append((svc["serviceName"], svc["taskDefinition"], back))
    if not plan:
        raise InputError(f"nothing to roll back to: {' and '.join(n for n, _, _ in stay)} "
                         f"{'runs' if len(stay) == 1 else 'run'} the oldest revision this deployment keeps")
    for name, now, back in plan:
        print(f"rollback: {name}: {rollouts.revision(now)} -> {rollouts.revision(back)} ({image(target, back)})")
    for name, now, _ in stay:
        print(f"rollback: {name}: stays on {rollouts.revision(now)}, the oldest revision this deployment keeps")
    if not confirm(f"Roll back {plural(len(plan), 'service')} of {target.stack} in {target.region}?", yes):
        print("rollback: not confirmed, nothing changed")
        return rollouts.FAILED_CODE
    follow = rollouts.Rollout(target, only=[name for name, _, _ in plan], wait_seconds=wait)
    for name, _, back in plan:
        ecs.update_service(cluster=cluster, service=name, taskDefinition=back)
    code = follow.follow()
    print(f"rollback: the stack's template still names {', '.join(rollouts.revision(now) for _, now, _ in plan)}; "
          "CloudFormation does not see this change. The next make deploy that changes a task definition (a new "
          "IMAGE_TAG) moves its service to the new revision; one that changes nothing of a service leaves it here")
    return code


def image(target: Target, task_definition: str) -> str:
    """The images a revision runs, for the person choosing to roll back to it."""
    found, _ = describe(target, task_definition)
    return ", ".join(c.get("image", "?") for c in found.get("containerDefinitions", []))


def confirm(question: str, yes: bool) -> bool:
    """As deploy asks (approval.py): only on a terminal and without YES=1; elsewhere it goes ahead."""
    if yes:
        return True
    if not sys.stdin.isatty():
        print("rollback: not a terminal, so rolling back without asking")
        return True
    return approval.agreed(f"{question} [y/N] ")


# --- make cleanup ------------------------------------------------------------------------------------

def retained(target: Target) -> list[str]:
    """Every revision of this deployment's task definitions still there (ACTIVE or INACTIVE): the families
    listed by the stack's prefix, each revision then proven by its tags."""
    ecs = target.client("ecs")
    found = []
    for page in ecs.get_paginator("list_task_definition_families").paginate(familyPrefix=f"{target.stack}-"):
        for family in page["families"]:
            for status in ("ACTIVE", "INACTIVE"):
                for arns in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status):
                    for arn in arns["taskDefinitionArns"]:
                        try:
                            _, tags = describe(target, arn)
                        except ClientError as error:
                            if missing(error):
                                continue
                            raise
                        if owned(target.stack, tags):
                            found.append(arn)
    return found


def remove_retained(target: Target) -> list[str]:
    """Deregister, then delete, every revision of the deployment's task definitions a stack delete left: the
    ones kept for rollback (ACTIVE) and those CloudFormation deregistered, which keep its tags
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteTaskDefinitions.html)."""
    ecs = target.client("ecs")
    arns = retained(target)
    for arn in arns:
        current, _ = describe(target, arn)
        if current["status"] == "ACTIVE":
            ecs.deregister_task_definition(taskDefinition=arn)
    for start in range(0, len(arns), 10):  # DeleteTaskDefinitions takes 10 at a time
        ecs.delete_task_definitions(taskDefinitions=arns[start:start + 10])
    return arns
