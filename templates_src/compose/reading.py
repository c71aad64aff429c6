"""Reading a Compose file: YAML within bounds, .env files, `${VAR}` interpolation as compose-spec
defines it, and the small value syntaxes (durations like 1m30s, byte values like 512M, CPUs).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable, Optional

import yaml

from templates_src.app import bounded, loading
from templates_src.compose.context import SHAPES


# --- results and errors ------------------------------------------------------------------------------


class ComposeError(Exception):
    """A Compose file the import cannot read at all (not YAML, not a Compose mapping, ...)."""


# --- reading: YAML, .env files, interpolation ----------------------------------------------------------


def load(path: Path) -> dict:
    """The Compose file as data, or ComposeError saying why it is not one."""
    try:
        text = bounded.read_text(path, bounded.COMPOSE_BYTES, "Compose file")
    except bounded.Refused as err:
        raise ComposeError(str(err)) from None
    try:
        data = bounded.load_yaml(text)
    except yaml.YAMLError as err:
        raise ComposeError(loading.yaml_problem(path, err)) from None
    if not isinstance(data, dict):
        raise ComposeError(f"{path} is not a Compose file: expected a mapping with `services`, got {_kind(data)}")
    services = data.get("services")
    if not isinstance(services, dict) or not services:
        raise ComposeError(f"{path} is not a Compose file: `services` must be a mapping with at least one service"
                           + ("" if "services" in data else " (there is no `services` key)"))
    problems = [f"{key}: must be a mapping, got {_kind(data[key])}" for key in ("volumes", "secrets", "configs")
                if data.get(key) is not None and not isinstance(data[key], dict)]
    for name, svc in services.items():
        if not isinstance(svc, dict):
            problems.append(f"services.{name}: must be a mapping, got {_kind(svc)}")
            continue
        for key, value in svc.items():
            kinds = SHAPES.get(key)
            if value is not None and kinds and not isinstance(value, kinds):
                expected = " or ".join(_kind(kind()) for kind in kinds)
                problems.append(f"services.{name}.{key}: expected {expected}, got {_kind(value)}")
    if problems:
        raise ComposeError(f"{path} is not a valid Compose file:\n  " + "\n  ".join(problems))
    return data


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def parse_env_file(text: str, lookup: Callable[[str], Optional[str]] = lambda name: None,
                   warn: Callable[[str], None] = lambda name: None) -> dict[str, Optional[str]]:
    """KEY=VALUE lines the way Compose reads them; None for a bare KEY (to be resolved, or unset).

    Unquoted and double-quoted values are interpolated from `lookup` and the lines above;
    single-quoted ones are literal.
    """
    values: dict[str, Optional[str]] = {}

    def resolve(name: str) -> Optional[str]:
        return values[name] if values.get(name) is not None else lookup(name)

    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"^export\s+", "", line)
        key, sep, raw = line.partition("=")
        key = key.strip()
        if not sep:
            values[key] = None
            continue
        raw = raw.strip()
        if raw[:1] in ("'", '"') and raw[0] in raw[1:]:
            quote = raw[0]
            end = _closing_quote(raw, quote)
            inner = raw[1:end]
            if quote == "'":
                values[key] = inner.replace("\\'", "'")
                continue
            inner = (inner.replace('\\"', '"').replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t")
                     .replace("\\\\", "\\"))
            values[key] = interpolate(inner, resolve, warn)
            continue
        raw = re.split(r"\s#", raw, maxsplit=1)[0].strip()
        values[key] = interpolate(raw, resolve, warn)
    return values


def _closing_quote(raw: str, quote: str) -> int:
    i = 1
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
            continue
        if raw[i] == quote:
            return i
        i += 1
    return len(raw)


_VAR = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")


# ${A:-${B:-...}} nested deeper than this is refused: each level recurses, and rescans what is inside it.
MAX_INTERPOLATION_DEPTH = 16


def interpolate(text: str, lookup: Callable[[str], Optional[str]], warn: Callable[[str], None],
                depth: int = 0) -> str:
    """Compose interpolation: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+r}, ${VAR+r}, $$.

    An unset variable without a default becomes "" and is reported through `warn`; a required one
    raises ComposeError, and so does nesting deeper than MAX_INTERPOLATION_DEPTH.
    """
    if depth > MAX_INTERPOLATION_DEPTH:
        raise ComposeError(f"interpolation nested deeper than {MAX_INTERPOLATION_DEPTH} levels in "
                           f"{text[:60]!r}{'...' if len(text) > 60 else ''}")
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1:i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            end = _closing_brace(text, i + 2)
            if end is None:
                raise ComposeError(f"unterminated ${{...}} in {text!r}")
            out.append(_braced(text[i + 2:end], lookup, warn, depth))
            i = end + 1
        elif match := _VAR.match(text, i + 1):
            value = lookup(match.group())
            if value is None:
                warn(match.group())
            out.append(value or "")
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> Optional[int]:
    depth, i = 1, start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _braced(expression: str, lookup, warn, depth: int = 0) -> str:
    match = _VAR.match(expression)
    if not match:
        raise ComposeError(f"invalid interpolation ${{{expression}}}")
    name, rest = match.group(), expression[match.end():]
    value = lookup(name)
    if not rest:
        if value is None:
            warn(name)
        return value or ""
    operator = next((op for op in (":-", ":?", ":+", "-", "?", "+") if rest.startswith(op)), None)
    if operator is None:
        raise ComposeError(f"unsupported interpolation ${{{expression}}} (Compose has no ${{VAR/...}} forms)")
    operand = rest[len(operator):]
    present = value is not None and (value != "" or ":" not in operator)
    if operator.endswith("-"):
        return value if present else interpolate(operand, lookup, warn, depth + 1)
    if operator.endswith("+"):
        return interpolate(operand, lookup, warn, depth + 1) if present else ""
    if not present:
        message = interpolate(operand, lookup, warn, depth + 1) or "required"
        raise ComposeError(f"variable {name} is not set: {message} (set it in .env or pass --env-file)")
    return value


def interpolate_all(node: object, lookup, warn) -> object:
    """Interpolate every string value (never a key) of the Compose data."""
    if isinstance(node, dict):
        return {key: interpolate_all(value, lookup, warn) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, lookup, warn) for value in node]
    if isinstance(node, str):
        return interpolate(node, lookup, warn)
    return node


# --- small parsers: durations, byte values, ports, volumes ------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m(?!s)|s|ms|us|µs|ns)")
_SECONDS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration_seconds(value: object) -> float:
    """Compose duration ('1m30s', '10s', '500ms') or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(a + u for a, u in parts) != text:
        raise ValueError(f"'{value}' is not a duration like 10s or 1m30s")
    return sum(float(amount) * _SECONDS[unit] for amount, unit in parts)


