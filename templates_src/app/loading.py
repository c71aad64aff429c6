"""Reading an app config file: bounded YAML (1.2's core schema, no duplicate keys) into the model
(config.parse), then the checks across fields (checks.validate). What every command that takes
--config calls.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from templates_src.app import bounded, checks
from templates_src.app.config import App, ConfigError, describe, parse


def load_or_report(path: Path) -> App | None:
    """load(path), or None after printing the refusal to stderr: what every command does."""
    try:
        return load(path)
    except ConfigError as err:
        print(err.report(path), file=sys.stderr)
        return None


def load(path: Path | str) -> App:
    path = Path(path)
    try:
        text = bounded.read_text(path, bounded.CONFIG_BYTES, "config")
    except bounded.Refused as err:
        raise ConfigError([("", str(err))]) from None
    try:
        data = yaml.load(text, Loader=_loader(yaml))
    except yaml.YAMLError as err:
        raise ConfigError([("", yaml_problem(path, err))]) from None
    if not isinstance(data, dict):
        what = "is empty" if data is None else f"holds {describe(data)}"
        raise ConfigError([("", f"{path} {what}: an app config is a mapping of name, services, ...")])
    app = parse(data, base_dir=path.parent)
    checks.validate(app)
    return app


def yaml_problem(path: Path, err: Exception) -> str:
    """One sentence for a YAML file PyYAML (or the bounds) refused, with the line and column."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(err, "problem", None) or err
    if isinstance(err, bounded.TooDeep):
        return f"{path} is refused{where}: {problem}"
    return f"{path} is not valid YAML{where}: {problem}"


_LOADERS: dict[object, type] = {}


def _loader(yaml) -> type:
    """PyYAML's safe loader, refusing duplicate keys and saying where a value is that it cannot construct.

    PyYAML keeps the last of two equal keys, so a second `environment:` silently replaces the first;
    YAML says keys are unique. A scalar with an explicit tag it cannot read (`!!int abc`,
    `!!bool maybe`) makes PyYAML's own constructors raise ValueError, KeyError or AttributeError
    without a position. Nodes are composed within bounded.py's depth and alias bounds.
    """
    if yaml not in _LOADERS:
        class Loader(bounded.BoundedComposer, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            yaml_implicit_resolvers: dict = {}  # YAML 1.2's, added below

            def construct_mapping(self, node, deep=False):
                seen = {}
                for key, _ in node.value:
                    # Merge keys (<<) may be overridden on purpose; only the mapping's own keys count.
                    if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                        if (key.tag, key.value) in seen:
                            raise yaml.constructor.ConstructorError(
                                None, None, f"duplicate key '{key.value}' (first at line "
                                f"{seen[key.tag, key.value].start_mark.line + 1})", key.start_mark)
                        seen[key.tag, key.value] = key
                return super().construct_mapping(node, deep)

            def construct_object(self, node, deep=False):
                try:
                    return super().construct_object(node, deep)
                except (ValueError, KeyError, AttributeError, TypeError):
                    raise yaml.constructor.ConstructorError(
                        None, None, f"cannot read {node.value!r} as {node.tag.rpartition(':')[2]}",
                        node.start_mark) from None

        for tag, pattern, first in CORE_SCHEMA:
            Loader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(pattern), list(first))
        Loader.add_constructor("tag:yaml.org,2002:int", _core_int)
        Loader.add_constructor("tag:yaml.org,2002:float", _core_float)
        _LOADERS[yaml] = Loader
    return _LOADERS[yaml]


# Plain scalars are read by YAML 1.2's core schema, not PyYAML's YAML 1.1 one: there `on`, `yes`,
# `12:30`, `0755`, `1_000` and `2024-01-01` are true, true, 750, 493, 1000 and a date, so an
# environment value would change behind its author's back. Here they stay the strings they look like.
CORE_SCHEMA = (
    ("null", r"^(?:~|null|Null|NULL|)$", ("~", "n", "N", "")),
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
    ("merge", r"^<<$", "<"),
)


def _core_int(loader, node) -> int:
    text = loader.construct_scalar(node)
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


def _core_float(loader, node) -> float:
    return float(loader.construct_scalar(node).lower().replace(".inf", "inf").replace(".nan", "nan"))
