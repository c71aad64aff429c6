"""iam.yaml: the hosts' role and instance profile, the task execution role, one role per service.

Policies are awacs objects only. The execution role may pull only this app's repositories, write
only this app's log groups and read only this app's secrets; task roles carry no permission, as
no DKS container calls AWS, but mounting the app's data and, for a service with `exec`, opening ECS Exec's
Session Manager channels.
"""
from __future__ import annotations

from awacs import ecr, elasticfilesystem, kms, logs, secretsmanager, ssmmessages, sts
from awacs.aws import Allow, ArnLike, Bool, Condition, PolicyDocument, Principal, Statement, StringEquals
from troposphere import GetAtt, Ref, Sub
from troposphere.iam import InstanceProfile, Policy, Role

from templates_src.app import names
from templates_src.stacks import links, registry
from templates_src.app.config import App, logical_id
from templates_src.stacks.wiring import Stack

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


def _exec_policy() -> Policy:
    """ECS Exec: the Session Manager agent ECS runs in the task opens its control and data channels with the
    task role's credentials (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec.html, "IAM
    permissions required for ECS Exec"). These four actions define no resource type, so a statement can name
    only "*" (https://docs.aws.amazon.com/service-authorization/latest/reference/list_ssmmessages.html); the
    role being this service's alone is what bounds them. Session encryption with a KMS key and session
    logging are not configured (the cluster has no executeCommandConfiguration), so no kms or logs action."""
    return Policy(PolicyName="exec", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
        Sid="EcsExecChannels", Effect=Allow,
        Action=[ssmmessages.CreateControlChannel, ssmmessages.CreateDataChannel, ssmmessages.OpenControlChannel,
                ssmmessages.OpenDataChannel],
        Resource=["*"],
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

    def policies(svc) -> list[Policy]:
        return ([_mount_policy(stack)] if svc in stored else []) + ([_exec_policy()] if svc.exec else [])

    def description(svc) -> str:
        allowed = (["mount the app's file system"] if svc in stored else []) + \
            (["ECS Exec's Session Manager channels"] if svc.exec else [])
        return f"{svc.name} containers: " + (", ".join(allowed) if allowed else "no AWS permissions")

    roles = {svc.name: stack.add(Role(
        f"{logical_id(svc.name)}TaskRole", RoleName=names.task_role(svc).sub(),
        AssumeRolePolicyDocument=ecs_tasks_trust(), Description=description(svc),
        **({"Policies": policies(svc)} if policies(svc) else {}),
    )) for svc in stack.app.services}
    for link in links.grouped_all(links.TASK_ROLE_ARNS, stack.app):
        stack.publish_members(link, {name: GetAtt(roles[name], "Arn") for name in link.members(stack.app)})
