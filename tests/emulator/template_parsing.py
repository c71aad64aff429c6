"""Templates parsed by libyaml, as moto parses them otherwise (same constructors, same fallback to JSON).

moto reads every template with PyYAML's pure-Python loader, twice per stack (the stack, its rules check):
two thirds of the emulator's time in a DKS deploy. PyYAML's C loader (CLoader: libyaml's parser under
the same Constructor and Resolver as yaml.Loader) gives the same data some ten times faster.
"""
from __future__ import annotations

import json
from typing import Any

import yaml
from moto.cloudformation import models
from moto.cloudformation.utils import yaml_tag_constructor
from yaml.parser import ParserError
from yaml.scanner import ScannerError

LOADER = getattr(yaml, "CLoader", yaml.Loader)  # PyYAML built without libyaml: moto's own loader
# The short forms (!Ref, !GetAtt, ...) as moto reads them; moto registers them on yaml.Loader only.
yaml.add_multi_constructor("", yaml_tag_constructor, Loader=LOADER)


def parse(template: str) -> dict[str, Any]:
    try:
        return yaml.load(template, Loader=LOADER)
    except (ParserError, ScannerError):
        return json.loads(template)


def _change_set_parse(self: models.ChangeSet) -> None:
    self.template_dict = parse(self.template)


models.Stack.parse_template = staticmethod(parse)
models.ChangeSet._parse_template = _change_set_parse
