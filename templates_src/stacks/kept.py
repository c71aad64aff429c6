"""The data a delete keeps, and the root parameters that give it back to a later deployment.

When the app keeps data on EFS (`App.stored_services`), three things must outlive the stacks
together: the file system, the KMS key that encrypts it (a file system whose key is gone can never
be read again), and the generated secrets whose values the data was written with (postgres's
users). Each is kept by a stack delete (DeletionPolicy RetainExceptOnCreate: a first create that
rolls back holds no data and leaves nothing) and carries a tag naming its role; the deployment's
stack tag (`ecs-app:stack=<stack>`, written by `make deploy` and propagated by CloudFormation) says
whose it is. `make deploy` finds them by those tags and `make cleanup` deletes them (or keeps them
with KEEP_DATA=1); neither ever goes by a name.

Root parameters name kept resources to use instead of making new ones; empty (the default) makes
new ones. Each stack that makes one of them declares a condition on its parameter, and publishes
one value, the new resource's or the kept one's, through the usual wiring (links.py), so every
consumer (IAM policies, task definitions, mount targets) follows whichever is used. An app
without data on EFS keeps none of this: its key and secrets go with the stack, as before.
"""
from __future__ import annotations

from troposphere import Equals, Not, Ref, Tags

from templates_src.stacks import links
from templates_src.app.config import App
from templates_src.stacks.wiring import AnyLink, Stack

# The stack tag make deploy writes (CloudFormation copies it onto the resources), and the role tag
# the templates write on each kept resource.
STACK_TAG = "ecs-app:stack"
ROLE_TAG = "ecs-app:data"
FILE_SYSTEM = "file-system"
KEY = "key"
SECRET = "secret:"  # + the secret's name in the config, so a later deploy matches it without a name

# Conditions: true when the parameter is empty and the stack makes a new one.
NEW_KEY = "NewKey"
NEW_SECRETS = "NewSecrets"
NEW_FILE_SYSTEM = "NewFileSystem"

FILE_SYSTEM_PATTERN = r"^(fs-[0-9a-f]{8,40})?$"
KEY_PATTERN = r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(mrk-)?[0-9a-f-]{32,36})?$"
SECRET_ARN = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"


def keeps(app: App) -> bool:
    """Whether a delete keeps the data (and so the key and the secrets that go with it)."""
    return bool(app.stored_services)


def secret_role(name: str) -> str:
    return SECRET + name


# A kept resource is kept by a delete or a replacement, and deleted only when the create that made it
# rolls back (it holds nothing yet).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html
RETAIN = {"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"}


def role_tags(role: str, **more: object) -> Tags:
    return Tags({ROLE_TAG: role, **more})


def reuse(stack: Stack, link: AnyLink, condition: str) -> Ref:
    """Ask for a kept resource's identifier; `condition` holds when none is given (make a new one)."""
    given = stack.use(link)
    stack.template.add_condition(condition, Equals(given, ""))
    return given


def root_parameters(app: App) -> dict[str, tuple[AnyLink, dict]]:
    """The root's parameters naming kept resources (main.py declares those a child asks for)."""
    count = len(app.secrets)
    secrets = f"^({SECRET_ARN}(,{SECRET_ARN}){{{count - 1}}})?$" if count else "^$"
    return {link.name: (link, props) for link, props in [
        (links.DATA_FILE_SYSTEM_ID, dict(Default="", AllowedPattern=FILE_SYSTEM_PATTERN,
                                         ConstraintDescription="an EFS file system ID (fs-...), or empty")),
        (links.DATA_KEY_ARN, dict(Default="", AllowedPattern=KEY_PATTERN,
                                  ConstraintDescription="a KMS key ARN, or empty")),
        (links.DATA_SECRET_ARNS, dict(Default="", AllowedPattern=secrets,
                                      ConstraintDescription=f"{count} Secrets Manager secret ARNs separated by "
                                                            "commas, in the order of the config's secrets, or empty")),
    ]}


def add_rules(root: Stack) -> None:
    """Kept data only comes back whole: a file system without its key, or with new passwords, is
    unreadable to the app; CloudFormation refuses such a set of parameters before anything changes.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html
    """
    given = {name: Not(Equals(Ref(name), "")) for name in root.inputs if name in root_parameters(root.app)}
    if links.DATA_KEY_ARN.name not in given:
        return
    key = (given[links.DATA_KEY_ARN.name],
           "kept data comes back with the KMS key that encrypts it: give DataKeyArn too")
    if links.DATA_FILE_SYSTEM_ID.name in given:
        needs = [key]
        if links.DATA_SECRET_ARNS.name in given:
            needs.append((given[links.DATA_SECRET_ARNS.name],
                          "the kept data was written with the kept secrets' values: give DataSecretArns too"))
        root.add_rule("KeptFileSystemComesWithItsKeyAndSecrets", needs, when=given[links.DATA_FILE_SYSTEM_ID.name])
    if links.DATA_SECRET_ARNS.name in given:
        root.add_rule("KeptSecretsComeWithTheirKey", [key], when=given[links.DATA_SECRET_ARNS.name])
