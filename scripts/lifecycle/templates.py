"""Templates (and other YAML the lifecycle reads) parsed by libyaml when PyYAML was built with it.

CSafeLoader gives what yaml.safe_load gives (the same safe constructors over libyaml's parser) some ten
times faster: a deploy reads main.yaml and the nested templates several times, and with the pure-Python
parser that was about 2 s of a deploy's own time.

The constructors are Python even so, and a deploy reads the same texts again (main.yaml for its parameters,
its nested stacks and its Rules; each template for the approval and for the live view's count, that one
as CloudFormation hands it back): each text is parsed once, and what `parse` returns is shared, to be read,
never changed.
"""
from __future__ import annotations

import functools
from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=64)
def parse(text: str | bytes) -> Any:
    return yaml.load(text, Loader=LOADER)
