"""storage.yaml: the EFS file system that keeps services' `data` across tasks, hosts and stacks.

Encrypted at rest with the app's KMS key and in transit (the file system policy refuses clients
without TLS), one mount target per public subnet in the data security group (NFS from the
services with data only), and per service an access point rooted in its own directory that makes
every file owned by the image's user. The file system is retained when the stack is deleted
(RetainExceptOnCreate): data is never lost by a delete; `make cleanup` deletes it unless KEEP_DATA=1.

DataFileSystemId gives back a kept file system instead of a new one (kept.py): mount targets and
access points are made fresh on it. An access point whose root directory already exists uses it as
it is, data and owner included; CreationInfo applies only to a directory EFS has to create
(https://docs.aws.amazon.com/efs/latest/ug/API_CreationInfo.html), so the kept database is found
where it was left, owned by the same user.
"""
from __future__ import annotations

import json
import string

from awacs import elasticfilesystem as efs
from awacs.aws import Bool, Condition, Deny, PolicyDocument, Principal, Statement
from troposphere import GetAtt, If, Ref, Select, Sub, Tags
from troposphere.efs import AccessPoint, BackupPolicy, CreationInfo, FileSystem, MountTarget, PosixUser, RootDirectory

from templates_src.stacks import kept, links
from templates_src.app.config import App, logical_id
from templates_src.stacks.wiring import Stack


def build(app: App) -> Stack:
    stack = Stack("storage", app, f"{app.name}: EFS file system for the services' data")
    stack.use(links.ENVIRONMENT_NAME)
    given = kept.reuse(stack, links.DATA_FILE_SYSTEM_ID, kept.NEW_FILE_SYSTEM)
    made = stack.add(FileSystem(
        "FileSystem", Condition=kept.NEW_FILE_SYSTEM, Encrypted=True, KmsKeyId=stack.use(links.KEY_ARN),
        PerformanceMode="generalPurpose", ThroughputMode="elastic", BackupPolicy=BackupPolicy(Status="ENABLED"),
        FileSystemPolicy=_tls_only(),
        FileSystemTags=kept.role_tags(kept.FILE_SYSTEM, Name=Sub(f"${{{links.ENVIRONMENT_NAME.name}}}-data")),
        # Data outlives the stack: a delete (or a replacement) keeps the file system; a first create
        # that fails and rolls back holds no data yet and leaves nothing behind.
        **kept.RETAIN,
    ))
    system = If(kept.NEW_FILE_SYSTEM, Ref(made), given)
    subnets = stack.use(links.SUBNET_IDS)
    group = stack.use(links.DATA_SECURITY_GROUP)
    for index in range(app.network.availability_zones):
        stack.add(MountTarget(f"MountTarget{string.ascii_uppercase[index]}", FileSystemId=system,
                              SubnetId=Select(index, subnets), SecurityGroups=[group]))
    points = {svc.name: stack.add(AccessPoint(
        f"{logical_id(svc.name)}AccessPoint", FileSystemId=system,
        PosixUser=PosixUser(Uid=str(svc.data.uid), Gid=str(svc.data.gid)),
        RootDirectory=RootDirectory(Path=f"/{svc.name}", CreationInfo=CreationInfo(
            OwnerUid=str(svc.data.uid), OwnerGid=str(svc.data.gid), Permissions="0700")),
        AccessPointTags=Tags(Name=Sub(f"${{{links.ENVIRONMENT_NAME.name}}}-{svc.name}")),
    )) for svc in app.stored_services}
    stack.publish(links.FILE_SYSTEM_ID, system)
    # The ARN of a file system, as IAM names it:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticfilesystem.html
    stack.publish(links.FILE_SYSTEM_ARN, If(kept.NEW_FILE_SYSTEM, GetAtt(made, "Arn"), Sub(
        "arn:${AWS::Partition}:elasticfilesystem:${AWS::Region}:${AWS::AccountId}:file-system/"
        f"${{{links.DATA_FILE_SYSTEM_ID.name}}}")))
    for link in links.grouped_all(links.ACCESS_POINT_IDS, app):
        stack.publish_members(link, {name: Ref(points[name]) for name in link.members(app)})
    return stack


def _tls_only() -> dict:
    # troposphere takes this policy as a plain dict, not an awacs document.
    return json.loads(PolicyDocument(Version="2012-10-17", Statement=[Statement(
        Sid="RefuseClientsWithoutTls", Effect=Deny, Principal=Principal("AWS", "*"),
        Action=[efs.ClientMount, efs.ClientWrite, efs.ClientRootAccess], Resource=["*"],
        Condition=Condition(Bool("aws:SecureTransport", "false")),
    )]).to_json())
