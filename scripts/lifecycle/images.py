"""make images: copy the app's Docker Hub images into its ECR, build its own images, push them.

Copies (templates_src/app/mirror.py): every Docker Hub image a service runs is pulled for the hosts'
platform (the exact reference the config gives), tagged with the name its task definition gives
the copy and pushed to the registry stack's repository for it; a copy ECR already holds is not
made again. A copy needs no deployed URL, so deploy makes it before it changes the root stack.

Builds: each repository's source is `<REPOSITORY>_DIR` (dks-api -> DKS_API_DIR) when set, else a
clone of the git URL and commit in the app's `sources.yaml` (beside its config). Environment
values that name a deployed URL (`{dks-api.url}`) are passed as build arguments, read from the
root stack's outputs: Next.js inlines KNOWLEDGE_SHARE_API when the image is built. Every image is
built before any is pushed, so a failed build pushes nothing. The tag is a digest of everything
that goes into the images: the sources' commits, the build arguments and the platform.
"""
from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from lifecycle import stacks
from lifecycle.aws import InputError, LifecycleError, Target
from templates_src.app import config, instance_types, loading, mirror
from templates_src.stacks import registry

PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
SOURCES = "sources.yaml"
CLONES = Path(__file__).resolve().parents[2] / ".sources"


@dataclass(frozen=True)
class Image:
    repository: str  # name in the config, e.g. dks-api
    uri: str  # <account>.dkr.ecr.<region>.amazonaws.com/<stack>/dks-api
    directory: Path
    build_args: dict[str, str]


def source_variable(repository: str) -> str:
    return repository.upper().replace("-", "_") + "_DIR"


