"""registry.yaml: the app's ECR repositories, a top-level stack deployed before the root.

Images must be pushed before the services start, so the repositories cannot live in the stack
that runs them. There is one repository per image the app builds, and one per Docker Hub image
name its services run (`mirror/<Docker Hub path>`, see mirror.py), which `make images` copies the
image into; both kinds are scanned, encrypted, expired and protected alike. EmptyOnDelete lets
the stack delete repositories that still hold images. Tags are immutable by default (a tag names
one image for good: `make images` tags by what went into an image and skips what is already
pushed); ImageTagMutability=MUTABLE allows re-pushing a tag such as latest. Images are encrypted
with ECR's AWS-managed KMS key.
"""
from __future__ import annotations

import json

from troposphere import GetAtt, Output, Parameter, Ref
from troposphere.ecr import EncryptionConfiguration, ImageScanningConfiguration, LifecyclePolicy, Repository

from templates_src.app import mirror, names
from templates_src.stacks import links
from templates_src.app.config import App, logical_id
from templates_src.stacks.wiring import Stack


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


def repositories(app: App) -> tuple[str, ...]:
    """Names (under the app's prefix) of every repository: the built images', then the copies'."""
    return app.repositories + mirror.repositories(app)


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
    copied = set(mirror.repositories(app))
    for repo in repositories(app):
        repository = stack.add(Repository(
            f"{logical_id(repo)}Repository", RepositoryName=names.repository(repo).sub(),
            ImageScanningConfiguration=ImageScanningConfiguration(ScanOnPush=True),
            ImageTagMutability=Ref(MUTABILITY), EmptyOnDelete=True,
            EncryptionConfiguration=EncryptionConfiguration(EncryptionType="KMS"),
            LifecyclePolicy=LifecyclePolicy(LifecyclePolicyText=lifecycle(app.keep_images)),
        ))
        what = (f"Copies of Docker Hub's {repo.removeprefix(mirror.PREFIX)}" if repo in copied else
                f"Push {repo} images here")
        stack.template.add_output(Output(repository_output(repo), Description=what,
                                         Value=GetAtt(repository, "RepositoryUri")))
    return stack
