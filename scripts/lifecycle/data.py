"""The data a delete keeps: the EFS file system, the KMS key that encrypts it, the app's secrets.

They are recognised only by what the deployment wrote on them, never by a name: the stack tag
make deploy writes (`ecs-app:stack=<stack>`, which CloudFormation copies onto them), the role tag
the templates write (`ecs-app:data=file-system`, `key` or `secret:<name in the config>`), and
CloudFormation's own `aws:cloudformation:stack-name`, which nobody else can write (the `aws:` prefix
is reserved) and which must name a nested stack of this deployment (`<stack>-<Name>Stack-<suffix>`).
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-resource-tags.html
A file system called `<stack>-data` that somebody else made carries none of that and is never
touched.

`find` lists what is kept in the region; `in_stack` what a live root stack uses (its resources and
its Data* parameters, which may name resources the stack did not make); `reattach` chooses what a
fresh deploy takes back; `delete` and `keep` end a cleanup.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from lifecycle import stacks
from lifecycle.aws import LifecycleError, Target, error_code
from templates_src import plan
from templates_src.stacks import kept, links, secrets
from templates_src.app.config import App
from templates_src.app.words import plural

FILE_SYSTEM, KEY, SECRET = "EFS file system", "KMS key", "secret"
MADE_BY = "aws:cloudformation:stack-name"
# Answers about a resource that is gone, or that this account may not look at (another account's,
# given by hand): either way nothing here can prove it is this deployment's.
UNSEEN = {"NotFoundException", "FileSystemNotFound", "ResourceNotFoundException", "AccessDeniedException",
          "AccessDenied"}


@dataclass(frozen=True)
class Item:
    """One kept resource, as its service describes it now."""

    kind: str  # FILE_SYSTEM, KEY or SECRET
    id: str  # fs-..., the key's ID, the secret's ARN
    arn: str
    tags: dict[str, str] = field(hash=False, compare=False)
    state: str = ""  # LifeCycleState, KeyState; "PendingDeletion" for a secret scheduled for deletion
    key: str = ""  # the ID of the key that encrypts it (file system, secret)
    size: int = 0  # bytes stored (file system)

    @property
    def role(self) -> str:
        return self.tags.get(kept.ROLE_TAG, "")

    @property
    def name(self) -> str:
        """A secret's name in the config (its role tag), else the resource's ID."""
        if self.kind == SECRET and self.role.startswith(kept.SECRET):
            return self.role.removeprefix(kept.SECRET)
        return self.id

    def owned_by(self, stack: str) -> bool:
        return (self.tags.get(kept.STACK_TAG) == stack and bool(self.role)
                and re.fullmatch(rf"{re.escape(stack)}-[A-Za-z0-9]+Stack-[A-Za-z0-9]+", self.tags.get(MADE_BY, ""))
                is not None)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" + (f" ({self.id})" if self.name != self.id else "")


def key_id(reference: str) -> str:
    """A key's ID from its ARN or ID (services report either)."""
    return reference.rsplit("key/", 1)[-1] if reference else ""


# --- describing them ---------------------------------------------------------------------------------

