"""Templates parsed by libyaml, as moto parses them otherwise (same constructors, same fallback to JSON).

moto reads every template with PyYAML's pure-Python loader, twice per stack (the stack, its rules check):
two thirds of the emulator's time in a DKS deploy. PyYAML's C loader (CLoader: libyaml's parser under
the same Constructor and Resolver as yaml.Loader) gives the same data some ten times faster.

The same text is parsed again and again: by the stack, its rules check and its change sets, and by every test
that deploys the same build. Its data is kept as JSON, which json.loads turns into fresh objects (moto changes
what it is given) several times faster than the YAML is read, when JSON holds the data exactly (not a date, a
number as a key...).
"""
from __future__ import annotations

import functools
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
    text = _as_json(template)
    return json.loads(text) if text is not None else _load(template)


def _load(template: str) -> Any:
    try:
        return yaml.load(template, Loader=LOADER)
    except (ParserError, ScannerError):
        return json.loads(template)


@functools.lru_cache(maxsize=256)
def _as_json(template: str) -> str | None:
    data = _load(template)
    try:
        text = json.dumps(data)
    except (TypeError, ValueError):
        return None
    return text if json.loads(text) == data else None


def _change_set_parse(self: models.ChangeSet) -> None:
    self.template_dict = parse(self.template)


models.Stack.parse_template = staticmethod(parse)
models.ChangeSet._parse_template = _change_set_parse
