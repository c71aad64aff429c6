"""make deploy: from an app config to a running app.

1. Render the config's templates (the same text `make templates` writes), and check the root
   parameters it will pass against the root template's Rules (lifecycle/rules.py): a combination
   CloudFormation would refuse stops here, before anything is made.
2. Refuse a root or registry stack of these names that does not carry the deployment's tag (it is
   somebody else's). Ensure the templates bucket, in this account only (lifecycle/bucket.py):
   created when missing (encrypted, versioned, TLS only, public access blocked, tagged). Take the
   stack's deploy lock there: a second deploy of the stack meanwhile refuses.
3. Upload the templates under `<stack>/<digest of their contents>/`, recording each key and
   version in the manifest cleanup deletes by: a deploy never changes the templates a running
   stack was made from, and an unchanged build uploads nothing.
4. Create or update the registry stack (the ECR repositories).
5. Copy the Docker Hub images into ECR, then build and push the app's images (unless
   SKIP_IMAGES=1). The copies need no URL, so they are made before the root changes. An image
   that inlines a deployed URL needs the root stack's outputs as this deploy leaves them: on the
   first deploy, the root is created with ServicesRunning=false (services with no tasks) to get
   them; later, the root is first updated with everything but the new image tag, so a URL this
   deploy changes (a certificate turns http into https) is the one built in.
6. Create or update the root stack with ServicesRunning=true and the image tag.
Each stack step is a change set; "no changes" is success. Parameters not given keep the value the
stack has (as `aws cloudformation deploy` does), else the template's default. A deploy that creates
the root first takes back the data an earlier deployment of the same stack kept (file system, key,
secrets; found by their tags, see data.py) through the Data* parameters, which the root then
keeps; PARAMS win.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lifecycle import bucket as templates_bucket
from lifecycle import approval, data, hosts, images, preflight, rules, stacks, templates
from lifecycle.aws import InputError, Target
from templates_src import render
from templates_src.app import config, loading
from templates_src.stacks import links, main

ROOT = Path(__file__).resolve().parents[2]


def rendered(config_path: Path) -> tuple[config.App, dict[str, str]]:
    app = loading.load(config_path)
    try:
        shown = str(config_path.resolve().relative_to(ROOT))
    except ValueError:
        shown = config_path.name
    return app, render.render(app, shown)


def prefix(target: Target, files: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return f"{target.stack}/{digest.hexdigest()[:16]}/"


def url(target: Target, bucket: str, key: str) -> str:
    suffix = "amazonaws.com.cn" if target.region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{target.region}.{suffix}/{key}"


def keep(previous: dict | None, given: dict[str, str], declared: set[str]) -> dict[str, str]:
    """Parameters for a change set: what is given, else what the stack had (declared ones only).
    A stack whose first create failed is replaced, not updated: its values are not kept."""
    if previous and previous["StackStatus"] == "ROLLBACK_COMPLETE":
        previous = None
    values = {k: v for k, v in stacks.parameters(previous).items() if k in declared}
    values.update(given)
    return values


@dataclass
class Staged:
    """A rendered build in its bucket: what a change set of either stack points at."""

    app: config.App
    files: dict[str, str]
    bucket: str
    prefix: str
    declared: dict[str, set[str]]  # template -> its parameter names (main.yaml, registry.yaml)

    def url(self, target: Target, file: str) -> str:
        return url(target, self.bucket, self.prefix + file)

    def default(self, parameter: str) -> str:
        return str(templates.parse(self.files["main.yaml"])["Parameters"][parameter].get("Default", ""))

    def registry_parameters(self, target: Target) -> dict[str, str]:
        return keep(stacks.describe(target, target.registry), {links.ENVIRONMENT_NAME.name: target.stack},
                    self.declared["registry.yaml"])

    def root_parameters(self, target: Target, root: dict | None, given: dict[str, str]) -> dict[str, str]:
        return keep(root, {main.BUCKET: self.bucket, main.PREFIX: self.prefix,
                           links.ENVIRONMENT_NAME.name: target.stack, links.SERVICES_RUNNING.name: "true", **given},
                    self.declared["main.yaml"])


def nested_templates(files: dict[str, str]) -> dict[str, str]:
    """Nested stack logical ID in main.yaml -> the rendered file its TemplateURL names."""
    found = {}
    for logical, resource in (templates.parse(files["main.yaml"]).get("Resources") or {}).items():
        if resource.get("Type") == "AWS::CloudFormation::Stack":
            url = str(resource.get("Properties", {}).get("TemplateURL"))
            found.update({logical: name for name in files if name != "main.yaml" and name in url})
    return found


def prepare(target: Target, config_path: Path, bucket: str | None, overrides: dict[str, str]) -> Staged:
    """Render and check the overrides and the root's Rules; nothing is made."""
    app, files = rendered(config_path)
    parsed = {name: templates.parse(text) for name, text in files.items() if name in ("main.yaml", "registry.yaml")}
    declared = {name: set(template.get("Parameters") or {}) for name, template in parsed.items()}
    unknown = set(overrides) - declared["main.yaml"]
    if unknown:
        raise InputError(f"PARAMS names no parameter of main.yaml: {', '.join(sorted(unknown))} "
                         f"(it has {', '.join(sorted(declared['main.yaml']))})")
    staged = Staged(app, files, bucket or target.default_bucket(), prefix(target, files), declared)
    values = staged.root_parameters(target, stacks.describe(target, target.stack), overrides)
    refused = preflight.constraints(parsed["main.yaml"], values) or rules.refusal(parsed["main.yaml"], values)
    if refused:
        raise InputError(f"PARAMS: {refused}")
    return staged


