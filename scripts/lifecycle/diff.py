"""make diff: what make deploy would change, per stack and nested stack, without changing anything.

The templates are uploaded (a change set reads them from S3) under the deploy lock (a diff and a
deploy of one stack do not run at once), then each stack gets a change set
with nested stacks included, which is printed and deleted unexecuted. A stack that does not exist
yet shows every resource as Add; the empty stack CloudFormation makes for that change set is
deleted with it. A deployment not made at all (neither stack nor the templates bucket exists) is
listed from the rendered templates: a preview makes no bucket. Replacements are called out: they
are the changes that lose a resource's data or identity.
"""
from __future__ import annotations

from pathlib import Path

from lifecycle import bucket as templates_bucket
from lifecycle import deploy, stacks, templates
from lifecycle.aws import Target
from templates_src.app.words import plural
from templates_src.app.words import plural


def run(target: Target, config_path: Path, bucket: str | None, overrides: dict[str, str]) -> int:
    """Print the changes; returns how many resources would change."""
    staged = deploy.prepare(target, config_path, bucket, overrides)
    if stacks.describe(target, target.stack) is None and stacks.describe(target, target.registry) is None \
            and not templates_bucket.exists(target, staged.bucket):
        return _new(target, staged)
    with deploy.stage(target, config_path, bucket, overrides) as staged:
        return _changes(target, staged, overrides)


def _new(target: Target, staged: deploy.Staged) -> int:
    """A deployment not made yet: every resource would be added, as the rendered templates say, so
    no bucket, upload or change set is made to say it (its change sets would list the same)."""
    nested = deploy.nested_templates(staged.files)
    always, conditional = 0, 0
    for name, file in ([(target.registry, "registry.yaml")] if "registry.yaml" in staged.files else []) \
            + [(target.stack, "main.yaml")]:
        counted = _adds(name, staged.files, file, nested)
        always, conditional = always + counted[0], conditional + counted[1]
    print(f"diff: {target.stack} is not deployed: deploy would create {plural(always, 'resource')}"
          + (f", and {conditional} more where their conditions hold" if conditional else "")
          + "; nothing was made (no bucket, no upload, no change set)")
    return always + conditional


def _adds(label: str, files: dict[str, str], file: str, nested: dict[str, str], depth: int = 0) -> tuple[int, int]:
    """Print a template's resources as Add; returns how many it makes always, and under a Condition."""
    resources = templates.parse(files[file]).get("Resources") or {}
    indent = "  " * depth
    print(f"{indent}{label} (new stack): {plural(len(resources), 'change')}")
    always, conditional = 0, 0
    for logical, resource in resources.items():
        condition = f" (when {resource['Condition']})" if "Condition" in resource else ""
        print(f"{indent}  {'Add':6} {logical} {resource['Type']}{condition}")
        if file == "main.yaml" and logical in nested:
            inner = _adds(logical, files, nested[logical], nested, depth + 2)
            always, conditional = always + inner[0], conditional + inner[1]
        elif condition:
            conditional += 1
        else:
            always += 1
    return always, conditional


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
    print(f"diff: {plural(total, 'resource change')}; no stack was changed" if total else "diff: no changes")
    return total


def report(target: Target, label: str, change_set: str, kind: str, depth: int = 0) -> int:
    changes = stacks.change_set_changes(target, None, change_set)
    indent = "  " * depth
    print(f"{indent}{label} ({'new stack' if kind == 'CREATE' else 'update'}): {plural(len(changes), 'change')}")
    count = 0
    for change, line in zip(changes, stacks.summarize(changes)):
        print(f"{indent}  {line}")
        nested = change.get("ChangeSetId")
        if change.get("ResourceType") == "AWS::CloudFormation::Stack" and nested:
            count += report(target, change["LogicalResourceId"], nested, kind, depth + 2)
        else:
            count += 1
    return count
