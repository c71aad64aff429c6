"""registry.yaml: the app's ECR repositories, a top-level stack deployed before the root.

Images must be pushed before the services start, so the repositories cannot live in the stack
that runs them. EmptyOnDelete lets the stack delete repositories that still hold images. Tags are
immutable by default (a tag names one image for good: `make images` tags by source commit and
skips what is already pushed); ImageTagMutability=MUTABLE allows re-pushing a tag such as latest.
Images are encrypted with ECR's AWS-managed KMS key.
"""
from __future__ import annotations

import json

from troposphere import GetAtt, Output, Parameter, Ref
from troposphere.ecr import EncryptionConfiguration, ImageScanningConfiguration, LifecyclePolicy, Repository

from templates_src import links, names
from templates_src.config import App, logical_id
from templates_src.wiring import Stack


MUTABILITY = "ImageTagMutability"


def lifecycle(keep: int) -> str:
    return json.dumps({"rules": [{
        "rulePriority": 1, "description": f"Keep the last {keep} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    }]}, sort_keys=True)


def repository_output(repo: str) -> str:
    """Name of the output holding the repository's URI (make images reads it)."""
    return f"{logical_id(repo)}RepositoryUri"


def build(app: App) -> Stack:
    stack = Stack("registry", app, f"{app.name}: ECR repositories (deploy before main.yaml)")
    stack.template.add_parameter(Parameter(
        links.ENVIRONMENT_NAME.name, Type="String", Default=app.name, MaxLength=names.ENVIRONMENT_MAX,
        AllowedPattern=names.ENVIRONMENT_PATTERN, Description=f"{links.ENVIRONMENT_NAME.description}; "
                                                               "the same as the main stack's",
    ))
    stack.template.add_parameter(Parameter(
        MUTABILITY, Type="String", Default="IMMUTABLE", AllowedValues=["IMMUTABLE", "MUTABLE"],
        Description="IMMUTABLE: a pushed tag can never point at another image; MUTABLE allows re-pushing a tag"))
    for repo in app.repositories:
        repository = stack.add(Repository(
            f"{logical_id(repo)}Repository", RepositoryName=names.repository(repo).sub(),
            ImageScanningConfiguration=ImageScanningConfiguration(ScanOnPush=True),
            ImageTagMutability=Ref(MUTABILITY), EmptyOnDelete=True,
            EncryptionConfiguration=EncryptionConfiguration(EncryptionType="KMS"),
            LifecyclePolicy=LifecyclePolicy(LifecyclePolicyText=lifecycle(app.keep_images)),
        ))
        stack.template.add_output(Output(repository_output(repo), Description=f"Push {repo} images here",
                                         Value=GetAtt(repository, "RepositoryUri")))
    return stack
