"""Docker Hub images run from a copy in the app's own ECR: which images, under which name and tag.

Docker Hub limits anonymous pulls to 100 per 6 hours per IPv4 address (or IPv6 /64)
(https://docs.docker.com/docker-hub/usage/pulls/). Every ECS host pulls from its own public IP,
and the agent pulls again at every task start (ECS_IMAGE_PULL_BEHAVIOR=default,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/pull-behavior.html): a replaced or
scaled-out host, or a task restarting in a loop, spends that budget and then fails to start. So
every service whose image is on Docker Hub runs a copy that `make images` puts in a repository of
registry.yaml once, `${EnvironmentName}/mirror/<Docker Hub path>`, and the hosts pull only from
ECR. Images of every other registry (public.ecr.aws, ghcr.io, quay.io, ...) are used as written.

A reference is read as Docker reads it (distribution/reference, normalize.go and regexp.go:
https://github.com/distribution/reference): a first path component with a '.' or ':', or
`localhost`, or an uppercase letter, names a registry host; none, docker.io or index.docker.io
is Docker Hub (registry-1.docker.io is its registry's own host name, taken as Docker Hub too);
a Docker Hub name with no namespace is an official image, `library/<name>`.

The copy's tag names what was copied and for which platform, because `make images` skips a tag
ECR already holds and the registry's tags are immutable by default:
- `postgres:16.4-alpine` on x86_64 hosts becomes `16.4-alpine-amd64` (no tag: `latest-amd64`).
  A Docker Hub tag may later point at another image; the copy stays the one first copied, until
  the config names another tag.
- `postgres@sha256:<hex>` (with or without a tag before the @) becomes `sha256-<hex>-amd64`, the
  scheme cosign uses for signatures of a digest (`sha256-<hex>.sig`): a tag cannot hold the ':'
  of a digest, and the copy cannot keep the digest itself, because `docker pull --platform`
  resolves a multi-platform index to one platform's image, whose digest is another, and a push
  to another registry may compress the layers anew. The digest in the tag, which `make images`
  never pushes twice, is what ties the copy to the pinned image.
- The platform suffix keeps an x86_64 copy from being reused when the hosts become arm64.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from templates_src.app.config import App, logical_id

HUB_HOSTS = ("", "docker.io", "index.docker.io", "registry-1.docker.io")
OFFICIAL = "library/"
PREFIX = "mirror/"  # under the app's REPOSITORY_PREFIX: ${EnvironmentName}/mirror/library/postgres
PLATFORM_SUFFIX = {"x86_64": "amd64", "arm64": "arm64"}

# distribution/reference's grammar (regexp.go).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
# ECS accepts sha256 digests only, 64 hex digits
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html, image);
# the OCI digest format writes them in lowercase.
DIGEST = re.compile(r"sha256:([a-f0-9]{64})")
# ECR repository names: one '.', '_' or '-' between letters and digits; Docker also allows '__'
# and '--' (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html).
ECR_COMPONENT = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")


@dataclass(frozen=True)
class Reference:
    """An image reference, split the way Docker splits it."""

    domain: str  # "" when the reference names no registry host
    path: str  # library/postgres for a Docker Hub official image
    tag: Optional[str]
    digest: Optional[str]  # sha256:<hex>

    @property
    def docker_hub(self) -> bool:
        return self.domain in HUB_HOSTS

    @property
    def identity(self) -> tuple[str, str]:
        """What the reference pins: the digest when there is one (Docker then ignores the tag)."""
        return self.path, self.digest or self.tag or "latest"


def parse(image: str) -> Optional[Reference]:
    """The reference, or None when Docker (or ECS, for digests) would not accept it."""
    rest, _, digest = image.partition("@")
    if digest and not DIGEST.fullmatch(digest):
        return None
    name, tag = rest, None
    if ":" in rest.rpartition("/")[2]:  # a ':' after the last '/' starts the tag; before it, a port
        name, _, tag = rest.rpartition(":")
        if not TAG.fullmatch(tag):
            return None
    first, slash, remainder = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, remainder
        if not _DOMAIN.fullmatch(domain):
            return None
    else:
        domain, path = "", name
    if not _PATH.fullmatch(path):
        return None
    if domain in HUB_HOSTS and "/" not in path:
        path = OFFICIAL + path
    return Reference(domain, path, tag, digest or None)


@dataclass(frozen=True)
class Copy:
    """A Docker Hub image and its copy in the app's ECR."""

    source: str  # the reference as the config writes it: what `docker pull` fetches
    repository: str  # the repository's name under the app's prefix: mirror/library/postgres
    tag: str  # the copy's tag

    @property
    def local(self) -> str:
        """The name Docker gives the pulled image (a reference with a tag and a digest keeps only
        the digest: distribution/reference's ParseDockerRef), which `docker tag` starts from."""
        name, at, digest = self.source.partition("@")
        if at and ":" in name.rpartition("/")[2]:
            name = name.rpartition(":")[0]
        return f"{name}{at}{digest}"


