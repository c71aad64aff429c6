"""Stacks a client leaves midway (interrupted, killed), treated as CloudFormation treats them.

Wraps moto's CloudFormation backend at install time, like fixes/, for what only shows when a
deploy stops between its calls or while CloudFormation is still at work:

- a stack in REVIEW_IN_PROGRESS (a CREATE change set made, never executed) takes another CREATE
  change set, on the same stack; moto made a second stack of the same name;
- a CREATE change set for a stack that exists otherwise is refused; moto made a second stack too;
- while a change set executes, the stack reads CREATE_IN_PROGRESS / UPDATE_IN_PROGRESS; moto left
  REVIEW_IN_PROGRESS until the end (visible only when creation takes time, e.g. a held resource);
- executing a change set removes the stack's other change sets (the one an interrupted deploy
  left unexecuted among them); moto kept them.
"""
from __future__ import annotations

from typing import Any


def install() -> None:
    from moto.cloudformation import models as cfn

    backend = cfn.CloudFormationBackend
    create_change_set = backend.create_change_set
    execute_change_set = backend.execute_change_set

    def create(self: Any, stack_name: str, change_set_name: str, template: str, parameters: dict[str, str],
               description: str, change_set_type: str, *args: Any, **kwargs: Any) -> tuple[str, str]:
        existing = next((s for s in self.stacks.values() if s.name == stack_name
                         and s.status != "DELETE_COMPLETE"), None)
        if change_set_type == "CREATE" and existing is not None and existing.status != "REVIEW_IN_PROGRESS":
            raise cfn.ValidationError(stack_name, f"Stack [{stack_name}] already exists and cannot be created again "
                                                  f"with the changeSet [{change_set_name}].")
        change_set_id, stack_id = create_change_set(self, stack_name, change_set_name, template, parameters,
                                                    description, change_set_type, *args, **kwargs)
        if change_set_type == "CREATE" and existing is not None:
            made = self.stacks.pop(stack_id)  # the second stack moto made; the change set joins the first
            change_set = self.change_sets[change_set_id]
            change_set.stack, change_set.stack_id = existing, existing.stack_id
            existing.tags = made.tags
            stack_id = existing.stack_id
        return change_set_id, stack_id

    def execute(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks.get(change_set.stack_id)
        if stack is not None and change_set.execution_status == "AVAILABLE":
            stack.status = f"{change_set.change_set_type}_IN_PROGRESS"
        execute_change_set(self, change_set_name, stack_name)
        for other in [k for k, c in self.change_sets.items()
                      if c.stack_id == change_set.stack_id and c is not change_set]:
            del self.change_sets[other]

    backend.create_change_set = create
    backend.execute_change_set = execute
