"""Reading what a user hands the tools (app configs, Compose files, .env files, sources.yaml) in
bounded time and memory, whatever the file holds.

- Size: a file over its cap is refused before it is parsed. An app config or a Compose file is a
  few kilobytes; the caps leave room for hundreds of services.
- Kind: only a regular file is read. A FIFO would block the read until someone writes to it, a
  device (/dev/zero) would never end; the file is opened without blocking and checked first.
- Encoding: UTF-8, or one sentence naming the byte and its offset.
- Nesting: libyaml's composer recurses in C once per level, so tens of thousands of `[` in a few
  kilobytes overflow the C stack (a segfault, not an exception); every walk over the data after it
  recurses in Python. The nodes are composed here, in Python, counting the depth, so a file nested
  deeper than MAX_DEPTH is refused at the line that goes too deep, before any of that runs.
- Aliases: PyYAML shares an aliased node (one object, however often it is named), but everything
  that walks the data afterwards (Compose interpolation, merge keys, the config's conversion)
  visits it once per alias: nine levels of nine aliases in one kilobyte are 9**9 values. Composing
  counts the values each anchor stands for, and refuses a file whose aliases would expand to more
  than MAX_ALIASED values, and an alias to the node it is inside (a cycle, walked forever).
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent

KIB = 1024
# An app config: the DKS one is under 4 KiB; 1 MiB is hundreds of services.
CONFIG_BYTES = 1024 * KIB
# A Compose file or an env file: the same room.
COMPOSE_BYTES = 1024 * KIB
# Levels of nesting: an app config has 5, a Compose file 7 (services.x.deploy.resources.limits.cpus).
MAX_DEPTH = 64
# Values aliases may add to the data once expanded (a Compose file's x- fragments reused by every
# service add hundreds).
MAX_ALIASED = 100_000


class Refused(Exception):
    """A file the tools will not parse; the message is one sentence naming it."""


def read_text(path: Path, limit: int, what: str = "file") -> str:
    """The file's text, or Refused saying why not: not there, not a regular file, too big, not UTF-8."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise Refused(f"cannot read {what} {path}: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = os.strerror(errno.EISDIR) if stat.S_ISDIR(info.st_mode) else \
                "not a regular file (a FIFO, socket or device would block or never end)"
            raise Refused(f"cannot read {what} {path}: {kind}")
        if info.st_size > limit:
            raise Refused(f"{what} {path} is {info.st_size:,} bytes; at most {limit:,} are read")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(limit + 1)
    except OSError as err:
        raise Refused(f"cannot read {what} {path}: {err.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while being read
        raise Refused(f"{what} {path} is over {limit:,} bytes; at most {limit:,} are read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise Refused(f"{what} {path} is not UTF-8 text: byte {data[err.start]:#04x} at offset {err.start} "
                      f"(line {line})") from None


class TooDeep(yaml.composer.ComposerError):
    """Nesting or aliases past the bounds; a YAMLError, so it is reported with its line and column."""


class BoundedComposer(Composer):
    """PyYAML's Composer, counting depth and the values aliases stand for (see the module's docstring).

    Mixed in ahead of a C loader (`class Loader(BoundedComposer, CSafeLoader)`): libyaml still
    parses, this composes.
    """

    def __init__(self, stream):
        # The loader's own __init__ (parser, constructor, resolver), libyaml's or PyYAML's, then the
        # Composer's, which libyaml's loader does not call.
        loader = next(c for c in type(self).__mro__ if c.__module__ in ("yaml.cyaml", "yaml.loader"))
        loader.__init__(self, stream)
        Composer.__init__(self)
        self._depth = 0
        self._values = 0  # values composed so far, each alias counted as what it stands for
        self._aliased = 0  # of which added by aliases
        self._sizes: dict[str, int] = {}  # anchor -> values it stands for
        self._open: set[str] = set()  # anchors of the nodes being composed

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            anchor = event.anchor
            if anchor in self._open:
                raise TooDeep(None, None, f"alias *{anchor} refers to a node it is inside: a cycle no walk "
                                          "over the data ends", event.start_mark)
            size = self._sizes.get(anchor, 1)
            self._values += size
            self._aliased += size
            if self._aliased > MAX_ALIASED:
                raise TooDeep(None, None, f"its aliases expand to more than {MAX_ALIASED:,} values (each alias "
                                          "stands for a copy of what its anchor names)", event.start_mark)
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise TooDeep(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        anchor = getattr(event, "anchor", None)
        start = self._values
        self._values += 1
        self._depth += 1
        if anchor:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor:
                self._open.discard(anchor)
                self._sizes[anchor] = self._values - start


class SafeLoader(BoundedComposer, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader (libyaml's parser when installed), composing within the bounds."""


def load_yaml(text: str, loader: type = SafeLoader) -> object:
    """yaml.load with a bounded loader; raises yaml.YAMLError (TooDeep past the bounds)."""
    return yaml.load(text, Loader=loader)