def copy_tag(reference: Reference, architecture: str) -> str:
    if reference.digest:
        named = "sha256-" + DIGEST.fullmatch(reference.digest).group(1)
    else:
        named = reference.tag or "latest"
    return f"{named}-{PLATFORM_SUFFIX[architecture]}"


def architecture(app: App) -> str:
    from templates_src.app import instance_types

    return instance_types.TYPES[app.cluster.instance_type].architecture


def copy_of(app: App, image: Optional[str]) -> Optional[Copy]:
    """The ECR copy a service with this image runs, or None when the image is not on Docker Hub."""
    reference = parse(image) if image else None
    if reference is None or not reference.docker_hub:
        return None
    return Copy(image, PREFIX + reference.path, copy_tag(reference, architecture(app)))


def copies(app: App) -> tuple[Copy, ...]:
    """Every copy the app's services run, once each, in service order."""
    found: dict[tuple[str, str], Copy] = {}
    for svc in app.services:
        copy = copy_of(app, svc.image)
        if copy is not None:
            found.setdefault((copy.repository, copy.tag), copy)
    return tuple(found.values())


def repositories(app: App) -> tuple[str, ...]:
    """One repository per Docker Hub image name, shared by every service and tag of it."""
    return tuple(dict.fromkeys(PREFIX + ref.path for svc in app.services
                               if svc.image and (ref := parse(svc.image)) and ref.docker_hub))


def validate(app: App, add) -> None:
    """Refuse an image Docker would not read, and a Docker Hub image whose copy ECR cannot hold."""
    ids = {logical_id(repo): repo for repo in app.repositories}
    pinned: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}
    for i, svc in enumerate(app.services):
        if not svc.image:
            continue
        at = f"services[{i}].image"
        reference = parse(svc.image)
        if reference is None:
            add(at, f"'{svc.image}' is not an image reference Docker accepts ([host/]path[:tag][@sha256:<64 hex "
                    "digits>], lowercase path)")
            continue
        if not reference.docker_hub:
            continue
        if not all(ECR_COMPONENT.fullmatch(part) for part in reference.path.split("/")):
            add(at, f"'{svc.image}' is on Docker Hub, so it runs from a copy in ECR, but ECR repository names allow "
                    f"only one '.', '_' or '-' between letters and digits ({reference.path}); use a registry that "
                    "serves it under another name")
            continue
        repository = PREFIX + reference.path
        tag = copy_tag(reference, "x86_64")  # both platform suffixes are as long
        if not TAG.fullmatch(tag):
            add(at, f"'{svc.image}': its copy's tag {tag} (the tag and the hosts' platform) is longer than the "
                    "128 characters Docker allows; use a shorter tag or pin a digest")
            continue
        other = ids.setdefault(logical_id(repository), repository)
        if other != repository:
            add(at, f"'{svc.image}' is copied to the repository {repository}, whose resource names "
                    f"({logical_id(repository)}) are also those of {other}")
        same = pinned.setdefault((repository, tag), (reference.identity, svc.image))
        if same[0] != reference.identity:
            add(at, f"'{svc.image}' and '{same[1]}' would share the copy {repository}:{tag}; pin one by digest")