def _tags(pairs: list[dict] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {pair[key]: pair[value] for pair in pairs or []}


def _file_system(found: dict) -> Item:
    return Item(FILE_SYSTEM, found["FileSystemId"], found.get("FileSystemArn", ""), _tags(found.get("Tags")),
                found.get("LifeCycleState", ""), key_id(found.get("KmsKeyId", "")),
                int(found.get("SizeInBytes", {}).get("Value", 0)))


def _secret(found: dict) -> Item:
    return Item(SECRET, found["ARN"], found["ARN"], _tags(found.get("Tags")),
                "PendingDeletion" if found.get("DeletedDate") else "", key_id(found.get("KmsKeyId", "")))


def file_systems(target: Target, ids: list[str] | None = None) -> list[Item]:
    """Every file system in the region (or those named), deleted ones left out."""
    efs = target.client("efs")
    found = []
    for wanted in ids if ids is not None else [None]:
        try:
            pages = efs.get_paginator("describe_file_systems").paginate(
                **({"FileSystemId": wanted} if wanted else {}))
            found += [_file_system(system) for page in pages for system in page["FileSystems"]]
        except ClientError as error:
            if error_code(error) not in UNSEEN:
                raise
    return [item for item in found if item.state != "deleted"]


def tagged_secrets(target: Target, arns: list[str] | None = None) -> list[Item]:
    """Secrets with a role tag (those scheduled for deletion too), or those named."""
    sm = target.client("secretsmanager")
    if arns is None:
        pages = sm.get_paginator("list_secrets").paginate(
            IncludePlannedDeletion=True, Filters=[{"Key": "tag-key", "Values": [kept.ROLE_TAG]}])
        return [_secret(secret) for page in pages for secret in page["SecretList"]]
    found = []
    for arn in arns:
        try:
            found.append(_secret(sm.describe_secret(SecretId=arn)))
        except ClientError as error:
            if error_code(error) not in UNSEEN:
                raise
    return found


def keys(target: Target, ids: set[str]) -> list[Item]:
    kms = target.client("kms")
    found = []
    for key in sorted(ids):
        try:
            meta = kms.describe_key(KeyId=key)["KeyMetadata"]
            tags = [tag for page in kms.get_paginator("list_resource_tags").paginate(KeyId=key)
                    for tag in page["Tags"]]
        except ClientError as error:
            if error_code(error) in UNSEEN:
                continue
            raise
        found.append(Item(KEY, meta["KeyId"], meta["Arn"], _tags(tags, "TagKey", "TagValue"), meta["KeyState"]))
    return found


def tagged_keys(target: Target) -> set[str]:
    """IDs of the keys carrying this deployment's tags (the Resource Groups Tagging API finds them
    without a call per key in the account)."""
    tagging = target.client("resourcegroupstaggingapi")
    pages = tagging.get_paginator("get_resources").paginate(
        ResourceTypeFilters=["kms:key"],
        TagFilters=[{"Key": kept.STACK_TAG, "Values": [target.stack]}, {"Key": kept.ROLE_TAG, "Values": [kept.KEY]}])
    return {key_id(item["ResourceARN"]) for page in pages for item in page["ResourceTagMappingList"]}


def find(target: Target) -> list[Item]:
    """Everything of this deployment's data in the region, as it is now."""
    found = [item for item in file_systems(target) + tagged_secrets(target) if item.owned_by(target.stack)]
    needed = {item.key for item in found if item.key}
    # A key pending deletion that encrypts nothing kept is as deleted as KMS lets it be: not data any more.
    return found + [item for item in keys(target, tagged_keys(target) | needed) if item.owned_by(target.stack)
                    and (item.id in needed or item.state != "PendingDeletion")]


def in_stack(target: Target) -> tuple[list[Item], list[str]]:
    """What the live root stack uses: the data it made, and what its Data* parameters name; with a
    line for each given resource that does not carry this deployment's tags (never touched)."""
    root = stacks.describe(target, target.stack)
    if root is None:
        return [], []
    made = {kind: [r.get("PhysicalResourceId", "") for r in stacks.resources(target, root["StackId"])
                   if r["ResourceType"] == kind and r.get("PhysicalResourceId")]
            for kind in ("AWS::EFS::FileSystem", "AWS::KMS::Key", "AWS::SecretsManager::Secret")}
    given = stacks.parameters(root)
    named = {FILE_SYSTEM: [v for v in [given.get(links.DATA_FILE_SYSTEM_ID.name, "")] if v],
             KEY: [key_id(v) for v in [given.get(links.DATA_KEY_ARN.name, "")] if v],
             SECRET: [v for v in given.get(links.DATA_SECRET_ARNS.name, "").split(",") if v]}
    found = describe(target, made["AWS::EFS::FileSystem"] + named[FILE_SYSTEM],
                     made["AWS::SecretsManager::Secret"] + named[SECRET], made["AWS::KMS::Key"] + named[KEY])
    ours = [item for item in found if item.owned_by(target.stack)]
    # What the stack made without a role tag (an app that keeps no data) goes with the stack.
    strangers = [f"data: {item} was given to {target.stack} but does not carry its tags: not ours, left alone"
                 for item in found if not item.owned_by(target.stack) and item.id in sum(named.values(), [])]
    return ours, strangers


def describe(target: Target, systems: list[str], secret_arns: list[str], key_ids: list[str]) -> list[Item]:
    """The named resources as they are now (those that are gone left out)."""
    return file_systems(target, systems) + tagged_secrets(target, secret_arns) + keys(target, set(key_ids))


def again(target: Target, items: list[Item]) -> list[Item]:
    """The same resources, described again, that are still there and still this deployment's."""
    found = describe(target, [i.id for i in items if i.kind == FILE_SYSTEM], [i.id for i in items if i.kind == SECRET],
                     [i.id for i in items if i.kind == KEY])
    return [item for item in found if item.owned_by(target.stack)]


def merge(*groups: list[Item]) -> list[Item]:
    """One item per resource, the latest description winning."""
    by_id: dict[tuple[str, str], Item] = {}
    for group in groups:
        for item in group:
            by_id[(item.kind, item.id)] = item
    return sorted(by_id.values(), key=lambda item: ([FILE_SYSTEM, SECRET, KEY].index(item.kind), item.name))


# --- a fresh deploy takes them back ------------------------------------------------------------------

def reattach(target: Target, app: App, given: dict[str, str]) -> dict[str, str]:
    """The Data* parameters for the data an earlier deployment of this stack kept, for a deploy that
    creates the root; recovers a kept key or secret scheduled for deletion. Parameters in `given`
    (PARAMS) win. Refuses, with one sentence, a set that would not come back whole."""
    if not kept.keeps(app):
        return {}
    open_ = {links.DATA_FILE_SYSTEM_ID.name, links.DATA_KEY_ARN.name} - set(given)
    if app.secrets and links.DATA_SECRET_ARNS.name not in given:
        open_.add(links.DATA_SECRET_ARNS.name)
    if not open_:
        return {}
    found = find(target)
    stack = target.stack
    system = _one_file_system(stack, found) if links.DATA_FILE_SYSTEM_ID.name in open_ else None
    chosen = _secrets(stack, app, found, system) if links.DATA_SECRET_ARNS.name in open_ else []
    key = _key(stack, found, [system, *chosen] if system else chosen) if links.DATA_KEY_ARN.name in open_ else None
    unused = [item for item in found if item.kind == KEY and item.state in ("Enabled", "Disabled")
              and item != key]
    for item in unused:
        print(f"data: {item} kept from an earlier deployment encrypts no data taken back: not used "
              f"(make cleanup STACK={stack} deletes it)")
    extra = [item for item in found if item.kind == SECRET and item.name not in app.secrets]
    for item in extra:
        print(f"data: {item} kept from an earlier deployment is not in the config: not used "
              f"(make cleanup STACK={stack} deletes it)")

    _recover(target, key, chosen)
    parameters = {}
    if system:
        parameters[links.DATA_FILE_SYSTEM_ID.name] = system.id
    if key:
        parameters[links.DATA_KEY_ARN.name] = key.arn
    if chosen:
        parameters[links.DATA_SECRET_ARNS.name] = ",".join(item.id for item in chosen)
    if parameters:
        what = ([f"EFS {system.id}"] if system else []) + ([f"key {key.id}"] if key else []) \
            + ([plural(len(chosen), "secret")] if chosen else [])
        print(f"data: reattaching {', '.join(what)} kept from an earlier deployment"
              + ("" if system or links.DATA_FILE_SYSTEM_ID.name in given else " (no file system kept: a new one)"))
    else:
        print("data: nothing kept from an earlier deployment; new file system, key and secrets")
    return parameters


def _one_file_system(stack: str, found: list[Item]) -> Item | None:
    systems = [item for item in found if item.kind == FILE_SYSTEM and item.state in ("available", "updating")]
    if len(systems) > 1:
        raise LifecycleError(f"{len(systems)} EFS file systems are kept from earlier deployments of {stack} "
                             f"({', '.join(item.id for item in systems)}); choose one with "
                             f"PARAMS=\"DataFileSystemId=fs-...\" and delete the others by hand")
    return systems[0] if systems else None


def _secrets(stack: str, app: App, found: list[Item], system: Item | None) -> list[Item]:
    by_name: dict[str, list[Item]] = {}
    for item in found:
        if item.kind == SECRET and item.role.startswith(kept.SECRET):
            by_name.setdefault(item.name, []).append(item)
    twice = sorted(name for name, items in by_name.items() if len(items) > 1 and name in app.secrets)
    if twice:
        raise LifecycleError(f"secret {twice[0]} is kept more than once from earlier deployments of {stack} "
                             f"({', '.join(item.id for item in by_name[twice[0]])}); choose with "
                             f"PARAMS=\"DataSecretArns=...\"")
    present = [name for name in app.secrets if name in by_name]
    absent = [name for name in app.secrets if name not in by_name]
    if present and absent:
        raise LifecycleError(f"the secrets kept from an earlier deployment of {stack} cover {', '.join(present)} "
                             f"but not {', '.join(absent)}; the data was written with the kept ones, so give "
                             f"them all in PARAMS=\"DataSecretArns=...\" or delete the kept data with make cleanup")
    if absent and system:
        raise LifecycleError(f"EFS {system.id} is kept from an earlier deployment of {stack} but the secrets its "
                             f"data was written with ({', '.join(absent)}) are not; give them in "
                             f"PARAMS=\"DataSecretArns=...\", or start empty with PARAMS=\"DataFileSystemId=\"")
    return [by_name[name][0] for name in present]


def _key(stack: str, found: list[Item], data: list[Item]) -> Item | None:
    """The key the data taken back is encrypted with; it must be this deployment's and usable."""
    if not data:
        return None
    ids = sorted({item.key for item in data})
    if len(ids) != 1 or not ids[0]:
        raise LifecycleError(f"the data kept from an earlier deployment of {stack} is not encrypted with one key "
                             f"({', '.join(f'{item}: {item.key or None}' for item in data)}); give "
                             f"DataKeyArn in PARAMS")
    key = next((item for item in found if item.kind == KEY and item.id == ids[0]), None)
    if key is None:
        raise LifecycleError(f"the data kept from an earlier deployment of {stack} is encrypted with KMS key "
                             f"{ids[0]}, which is gone or not tagged as {stack}'s: it cannot be read again; "
                             f"delete it with make cleanup STACK={stack}")
    if key.state not in ("Enabled", "Disabled", "PendingDeletion"):
        raise LifecycleError(f"KMS key {key.id}, which encrypts the data kept from an earlier deployment of "
                             f"{stack}, is {key.state}: it cannot be used")
    return key


def _recover(target: Target, key: Item | None, chosen: list[Item]) -> None:
    """A kept key or secret scheduled for deletion is brought back rather than refused: it is this
    deployment's (its tags say so), the deploy asks for its data, and once the window ends the data
    could never be read again. CancelKeyDeletion leaves the key Disabled; EnableKey makes it usable.
    https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys-cancelling-key-deletion.html
    https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RestoreSecret.html
    """
    kms = target.client("kms")
    if key and key.state == "PendingDeletion":
        kms.cancel_key_deletion(KeyId=key.id)
        print(f"data: {key} was scheduled for deletion; deletion cancelled (it encrypts the data taken back)")
    if key and key.state in ("PendingDeletion", "Disabled"):
        kms.enable_key(KeyId=key.id)
        print(f"data: {key} enabled again")
    for item in chosen:
        if item.state == "PendingDeletion":
            target.client("secretsmanager").restore_secret(SecretId=item.id)
            print(f"data: {item} was scheduled for deletion; restored")


# --- cleanup -----------------------------------------------------------------------------------------

def summary(items: list[Item], keep_data: bool) -> str:
    """What happens to the data, for the prompt and the first line of cleanup; empty when there is
    none (an app without data, a stack never deployed): nothing to warn about."""
    if not items:
        return ""
    parts = [str(item) for item in items if item.kind != SECRET]
    count = sum(item.kind == SECRET for item in items)
    parts += [plural(count, "secret")] if count else []
    if keep_data:
        return f"the data is kept (KEEP_DATA=1): {', '.join(parts)}"
    return f"THE DATA IS DELETED TOO: {', '.join(parts)} (KEEP_DATA=1 keeps them)"


def delete(target: Target, items: list[Item]) -> None:
    """File system, then secrets (no recovery window), then the key they were encrypted with, at
    the shortest window KMS allows: a cleanup stopped midway never leaves data without its key."""
    for item in items:
        if item.kind == FILE_SYSTEM:
            if item.state == "deleting":
                print(f"data: {item} is being deleted already")
                continue
            target.client("efs").delete_file_system(FileSystemId=item.id)
            print(f"data: {item} deleted")
    for item in items:
        if item.kind == SECRET:
            # https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html
            target.client("secretsmanager").delete_secret(SecretId=item.id, ForceDeleteWithoutRecovery=True)
            print(f"data: {item} deleted (no recovery window)")
    for item in items:
        if item.kind == KEY:
            if item.state == "PendingDeletion":
                print(f"data: {item} is scheduled for deletion already")
                continue
            # https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html
            target.client("kms").schedule_key_deletion(KeyId=item.id, PendingWindowInDays=secrets.PENDING_WINDOW_DAYS)
            print(f"data: {item} scheduled for deletion in {secrets.PENDING_WINDOW_DAYS} days, the shortest "
                  "window KMS allows")


def keep(target: Target, items: list[Item]) -> None:
    """Say what is kept, its IDs, and what it costs a month (templates_src/plan/prices.json)."""
    prices = plan.load_prices()
    region = target.region

    def price(item: str) -> float | None:
        return prices["items"][item]["prices"].get(region)

    monthly, per_gb = 0.0, price("efs_standard")
    for item in items:
        if item.kind == FILE_SYSTEM:
            cost = "price unknown here" if per_gb is None else f"${per_gb:.2f} per GB-month"
            print(f"data: {item} kept (KEEP_DATA=1): {item.size / 1e9:.2f} GB stored, {cost}")
            monthly += (per_gb or 0) * item.size / 1e9
            continue
        unit = price("kms_key" if item.kind == KEY else "secret")
        monthly += unit or 0
        cost = "price unknown here" if unit is None else f"${unit:.2f} a month"
        print(f"data: {item} kept (KEEP_DATA=1): {cost}")
    if items:
        print(f"data: the kept data costs about ${monthly:.2f} a month in {region} (prices of {prices['as_of']}), "
              f"more as the file system grows; make deploy STACK={target.stack} takes it back, "
              f"make cleanup STACK={target.stack} deletes it")


def accounts_for(items: list[Item], arn: str) -> bool:
    """Whether a tagged ARN the leftovers check found is one of these (kept, or being deleted)."""
    return any(arn == item.arn or arn.endswith(f"/{item.id}") for item in items)