def url_values(app: config.App, repository: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Environment name -> (its value, {service: root output holding its URL}) for the values that
    name a deployed URL, in the services built from `repository`."""
    found = {}
    for svc in app.services:
        if svc.repository != repository:
            continue
        for key, value in svc.environment.items():
            urls = {ref.service: config.url_output(app.service(ref.service))
                    for ref in config.references(value) if ref.attribute == "url"}
            if urls:
                found[key] = (value, urls)
    return found


def needed_outputs(app: config.App) -> set[str]:
    """Root outputs the images inline (a first deploy must create the root before building)."""
    return {output for repo in app.repositories for _, urls in url_values(app, repo).values()
            for output in urls.values()}


def build_args(app: config.App, repository: str, root_outputs: dict[str, str], stack: str) -> dict[str, str]:
    args = {}
    for key, (value, urls) in url_values(app, repository).items():
        for service, output in urls.items():
            if output not in root_outputs:
                raise LifecycleError(
                    f"{repository}: {key} needs the root stack's output {output}, and stack {stack} has none "
                    f"yet; make deploy creates the root first (with no tasks), then builds the images")
            value = value.replace(f"{{{service}.url}}", root_outputs[output])
        args[key] = value
    return args


_SOURCES: dict[tuple[str, str], Path] = {}  # (config directory, repository) -> checkout, fetched once a run


def source(app: config.App, repository: str) -> Path:
    key = (str(app.base_dir), repository)
    if key not in _SOURCES:
        _SOURCES[key] = _source(app, repository)
    return _SOURCES[key]


def _source(app: config.App, repository: str) -> Path:
    variable = source_variable(repository)
    if os.environ.get(variable):
        directory = Path(os.environ[variable]).expanduser()
        if not directory.is_dir():
            raise LifecycleError(f"{variable}={directory} is not a directory")
        return directory
    entry = pinned_sources(app.base_dir / SOURCES).get(repository)
    if not entry:
        raise LifecycleError(f"{repository}: no source; set {variable}=<checkout> "
                             f"or add it to {app.base_dir / SOURCES}")
    directory = CLONES / repository
    ref = entry.get("commit") or entry.get("ref", "HEAD")
    if not (directory / ".git").is_dir():
        # "--": a URL is never read as an option (--upload-pack=... runs a program).
        _run(["git", "clone", "--quiet", "--", entry["git"], str(directory)], f"cloning {entry['git']}")
    _run(["git", "-C", str(directory), "fetch", "--quiet", "origin"], f"fetching {entry['git']}")
    _run(["git", "-C", str(directory), "checkout", "--quiet", "--detach",
          ref if entry.get("commit") else f"origin/{ref}"], f"checking out {ref}")
    return directory


SOURCE_KEYS = {"git": "the repository's URL", "commit": "a commit to pin", "ref": "a branch to follow"}


def pinned_sources(path: Path) -> dict[str, dict[str, str]]:
    """sources.yaml: repository -> {git, commit | ref}, or InputError naming the file and the entry."""
    from templates_src.app import bounded

    if not path.exists():
        return {}
    try:
        data = bounded.load_yaml(bounded.read_text(path, bounded.CONFIG_BYTES, "sources file"))
    except bounded.Refused as err:
        raise InputError(str(err)) from None
    except yaml.YAMLError as err:
        raise InputError(loading.yaml_problem(path, err)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path} must map each repository to its git URL and commit or ref")
    for repository, entry in data.items():
        if not isinstance(entry, dict):
            raise InputError(f"{path}: {repository} must be a mapping with git and commit or ref")
        for key, value in entry.items():
            if key not in SOURCE_KEYS:
                raise InputError(f"{path}: {repository}.{key} is not a key here (git, commit, ref)")
            # A value starting with "-" would reach git as an option.
            if not isinstance(value, str) or not value.strip() or value.startswith("-") or "\n" in value:
                raise InputError(f"{path}: {repository}.{key} must be {SOURCE_KEYS[key]}, a string not starting "
                                 "with '-'")
        if "git" not in entry:
            raise InputError(f"{path}: {repository} needs git, the repository's URL")
    return data


def tag_for(directories: dict[str, Path], build_args: dict[str, dict[str, str]], platform: str) -> str:
    """One tag for the set: a digest of each source's commit, each build argument's value and the
    target platform, so that an image inlining another URL, or built for other hosts, gets a new
    tag (a tag ECR holds is never built again); a source tree with local changes gets a time too."""
    sources, changed = {}, False
    for repository, directory in sorted(directories.items()):
        head = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode != 0:
            changed = True
            sources[repository] = {"path": str(directory.resolve())}
            continue
        sources[repository] = {"commit": head.stdout.strip()}
        status = subprocess.run(["git", "-C", str(directory), "status", "--porcelain"], capture_output=True, text=True)
        changed = changed or bool(status.stdout.strip())
    for repository in sources:
        sources[repository]["build_args"] = build_args.get(repository, {})
    everything = json.dumps({"platform": platform, "sources": sources}, sort_keys=True)
    tag = hashlib.sha256(everything.encode()).hexdigest()[:12]
    if changed:  # not a commit: the same digest could name different contents
        tag += datetime.datetime.now(datetime.timezone.utc).strftime("-local-%Y%m%d%H%M%S")
    return tag


def architecture(app: config.App, root: dict | None) -> str:
    chosen = stacks.parameters(root).get("InstanceType", app.cluster.instance_type)
    known = instance_types.TYPES.get(chosen) or instance_types.TYPES[app.cluster.instance_type]
    return known.architecture


def repository_uris(target: Target, repositories: tuple[str, ...]) -> dict[str, str]:
    """Each repository's URI, from the registry stack's outputs."""
    reg = stacks.describe(target, target.registry)
    if reg is None:
        raise LifecycleError(f"no registry stack {target.registry}: run make deploy STACK={target.stack} first")
    uris = stacks.outputs(reg)
    found = {}
    for repo in repositories:
        output = registry.repository_output(repo)
        if output not in uris:
            raise LifecycleError(f"{target.registry} has no output {output}: deploy the registry of this config first")
        found[repo] = uris[output]
    return found


@dataclass(frozen=True)
class Copying:
    copy: mirror.Copy
    uri: str  # of the repository the copy goes to

    @property
    def destination(self) -> str:
        return f"{self.uri}:{self.copy.tag}"


def copy_plan(target: Target, app: config.App) -> list[Copying]:
    """The Docker Hub images to copy, each with the repository it goes to."""
    copies = mirror.copies(app)
    uris = repository_uris(target, tuple(dict.fromkeys(c.repository for c in copies))) if copies else {}
    return [Copying(copy, uris[copy.repository]) for copy in copies]


def plan(target: Target, app: config.App) -> tuple[list[Image], str, str]:
    """What to build and push, its tag and platform, checked before anything runs."""
    if not app.repositories:
        return [], "", ""
    uris = repository_uris(target, app.repositories)
    root = stacks.describe(target, target.stack)
    root_outputs = stacks.outputs(root)
    platform = PLATFORMS[architecture(app, root)]
    images, directories, args = [], {}, {}
    for repo in app.repositories:
        directories[repo] = source(app, repo)
        args[repo] = build_args(app, repo, root_outputs, target.stack)
        images.append(Image(repo, uris[repo], directories[repo], args[repo]))
    return images, os.environ.get("IMAGE_TAG") or tag_for(directories, args, platform), platform


@functools.cache  # a success is remembered: deploy asks once, before it makes anything
def docker_ready() -> None:
    if shutil.which("docker") is None:
        raise LifecycleError("docker is not installed (no `docker` on PATH); nothing was built or pushed")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        detail = (info.stderr or info.stdout).strip().splitlines()
        raise LifecycleError("no Docker engine answers (`docker info` failed: "
                             f"{detail[-1] if detail else 'no output'}); nothing was built or pushed. Start Docker, or "
                             "push the images from a machine that has it and deploy with SKIP_IMAGES=1 IMAGE_TAG=<tag>")


def login(target: Target) -> None:
    data = target.client("ecr").get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    registry_host = data["proxyEndpoint"].removeprefix("https://")
    _run(["docker", "login", "--username", user, "--password-stdin", registry_host], "ECR login", stdin=password)


class Docker:
    """The docker client, checked and logged in to ECR once, when the first command needs it."""

    def __init__(self, target: Target):
        self.target = target
        self.ready = False

    def run(self, *arguments: str, what: str) -> None:
        if not self.ready:
            docker_ready()
            login(self.target)
            self.ready = True
        _run(["docker", *arguments], what)


def already_pushed(target: Target, uri: str, tag: str) -> bool:
    """Whether the repository already holds this tag (tags are immutable by default: never re-push)."""
    ecr = target.client("ecr")
    name = uri.split("/", 1)[1]
    try:
        return bool(ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])["imageDetails"])
    except ecr.exceptions.ImageNotFoundException:
        return False


def absent(target: Target, app: config.App, tag: str) -> list[str]:
    """The images the services would pull that ECR does not hold: the app's own under `tag`, and
    the copies of Docker Hub images (repository:tag each)."""
    wanted = [(uri, tag) for uri in repository_uris(target, app.repositories).values()] if app.repositories else []
    wanted += [(c.uri, c.copy.tag) for c in copy_plan(target, app)]
    return [f"{uri.split('/', 1)[1]}:{name}" for uri, name in wanted if not already_pushed(target, uri, name)]


def copy(target: Target, app: config.App, docker: Docker, planned: list[Copying] | None = None) -> None:
    """Copy every Docker Hub image the app runs into its ECR, unless the copy is there already."""
    planned = copy_plan(target, app) if planned is None else planned
    done = [c for c in planned if already_pushed(target, c.uri, c.copy.tag)]
    for c in done:
        print(f"images: {c.copy.source} already in ECR as {c.destination}, not copied again")
    platform = PLATFORMS[mirror.architecture(app)]  # the platform the copy's tag names
    for c in planned:
        if c in done:
            continue
        docker.run("pull", "--platform", platform, c.copy.source, what=f"pulling {c.copy.source} from Docker Hub")
        docker.run("tag", c.copy.local, c.destination, what=f"tagging {c.copy.source}")
        docker.run("push", c.destination, what=f"pushing the copy of {c.copy.source}")
        print(f"images: copied {c.copy.source} to {c.destination} ({platform})")


def build(target: Target, app: config.App, docker: Docker,
          planned: tuple[list[Image], str, str] | None = None) -> str:
    """Build every image not pushed yet, then push them all; returns the tag ("" when the app
    builds none)."""
    images, tag, platform = plan(target, app) if planned is None else planned
    if not images:
        return ""
    done = [image.repository for image in images if already_pushed(target, image.uri, tag)]
    if done:
        print(f"images: {', '.join(done)} already in ECR as {tag}, not built again")
    images = [image for image in images if image.repository not in done]
    for image in images:
        command = ["build", "--platform", platform, "--tag", f"{image.uri}:{tag}"]
        for key, value in sorted(image.build_args.items()):
            command += ["--build-arg", f"{key}={value}"]
        docker.run(*command, str(image.directory), what=f"building {image.repository} (nothing pushed yet)")
    pushed = []
    for image in images:
        try:
            docker.run("push", f"{image.uri}:{tag}", what=f"pushing {image.repository}")
        except LifecycleError as error:
            raise LifecycleError(f"{error}\n  pushed before the failure: {', '.join(pushed) or 'none'}; "
                                 "the services still run the previous tag; run make images again") from None
        pushed.append(image.repository)
    if pushed:
        print(f"images: pushed {', '.join(pushed)} as {tag} ({platform})")
    return tag


def push(target: Target, app: config.App) -> str:
    """make images: the copies, then the builds, all checked before anything runs; returns the tag."""
    copies, builds = copy_plan(target, app), plan(target, app)
    if not copies and not builds[0]:
        print("images: the app builds and copies no image")
        return ""
    docker = Docker(target)
    copy(target, app, docker, copies)
    return build(target, app, docker, builds)


def _run(command: list[str], what: str, stdin: str | None = None) -> None:
    print("+ " + " ".join(command), flush=True)  # the login password goes on stdin, never in the command
    done = subprocess.run(command, input=stdin, text=True)
    if done.returncode != 0:
        raise LifecycleError(f"{what} failed: `{' '.join(command[:3])} ...` exited {done.returncode}")
