"""AWS's public SSM parameters (/aws/service/...) built once per account, region and tree instead of
once per SSM backend.

moto 5.2.5 loads a tree the first time a backend is asked for one of its names: for the ECS-optimized
AMI parameters every template here reads, thousands of parameters parsed from JSON and built one by
one, after every reset again. They are the same every time, so the first backend builds them and the
later ones get copies, objects of their own (with their own labels and policies).

They are AWS's, not the account's: public parameters are published by the AWS services that own them
(https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-finding-public-parameters.html),
and the Resource Groups Tagging API lists the resources of the calling account
(https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html). moto 5.2.5's
GetResources walks every parameter its SSM backend holds, public ones included, asking each for its tags only
to find none: once a template has read an AMI parameter, every GetResources (make cleanup's leftovers, make
deploy's kept data) walked some 5,500 of them. Left out, a call takes 25 ms instead of 80 (DKS deployed).
"""
from __future__ import annotations

import re
from collections import defaultdict

from moto.core.resource_tagging import TaggedResource
from moto.ssm.models import Parameter, ParameterDict, SimpleSystemManagerBackend
from moto.ssm.utils import parameter_arn

from .fixes import copy_of, replace

_BUILT: dict[tuple[str, str, str], list[Parameter]] = {}


def _copy(parameter: Parameter) -> Parameter:
    policies = parameter.policies
    return copy_of(parameter, labels=list(parameter.labels),
                   policies=list(policies) if isinstance(policies, list) else policies)


@replace(ParameterDict, "_load_tree_parameters")
def _load_tree_parameters(original, self, path: str) -> None:
    key = (self.account_id, self.region_name, path)
    if key not in _BUILT:
        before = {name: len(versions) for name, versions in self.items()}
        original(self, path)
        _BUILT[key] = [_copy(versions[-1]) for name, versions in self.items() if len(versions) > before.get(name, 0)]
        return
    for parameter in _BUILT[key]:  # as moto adds them: past ParameterDict's own lookup, which would load trees
        defaultdict.__getitem__(self, parameter.name).append(_copy(parameter))


# No parameter of the account's own can be named "aws..." (any case, after the leading "/"): PutParameter refuses
# the prefix (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html).
_AWS_OWNED = re.compile(r"/?aws", re.IGNORECASE)


@replace(SimpleSystemManagerBackend, "iter_tagged_resources")
def _iter_tagged_resources(original, self):
    """moto's, with the parameters AWS owns left out: its documents, then the account's own parameters with
    their tags. Filtering moto's results would not do: its loop asks each parameter for its tags (through
    GetParameter's lookup) before yielding it, and that asking is the cost."""
    for document in self._documents.values():
        name = document.describe()["Name"]
        yield TaggedResource(arn=f"arn:{self.partition}:ssm:{self.region_name}:{self.account_id}:document/{name}",
                             tags={t["Key"]: t["Value"] for t in self._get_documents_tags(name)},
                             resource_type="ssm:document")
    for name in [name for name in dict.keys(self._parameters) if not _AWS_OWNED.match(name)]:
        yield TaggedResource(arn=parameter_arn(self.account_id, self.region_name, name),
                             tags=dict(self.list_tags_for_resource("Parameter", name) or {}),
                             resource_type="ssm:parameter")
