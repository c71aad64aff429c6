"""Block YAML for plain template data, written directly: the same text as render.py's PyYAML dump.

A template is plain data (dict, list, str, int, float, bool, None). PyYAML turns it into a node
graph in Python, then libyaml writes the nodes; for 200 services that was 150 ms of a 400 ms
build. This writes the text in one pass, with the same choices libyaml makes for the settings
render.pyyaml gives PyYAML (block style, indent 2, width 120, unicode as is, keys in insertion
order, literal blocks for strings with line breaks):

- a string is plain unless plain YAML would read it back as something else (a number, a bool,
  null, a timestamp, ...: PyYAML's own implicit resolvers decide) or as other text (leading or
  trailing space, an indicator such as ": ", " #", a leading "-", "&", "*", "!", "'", ...), then
  it is single-quoted;
- a string with line breaks is a literal block (`|`, or `|-` without a final line break);
- keys are plain or single-quoted the same way;
- a plain or single-quoted string continues on the next line at the first single space after
  column 120, as libyaml folds it.

What it does not write the way libyaml would, it refuses (Unsupported) rather than guess, and
render.to_yaml hands that template to PyYAML: characters libyaml escapes (control characters,
tabs, characters outside the Basic Multilingual Plane, U+FEFF, line separators other than
"\\n"), literal blocks that need an indentation or "keep" indicator or that libyaml
double-quotes (a line ending in a space), empty, multi-line or long keys, containers that appear
twice (PyYAML writes anchors), root scalars and other types. tests/test_emitter.py compares both
on real and generated data.
"""
from __future__ import annotations

import re

import yaml.resolver

WIDTH = 120  # render.pyyaml's width: libyaml folds plain and quoted strings after this column
INDENT = 2
STR = "tag:yaml.org,2002:str"

# Characters libyaml writes as they are (allow_unicode): printable ASCII, "\n", and the printable
# Basic Multilingual Plane except U+FEFF and the line separators U+2028/U+2029. Anything else
# makes it escape or quote in ways this module does not follow. ASCII text, nearly all of a
# template, is checked by a pattern; one spanning the whole plane would take 3 ms to compile.
_UNSAFE_ASCII = re.compile("[^\n\x20-\x7e]")


def _escaped_by_libyaml(value: str) -> bool:
    if value.isascii():
        return _UNSAFE_ASCII.search(value) is not None
    return not all(char == "\n" or " " <= char <= "~" or "\xa0" <= char <= "\ud7ff" and char not in "\u2028\u2029"
                   or "\ue000" <= char <= "\ufffd" and char != "\ufeff" for char in value)


class Unsupported(Exception):
    """Data this writer does not render exactly as PyYAML would; use PyYAML."""


def to_yaml(data: dict | list) -> str:
    out: list[str] = []
    seen: set[int] = set()
    if type(data) is dict:
        if not data:
            return "{}\n"
        _mapping(data, 0, False, out, seen)
    elif type(data) is list:
        if not data:
            return "[]\n"
        _sequence(data, 0, False, out, seen)
    else:
        raise Unsupported(f"a {type(data).__name__} at the root")
    return "".join(out)


def _mapping(data: dict, indent: int, inline: bool, out: list[str], seen: set[int]) -> None:
    """`inline`: the first key continues the line a sequence's "- " began."""
    if id(data) in seen:
        raise Unsupported("a mapping that appears twice (PyYAML writes an anchor)")
    seen.add(id(data))
    pad = " " * indent
    for key, value in data.items():
        if type(key) is not str:
            raise Unsupported(f"a {type(key).__name__} key")
        written = _KEYS.get(key) or _key(key)
        head = (written if inline else pad + written) + ":"
        inline = False
        kind = type(value)
        if kind is dict and value:
            out.append(head + "\n")
            _mapping(value, indent + INDENT, False, out, seen)
        elif kind is list and value:
            out.append(head + "\n")  # libyaml does not indent a sequence under a mapping key
            _sequence(value, indent, False, out, seen)
        else:
            out.append(head + _scalar(value, indent + len(written) + 2, indent + INDENT, seen) + "\n")


def _sequence(data: list, indent: int, inline: bool, out: list[str], seen: set[int]) -> None:
    if id(data) in seen:
        raise Unsupported("a sequence that appears twice (PyYAML writes an anchor)")
    seen.add(id(data))
    pad = " " * indent
    for item in data:
        head = "- " if inline else pad + "- "
        inline = False
        kind = type(item)
        if kind is dict and item:
            out.append(head)
            _mapping(item, indent + INDENT, True, out, seen)
        elif kind is list and item:
            out.append(head)
            _sequence(item, indent + INDENT, True, out, seen)
        else:
            out.append(head[:-1] + _scalar(item, indent + 2, indent + INDENT, seen) + "\n")