@contextlib.contextmanager
def stage(target: Target, config_path: Path, bucket: str | None, overrides: dict[str, str],
          building: bool = False) -> Iterator[Staged]:
    """Render, check the overrides against the root's parameter constraints and Rules, that the
    stacks of these names are this deployment's and, when images will be built (`building`), that
    Docker and the sources are there; then ensure the bucket, hold the stack's deploy lock for the
    block, and upload what deploy has not uploaded yet."""
    staged = prepare(target, config_path, bucket, overrides)
    files = staged.files
    stacks.refuse_strangers(target)
    if building:
        preflight.images(staged.app, first=not (stacks.describe(target, target.registry) and stacks.describe(
            target, target.stack)))
    templates_bucket.ensure(target, staged.bucket)
    with templates_bucket.lock(target, staged.bucket):
        # Checked again under the lock: a deploy that ended while this one waited may have made them.
        stacks.refuse_strangers(target)
        put = templates_bucket.upload(target, staged.bucket, staged.prefix, files)
        there = len(files) - put
        print(f"templates: s3://{staged.bucket}/{staged.prefix} ({put} of {len(files)} uploaded"
              + (f", {there} already there)" if there else ")"))
        yield staged


def run(target: Target, config_path: Path, bucket: str | None, skip_images: bool,
        image_tag: str | None, overrides: dict[str, str], yes: bool = True, rollout=None) -> dict[str, str] | None:
    """The whole deploy, one at a time per stack (the lock in the templates bucket); returns the
    root stack's outputs, or None when a change set was not approved (approval.py; yes: never ask).
    `rollout` (rollouts.py): the services' ECS deployments, shown while the root's last update runs."""
    with stage(target, config_path, bucket, overrides, building=not skip_images) as staged:
        review = approval.Approval(yes, approval.nested_types(staged.files))
        try:
            return _run(target, staged, skip_images, image_tag, overrides, review, rollout)
        except stacks.Declined as declined:
            print(review.declined(declined.name, declined.kind))
            return None


def _never_ran(root: dict | None) -> bool:
    """A root still to be created, or one that has never run a task (ServicesRunning=false)."""
    return (root is None or root["StackStatus"] in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS")
            or stacks.parameters(root).get(links.SERVICES_RUNNING.name) == "false")


def _run(target: Target, staged: Staged, skip_images: bool, image_tag: str | None,
         overrides: dict[str, str], review: approval.Approval, rollout=None) -> dict[str, str]:
    app = staged.app
    root = stacks.describe(target, target.stack)
    given = dict(overrides)
    if root is None or root["StackStatus"] in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):  # no root to update
        given.update(data.reattach(target, app, given))
    if "registry.yaml" in staged.files:
        stacks.apply(target, target.registry, staged.url(target, "registry.yaml"), staged.registry_parameters(target),
                     review)

    if image_tag:
        given[links.IMAGE_TAG.name] = image_tag
    if skip_images and links.SERVICES_RUNNING.name not in given and _never_ran(root):
        absent = images.absent(target, app, given.get(links.IMAGE_TAG.name) or stacks.parameters(root).get(
            links.IMAGE_TAG.name) or staged.default(links.IMAGE_TAG.name))
        if absent:
            print(f"{target.stack}: SKIP_IMAGES=1 and ECR holds no {', '.join(absent)}: creating the services with no "
                  "tasks (ServicesRunning=false) rather than tasks that cannot pull; push the images (make images), "
                  "then deploy again to start them")
            given[links.SERVICES_RUNNING.name] = "false"
    root_url = staged.url(target, "main.yaml")
    if not skip_images:
        docker = images.Docker(target)
        images.copy(target, app, docker)
        review.executed.append("the Docker Hub images copied into ECR")
        inlined = images.needed_outputs(app)
        if inlined - set(stacks.outputs(root)):
            print(f"{target.stack}: first deploy; creating it with ServicesRunning=false to learn its URLs, "
                  "which the images inline")
            stacks.apply(target, target.stack, root_url, staged.root_parameters(
                target, root, {**given, links.SERVICES_RUNNING.name: "false"}), review)
            root = stacks.describe(target, target.stack)
        elif inlined:
            print(f"{target.stack}: updating it first with its current image tag, so the images inline the URLs "
                  "this deploy gives it")
            # Tasks keep running what they run (a root a failed first deploy left with no tasks keeps none).
            current = {**{k: v for k, v in given.items() if k != links.IMAGE_TAG.name},
                       links.SERVICES_RUNNING.name: stacks.parameters(root).get(links.SERVICES_RUNNING.name, "true")}
            stacks.apply(target, target.stack, root_url, staged.root_parameters(target, root, current), review)
            root = stacks.describe(target, target.stack)
        tag = images.build(target, app, docker)
        if tag:
            given[links.IMAGE_TAG.name] = tag
    applied = stacks.apply(target, target.stack, root_url, staged.root_parameters(target, root, given), review,
                           beside=rollout)
    note = hosts.refresh(target)
    if note:
        print(note)
    return stacks.outputs(applied)
