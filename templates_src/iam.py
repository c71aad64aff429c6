"""iam.yaml: the hosts' role and instance profile, the task execution role, one role per service.

Policies are awacs objects only. The execution role may pull only this app's repositories, write
only this app's log groups and read only this app's secrets; task roles carry no permission, as
no DKS container calls AWS.
"""
from __future__ import annotations

from awacs import ecr, elasticfilesystem, kms, logs, secretsmanager, sts
from awacs.aws import Allow, ArnLike, Bool, Condition, PolicyDocument, Principal, Statement, StringEquals
from troposphere import GetAtt, Ref, Sub
from troposphere.iam import InstanceProfile, Policy, Role

from templates_src import links, names, registry
from templates_src.config import App, logical_id
from templates_src.wiring import Stack

MANAGED_HOST_POLICIES = ("service-role/AmazonEC2ContainerServiceforEC2Role", "AmazonSSMManagedInstanceCore")


def build(app: App) -> Stack:
    stack = Stack("iam", app, f"{app.name}: IAM roles of the ECS hosts, the task execution role, one role per service")
    stack.use(links.ENVIRONMENT_NAME)
    _host_role(stack)
    _execution_role(stack)
    _task_roles(stack)
    return stack


def trust(service: str, *conditions) -> PolicyDocument:
    """Trust policy letting one AWS service assume the role."""
    return PolicyDocument(Version="2012-10-17", Statement=[Statement(
        Effect=Allow, Principal=Principal("Service", service), Action=[sts.AssumeRole],
        **({"Condition": Condition(list(conditions))} if conditions else {}),
    )])


def ecs_tasks_trust() -> PolicyDocument:
    # Only ECS tasks of this account and region may assume it (the confused-deputy guard the ECS
    # guide documents for task roles).
    return trust("ecs-tasks.amazonaws.com",
                 StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
                 ArnLike("aws:SourceArn", Sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*")))


def _host_role(stack: Stack) -> None:
    role = stack.add(Role(
        "HostRole", RoleName=names.host_role().sub(), AssumeRolePolicyDocument=trust("ec2.amazonaws.com"),
        ManagedPolicyArns=[Sub(f"arn:${{AWS::Partition}}:iam::aws:policy/{p}") for p in MANAGED_HOST_POLICIES],
    ))
    profile = stack.add(InstanceProfile("HostInstanceProfile", Roles=[Ref(role)]))
    stack.publish(links.INSTANCE_PROFILE_ARN, GetAtt(profile, "Arn"))


def _mount_policy(stack: Stack) -> Policy:
    """The task may mount and write the app's file system, and only through a mount target (EFS
    checks the task role because the task definition asks for IAM authorization)."""
    return Policy(PolicyName="data", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
        Sid="MountOwnData", Effect=Allow, Action=[elasticfilesystem.ClientMount, elasticfilesystem.ClientWrite],
        Resource=[stack.use(links.FILE_SYSTEM_ARN)],
        Condition=Condition(Bool("elasticfilesystem:AccessedViaMountTarget", "true")),
    )]))


def _execution_role(stack: Stack) -> None:
    app = stack.app
    statements = [Statement(
        Sid="WriteOwnLogs", Effect=Allow, Action=[logs.CreateLogStream, logs.PutLogEvents],
        Resource=[Sub(f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{names.LOG_GROUP_PREFIX}*")],
    )]
    if registry.repositories(app):  # its own images and the copies of Docker Hub ones, all under the prefix
        statements += [
            # The registry token is account-wide by design: this action takes no resource.
            Statement(Sid="RegistryLogin", Effect=Allow, Action=[ecr.GetAuthorizationToken], Resource=["*"]),
            Statement(Sid="PullOwnImages", Effect=Allow,
                      Action=[ecr.BatchCheckLayerAvailability, ecr.GetDownloadUrlForLayer, ecr.BatchGetImage],
                      Resource=[Sub(f"arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:${{AWS::AccountId}}:repository/"
                                    f"{names.REPOSITORY_PREFIX}*")]),
        ]
    if app.secrets:
        statements += [
            Statement(Sid="ReadOwnSecrets", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                      Resource=stack.use(links.SECRET_ARNS)),
            # The secrets are encrypted with the app's key: decrypting is allowed only through Secrets Manager.
            Statement(Sid="DecryptOwnSecrets", Effect=Allow, Action=[kms.Decrypt], Resource=[stack.use(links.KEY_ARN)],
                      Condition=Condition(StringEquals(
                          "kms:ViaService", Sub("secretsmanager.${AWS::Region}.${AWS::URLSuffix}")))),
        ]
    role = stack.add(Role(
        # Plain trust, as the ECS guide gives it: the agent assumes this role, and the source
        # conditions documented for task roles are not documented for it.
        "ExecutionRole", RoleName=names.execution_role().sub(), AssumeRolePolicyDocument=trust("ecs-tasks.amazonaws.com"),
        Policies=[Policy(PolicyName="execution", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements))],
    ))
    stack.publish(links.EXECUTION_ROLE_ARN, GetAtt(role, "Arn"))


def _task_roles(stack: Stack) -> None:
    stored = stack.app.stored_services
    roles = {svc.name: stack.add(Role(
        f"{logical_id(svc.name)}TaskRole", RoleName=names.task_role(svc).sub(),
        AssumeRolePolicyDocument=ecs_tasks_trust(),
        Description=f"{svc.name} containers: " + ("mount the app's file system" if svc in stored else
                                                  "no AWS permissions"),
        **({"Policies": [_mount_policy(stack)]} if svc in stored else {}),
    )) for svc in stack.app.services}
    for link in links.grouped_all(links.TASK_ROLE_ARNS, stack.app):
        stack.publish_members(link, {name: GetAtt(roles[name], "Arn") for name in link.members(stack.app)})
