"""The written explanation: the app config as YAML with every finding as a comment above it, and
one sentence per problem the build's checks found in the result.
"""
from __future__ import annotations

import re

import yaml

from templates_src.app import config
from templates_src.compose.context import Imported, printable


def describe_problems(err: config.ConfigError, data: dict) -> list[str]:
    """Config problems with service indexes named (ConfigError.named), by the imported data's names."""
    return config.ConfigError(err.problems, config.service_names(data)).described()


class _Dumper(yaml.SafeDumper):
    """Block style like the hand-written configs: sequences indented under their key, short lists inline."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper, value: list):
    inline = all(isinstance(item, (str, int)) for item in value) and len(str(value)) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=inline)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def to_yaml(imported: Imported, source: str) -> str:
    """app.yaml text: a header naming the Compose file, the findings as comments, then the config."""
    lines = [f"# Imported from {printable(source)} by `python -m templates_src import-compose`.",
             "# Review it before building: schema and defaults in templates_src/app/config.py.", "#"]
    for title, findings in (("Not carried over, or needs a decision", imported.warnings),
                            ("Changed on the way", imported.notes)):
        if findings:
            lines.append(f"# {title}:")
            for finding in findings:
                lines += _comment(imported.say(finding))
            lines.append("#")
    body = yaml.dump(imported.data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=True)
    # A blank line before each section and between services: the file reads like the DKS app.yaml.
    body = re.sub(r"\n(?=(cluster|secrets|services):|  - name: )", "\n\n", body).replace("services:\n\n", "services:\n")
    return "\n".join(lines).rstrip("#\n") + "\n\n" + body


def _comment(text: str, width: int = 116) -> list[str]:
    import textwrap

    wrapped = textwrap.wrap(printable(text), width=width, subsequent_indent="    ", break_long_words=False,
                            break_on_hyphens=False)
    return [f"#   {line}" for line in wrapped]