_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$", re.IGNORECASE)


def mebibytes(value: object) -> int:
    """Compose byte value ('512M', '1gb', '300m', 1073741824) in MiB, rounded up (Docker's units are 1024-based)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount, unit = value, ""
    else:
        match = _BYTES.match(str(value).strip())
        if not match:
            raise ValueError(f"'{value}' is not a byte value like 512M or 1g")
        amount, unit = float(match.group(1)), match.group(2).lower()
    try:
        mib = amount * 1024 ** " kmgt".index(unit or " ") / 2**20
    except OverflowError:  # an integer too large for a float
        raise ValueError(f"'{value}' is not a byte value a host could have") from None
    if not math.isfinite(mib):  # .inf, .nan, 1e400
        raise ValueError(f"'{value}' is not a byte value a host could have")
    return max(1, math.ceil(mib))


def cpu_units(value: object) -> int:
    """Compose cpus (a fraction of a CPU) in ECS CPU units (1024 per vCPU)."""
    try:
        cpus = float(value)
    except OverflowError:  # an integer too large for a float
        raise ValueError(f"'{value}' is not a number of CPUs a host could have") from None
    if not math.isfinite(cpus) or cpus < 0:  # .inf and .nan are floats too
        raise ValueError(f"'{value}' is not a number of CPUs")
    return round(cpus * 1024)
