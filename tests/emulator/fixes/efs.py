"""EFS through CloudFormation: access points and file systems answer Ref and GetAtt.

moto 5.2.5 gives an access point no physical ID (its Ref was a Python repr) and neither type GetAtt Arn or ID.
"""
from __future__ import annotations

from moto.efs import models as efs

from . import FIXES


# CloudFormation's Ref to an access point is its ID; moto has no physical ID for it (a Python repr).
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-efs-accesspoint.html
efs.AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)
efs.AccessPoint.has_cfn_attr = classmethod(lambda cls, attribute: attribute in ("Arn", "AccessPointId"))
efs.AccessPoint.get_cfn_attribute = lambda self, attribute: (
    self.access_point_arn if attribute == "Arn" else self.access_point_id)
FIXES.append("AccessPoint.physical_resource_id")

# GetAtt Arn and FileSystemId
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-efs-filesystem.html
efs.FileSystem.has_cfn_attr = classmethod(lambda cls, attribute: attribute in ("Arn", "FileSystemId"))
efs.FileSystem.get_cfn_attribute = lambda self, attribute: (
    self.file_system_arn if attribute == "Arn" else self.file_system_id)
FIXES.append("FileSystem.get_cfn_attribute")
