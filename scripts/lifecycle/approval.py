"""Asking before a change that widens what the deployment may do or replaces what it holds.

As `cdk deploy --require-approval broadening` asks before security-related changes
(https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.cloud_assembly_schema.RequireApproval.html),
deploy asks, on a terminal, before it executes a change set that adds, changes or removes IAM
resources (AWS::IAM::*) or security groups and their rules (AWS::EC2::SecurityGroup*), or that
replaces a resource (its data and identity go). YES=1 (--yes) does not ask; without a terminal
(CI) deploy goes on and says what it did not ask about.

A nested stack's own changes are listed when its change set includes nested stacks
(IncludeNestedStacks; executing the root change set executes them all:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/change-sets-for-nested-stacks.html),
which deploy asks for only when it will ask (they take longer to make). A nested stack whose changes
are not listed (the emulator lists the root's only) counts by the template it runs: one holding IAM
resources or security groups is asked about.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from lifecycle import stacks, templates
from lifecycle.aws import Target

SENSITIVE = {"AWS::IAM::": "IAM", "AWS::EC2::SecurityGroup": "security group"}
STACK_TYPE = "AWS::CloudFormation::Stack"


def sensitive(resource_type: str) -> str | None:
    return next((what for prefix, what in SENSITIVE.items() if resource_type.startswith(prefix)), None)


def nested_types(files: dict[str, str]) -> dict[str, set[str]]:
    """Nested stack logical ID (in main.yaml) -> the resource types its template holds."""
    from lifecycle.deploy import nested_templates

    return {logical: {r.get("Type", "") for r in (templates.parse(files[file]).get("Resources") or {}).values()}
            for logical, file in nested_templates(files).items()}


@dataclass
class Approval:
    yes: bool
    templates: dict[str, set[str]] = field(default_factory=dict)  # see nested_types
    approved: set[str] = field(default_factory=set)  # stacks approved in this deploy: not asked again
    executed: list[str] = field(default_factory=list)  # stacks this deploy changed, in order
    ask = staticmethod(input)

    @property
    def interactive(self) -> bool:
        """Whether deploy may ask: a terminal, and no YES=1."""
        return not self.yes and sys.stdin.isatty()

    def reasons(self, target: Target, changes: list[dict], where: str = "") -> list[str]:
        found = []
        for change in changes:
            at = f"{where}{change['LogicalResourceId']}"
            kind = change.get("ResourceType", "")
            action = change.get("Action", "?")
            what = sensitive(kind)
            if what:
                found.append(f"{action} {at} ({kind}): {what}")
            if change.get("Replacement") in ("True", "Conditional"):
                found.append(f"{action} {at} ({kind}): " + ("REPLACED" if change["Replacement"] == "True"
                                                             else "may be replaced"))
            if kind == STACK_TYPE and change.get("ChangeSetId"):
                found += self.reasons(target, stacks.change_set_changes(target, None, change["ChangeSetId"]),
                                      f"{at}/")
            elif kind == STACK_TYPE:
                held = sorted({w for t in self.templates.get(change["LogicalResourceId"], ()) if (w := sensitive(t))})
                if held:
                    verb = {"Add": "creates", "Remove": "deletes"}.get(
                        action, "may change (its changes are not listed)")
                    found.append(f"{action} {at} ({kind}): {verb} {' and '.join(held)} resources")
        return found

    def __call__(self, target: Target, name: str, proposal: stacks.Proposal, changes: list[dict]) -> bool:
        """True to execute the change set; False when the person at the terminal says no."""
        if self.yes or name in self.approved:
            self.executed.append(name)
            return True
        reasons = self.reasons(target, changes)
        if not reasons:
            self.executed.append(name)
            return True
        if not self.interactive:
            print(f"{name}: not a terminal, so executing without asking: {'; '.join(reasons)}")
            self.executed.append(name)
            return True
        print(f"{name}: this change set widens access or replaces resources:")
        for line in reasons:
            print(f"  {line}")
        if not agreed(f"Execute it on {name}? [y/N] "):
            return False
        self.approved.add(name)
        self.executed.append(name)
        return True

    def declined(self, name: str, kind: str) -> str:
        """What deploy says when the answer was no."""
        done = f"{name} is unchanged" if kind == "UPDATE" else f"{name} was not created"
        before = [s for s in self.executed if s != name]
        return (f"deploy: not executed; the change set is deleted and {done}. "
                + (f"Executed earlier in this deploy: {', '.join(before)}." if before
                   else "Nothing else was changed (the templates stay uploaded in the bucket)."))


def agreed(question: str) -> bool:
    """A y/N question at the terminal, as every command that asks puts it; no answer (EOF) is no."""
    sys.stdout.flush()
    try:
        answer = Approval.ask(question)
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")
