"""AWS's public SSM parameters (/aws/service/...) built once per account, region and tree instead of
once per SSM backend.

moto 5.2.5 loads a tree the first time a backend is asked for one of its names: for the ECS-optimized
AMI parameters every template here reads, thousands of parameters parsed from JSON and built one by
one, after every reset again. They are the same every time, so the first backend builds them and the
later ones get copies, objects of their own (with their own labels and policies).
"""
from __future__ import annotations

from collections import defaultdict

from moto.ssm.models import Parameter, ParameterDict

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
