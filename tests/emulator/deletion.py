"""A stack's resources deleted in reverse dependency order, as CloudFormation deletes them.

moto 5.2.5 tried every resource of a stack in set order (which varies from run to run) and retried
what failed. CloudFormation deletes a resource only once nothing still standing in the stack
depends on it, through Ref, Fn::GetAtt, Fn::Sub or DependsOn
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html),
so what exists while a resource is deleted (an ECS capacity provider while its Auto Scaling group
goes, say) is decided by the template, and a test sees the order a real delete has. A resource
that fails is not retried (one DELETE_FAILED event each); what does not depend on it still goes,
and the delete then fails with the first failure.
"""
from __future__ import annotations

import re
from typing import Any

from moto.cloudformation import parsing

from .resources import EmulatorError

SUBSTITUTION = re.compile(r"\$\{([^!}][^}]*)\}")


def references(value: Any) -> set[str]:
    """Logical names (and parameters, pseudo parameters) a template fragment refers to."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0])
                found |= references(inner[1:] if isinstance(inner, list) else [])
            elif key == "Fn::Sub":
                text, variables = (inner[0], inner[1]) if isinstance(inner, list) else (inner, {})
                found |= {name.split(".", 1)[0] for name in SUBSTITUTION.findall(str(text)) if name not in variables}
                found |= references(variables)
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def needs(resource: dict) -> set[str]:
    """What a resource depends on: what its properties refer to, and its DependsOn."""
    depends = resource.get("DependsOn", [])
    return references(resource.get("Properties", {})) | set([depends] if isinstance(depends, str) else depends)


def delete_in_order(resource_map: parsing.ResourceMap) -> None:
    """Delete every resource of the map not retained, dependents first; raise the first failure."""
    declared = resource_map._resource_json_map
    depends = {name: needs(resource) & set(declared) - {name} for name, resource in declared.items()}
    remaining = [name for name, resource in declared.items() if resource.get("DeletionPolicy") != "Retain"]
    failed: dict[str, Exception] = {}
    while True:
        ready = [name for name in remaining
                 if name not in failed and not any(name in depends[other] for other in remaining)]
        if not ready:
            break
        for name in ready:
            made = resource_map._parsed_resources.get(name)
            try:
                if made is not None and not isinstance(made, str):
                    resource_map._delete_resource(made, declared[name])
                    resource_map._parsed_resources.pop(name)
            except Exception as failure:  # what depends on nothing else still goes; this one stays
                failed[name] = failure
            else:
                remaining.remove(name)
    if remaining:
        raise next(iter(failed.values()), None) or EmulatorError(f"Circular dependency between {sorted(remaining)}")
