"""Where stock moto 5.2.5 behaves unlike AWS with our templates, made to behave like AWS: one module per service.

Each fix wraps or replaces one moto function at import time (the decorators below); moto's files are not edited.
Importing the package applies them all, in the order listed; `FIXES` names each thing changed. The list follows
../shared/reference/emulator-notes.md:

- `cloudformation`: the engine. Per-resource stack events as CloudFormation writes them; a failed create rolls
  back (ROLLBACK_COMPLETE, or OnFailure's choice) instead of answering 500 mid-way; a failed delete leaves the
  stack DELETE_FAILED instead of dropping it with its resources; a stack's resources deleted dependents first
  (../deletion.py), not in moto's changing order; parameters checked against their constraints; outputs and
  resources of a stack that stands only, never created lazily; the stack's and aws:cloudformation:* tags on the
  kept data's KMS key, secrets and EFS file system, and on task definitions (moto tags only EC2 resources).
- `nested_stacks`: AWS::CloudFormation::Stack. `GetAtt Child.Outputs.X`, ParentId/RootId, a failed child fails
  its parent, the root's tags (../updates.py updates them in place), Ref is the stack ARN, parameters passed as
  strings, DescribeStacks' SSM and NoEcho parameters, a missing TemplateURL refused.
- `servicediscovery`: a VPC takes a second Cloud Map namespace of another name (a renamed namespace is made
  before the old goes).
- `ecs`: cluster, task definition and service keep the properties the templates set and are refused where ECS
  refuses them; their deletes; ListClusters/ListServices leave out INACTIVE records; DescribeCapacityProviders
  without names.
- `iam`: roles get their ManagedPolicyArns and inline policies as JSON; a policy statement whose condition
  does not hold does not apply.
- `ec2`: VPC DNS flags, public subnets, security groups with their egress rules, ingress rules, the deletes
  moto leaves out (gateway, attachment, routes, route tables, associations); instances launched from a launch
  template get its public IP and groups, and lose their primary interface on termination.
- `elbv2`: load balancers keep Type and attributes and check the access-log bucket; listeners, rules and target
  groups are deleted with their stack.
- `autoscaling`: group sizes checked as Auto Scaling checks them; a group already gone deletes.
- `ecr`: repositories keep scanning, encryption, lifecycle policy and EmptyOnDelete.
- `kms`: keys take KeyPolicy and Tags as CloudFormation gives them; a stack's delete schedules the key's.
- `logs`: log groups keep KmsKeyId.
- `efs`: access points and file systems answer Ref and GetAtt.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

FIXES: list[str] = []


def add(owner: Any, name: str) -> Callable:
    """Give owner a method it lacks (a delete moto never wrote)."""

    def decorate(function: Callable) -> Callable:
        setattr(owner, name, function)
        FIXES.append(f"{owner.__name__}.{name}")
        return function

    return decorate


def replace_classmethod(owner: Any, name: str) -> Callable:
    """Replace a classmethod; the replacement gets the original bound classmethod first."""
    original = owner.__dict__[name]

    def decorate(replacement: Callable) -> Callable:
        def method(cls: Any, *args: Any, **kwargs: Any) -> Any:
            return replacement(original.__get__(None, cls), cls, *args, **kwargs)

        setattr(owner, name, classmethod(method))
        FIXES.append(f"{owner.__name__}.{name}")
        return replacement

    return decorate


def replace(owner: Any, name: str) -> Callable:
    """Replace a plain function or method; the replacement gets the original first."""
    original = getattr(owner, name)

    def decorate(replacement: Callable) -> Callable:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return replacement(original, *args, **kwargs)

        setattr(owner, name, wrapper)
        FIXES.append(f"{getattr(owner, '__name__', owner)}.{name}")
        return replacement

    return decorate


def copy_of(model: Any, **own: Any) -> Any:
    """A shallow copy of a moto model, with `own` values for its mutable parts (lists, sets, its backend):
    what public_images, public_parameters and managed_policies hand each backend instead of building anew."""
    made = object.__new__(type(model))
    made.__dict__.update(model.__dict__, **own)
    return made


def flag(value: Any) -> bool:
    """A template's boolean, given as true or "true" (any case)."""
    return value is True or str(value).lower() == "true"


# After the decorators, which each module applies as it is imported; the order is the order they wrap moto in.
from . import cloudformation, nested_stacks, servicediscovery, ecs, iam, ec2, elbv2, autoscaling  # noqa: E402,F401
from . import ecr, kms, logs, efs, server  # noqa: E402,F401
