"""Nested CloudFormation templates for a multi-container app on Amazon ECS with EC2 hosts."""
from __future__ import annotations

import importlib.util
import sys


def _defer(name: str) -> None:
    """Make `import name` cheap: the module's code runs when one of its names is first read.

    The module object in sys.modules is the real one (spec, file, path), only not executed yet;
    reading a name it does not have yet runs its code in place and answers from it. importlib's
    LazyLoader would be the stock tool, but on Python 3.11 the import statement itself reads
    `__spec__`, which makes LazyLoader run the module straight away.
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)

    def load(attribute: str) -> object:
        del module.__getattr__
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return getattr(module, attribute)

    module.__getattr__ = load
    sys.modules[name] = module


# troposphere imports cfn_flip at its top, for Template.to_yaml/to_json only, which the build never
# calls (render.py writes the YAML); running it, and the logging module it pulls in, was about 5 ms
# of every build. tests/test_imports.py fails when something starts to use it during a build.
_defer("cfn_flip")
