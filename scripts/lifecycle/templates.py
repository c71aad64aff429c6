"""Templates (and other YAML the lifecycle reads) parsed by libyaml when PyYAML was built with it.

CSafeLoader gives what yaml.safe_load gives (the same safe constructors over libyaml's parser) some ten
times faster: a deploy reads main.yaml and the nested templates several times, and with the pure-Python
parser that was about 2 s of a deploy's own time.
"""
from __future__ import annotations

from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str | bytes) -> Any:
    return yaml.load(text, Loader=LOADER)
