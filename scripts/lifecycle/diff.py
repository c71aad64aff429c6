"""make diff: what make deploy would change, per stack and nested stack, without changing anything.

The templates are uploaded (a change set reads them from S3) under the deploy lock (a diff and a
deploy of one stack do not run at once), then each stack gets a change set
with nested stacks included, which is printed and deleted unexecuted. A stack that does not exist
yet shows every resource as Add; the empty stack CloudFormation makes for that change set is
deleted with it. Replacements are called out: they are the changes that lose a resource's data
or identity.
"""
from __future__ import annotations

from pathlib import Path

from lifecycle import deploy, stacks
from lifecycle.aws import Target


def run(target: Target, config_path: Path, bucket: str | None, overrides: dict[str, str]) -> int:
    """Print the changes; returns how many resources would change."""
    with deploy.stage(target, config_path, bucket, overrides) as staged:
        return _changes(target, staged, overrides)


def _changes(target: Target, staged: deploy.Staged, overrides: dict[str, str]) -> int:
    plans = []
    if "registry.yaml" in staged.files:
        plans.append((target.registry, "registry.yaml", staged.registry_parameters(target)))
    plans.append((target.stack, "main.yaml", staged.root_parameters(
        target, stacks.describe(target, target.stack), overrides)))
    total = 0
    for name, file, params in plans:
        proposal = stacks.propose(target, name, staged.url(target, file), params, nested=True, purpose="diff")
        if proposal is None:
            continue
        try:
            total += report(target, name, proposal.change_set, proposal.kind)
        finally:
            stacks.withdraw(target, proposal)
    print(f"diff: {total} resource change(s); nothing was changed" if total else "diff: no changes")
    return total


def report(target: Target, label: str, change_set: str, kind: str, depth: int = 0) -> int:
    changes = stacks.change_set_changes(target, None, change_set)
    indent = "  " * depth
    print(f"{indent}{label} ({'new stack' if kind == 'CREATE' else 'update'}): {len(changes)} change(s)")
    count = 0
    for change, line in zip(changes, stacks.summarize(changes)):
        print(f"{indent}  {line}")
        nested = change.get("ChangeSetId")
        if change.get("ResourceType") == "AWS::CloudFormation::Stack" and nested:
            count += report(target, change["LogicalResourceId"], nested, kind, depth + 2)
        else:
            count += 1
    return count