def _scalar(value: object, column: int, indent: int, seen: set[int]) -> str:
    """` value` as it follows "key:" or "-": `column` is where its first character goes, `indent`
    where its continuation lines start."""
    kind = type(value)
    if kind is str:
        style, text = _STRINGS.get(value) or _string(value)
        if style == "|":
            pad = " " * indent
            return text + "".join("\n" + pad + line if line else "\n" for line in _lines(value))
        if column + len(text) > WIDTH:
            return " " + _fold(value, column, indent, style == "'")
        return " " + text
    if kind is bool:
        return " true" if value else " false"
    if kind is int:
        return " " + str(value)
    if value is None:
        return " null"
    if kind is float:
        return " " + _float(value)
    if kind is dict or kind is list:  # empty: written in flow style
        if id(value) in seen:
            raise Unsupported("a container that appears twice (PyYAML writes an anchor)")
        seen.add(id(value))
        return " {}" if kind is dict else " []"
    raise Unsupported(f"a {kind.__name__} value")


# --- strings -------------------------------------------------------------------------------------

_STRINGS: dict[str, tuple[str, str]] = {}  # string -> (style, text as written on one line)
_KEYS: dict[str, str] = {}


def _string(value: str) -> tuple[str, str]:
    if _escaped_by_libyaml(value):
        raise Unsupported(f"characters libyaml escapes in {value!r}")
    if "\n" in value:
        if value[0] in " \n" or value.endswith(("\n\n", " ")) or " \n" in value:
            raise Unsupported(f"a literal block libyaml writes with indicators or quotes: {value!r}")
        result = ("|", " |" if value.endswith("\n") else " |-")
    elif value and _plain_allowed(value) and _resolves_to_str(value):
        result = ("", value)
    else:
        result = ("'", "'" + value.replace("'", "''") + "'")
    _STRINGS[value] = result
    return result


def _plain_allowed(value: str) -> bool:
    """Whether libyaml writes a one-line string plain in block context (its analyze_scalar): no
    leading or trailing space, no leading indicator, no ": " or final ":", no " #", no document
    marker at the start."""
    if value.startswith(("---", "...")) or value[0] == " " or value[-1] == " ":
        return False
    if value[0] in "#,[]{}&*!|>'\"%@`":
        return False
    if value[0] in "-?:" and (len(value) == 1 or value[1] == " "):
        return False
    return not (value.endswith(":") or ": " in value or " #" in value)


def _key(key: str) -> str:
    """A mapping key as libyaml writes a simple key: plain or single-quoted, never folded."""
    # libyaml writes a "? " complex key for an empty or multi-line one, or one over 128 UTF-8 bytes.
    if not key or "\n" in key or len(key.encode()) > 128:
        raise Unsupported(f"a key libyaml writes as a complex key: {key!r}")
    written = _KEYS[key] = _string(key)[1]
    return written


def _lines(value: str) -> list[str]:
    return (value[:-1] if value.endswith("\n") else value).split("\n")


def _fold(value: str, column: int, indent: int, quoted: bool) -> str:
    """Plain or single-quoted text broken as libyaml breaks it: at a single space once the line has
    passed WIDTH (for quoted text, never its first or last character)."""
    parts = ["'"] if quoted else []
    column += quoted  # the opening quote
    last = len(value) - 1
    for i, char in enumerate(value):
        if char == " " and column > WIDTH and 0 < i < last and value[i - 1] != " " and value[i + 1] != " ":
            parts.append("\n" + " " * indent)
            column = indent
            continue
        written = "''" if quoted and char == "'" else char
        parts.append(written)
        column += len(written)
    if quoted:
        parts.append("'")
    return "".join(parts)


def _float(value: float) -> str:
    """PyYAML's SafeRepresenter.represent_float, written plain only where it reads back as a float."""
    if value != value:
        text = ".nan"
    elif value in (float("inf"), float("-inf")):
        text = ".inf" if value > 0 else "-.inf"
    else:
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
    if _implicit_tag(text) != "tag:yaml.org,2002:float":
        raise Unsupported(f"a float PyYAML writes with a tag: {value!r}")
    return text


def _resolves_to_str(value: str) -> bool:
    return _implicit_tag(value) == STR


def _implicit_tag(value: str) -> str:
    """The tag a plain scalar reads back as, by the resolvers PyYAML's dumper itself consults."""
    table = yaml.resolver.Resolver.yaml_implicit_resolvers
    for tag, regexp in table.get(value[0] if value else "", []) + table.get(None, []):
        if regexp.match(value):
            return tag
    return STR
