"""A terminal a test can look at: a command in a tmux pane of a known size, its screen captured as a person sees it."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT

TMUX = shutil.which("tmux")
EXIT = re.compile(r"^exit=(\d+)$")


class Pane:
    """`command` (argv, run from the project root) in a tmux pane of width x height; its exit code is
    written on the screen afterwards and the pane stays open to be read."""

    def __init__(self, tmp_path: Path, argv: list[str], width: int = 100, height: int = 30, **env: str):
        self.socket = str(tmp_path / "tmux.sock")
        self.height = height
        # rich would take COLUMNS/LINES from the test's environment over the pane's real size.
        environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX", "TMUX_PANE")}
        environment.update(env)
        line = " ".join(_quote(a) for a in argv)
        subprocess.run([TMUX, "-S", self.socket, "-f", "/dev/null", "new-session", "-d", "-x", str(width),
                        "-y", str(height), "-s", "t", f"cd {_quote(str(ROOT))} && {line}; echo exit=$?; sleep 600"],
                       env=environment, check=True, timeout=30)
        self.screens: list[list[str]] = []

    def _tmux(self, *args: str) -> str:
        return subprocess.run([TMUX, "-S", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout

    def screen(self) -> list[str]:
        """The visible screen, one string per row (trailing blanks dropped), remembered in `screens`."""
        rows = self._tmux("capture-pane", "-p", "-t", "t").split("\n")
        rows = rows[:-1] if rows and rows[-1] == "" else rows
        self.screens.append(rows)
        return rows

    def history(self) -> list[str]:
        """Everything the pane printed, scrolled off or not."""
        return self._tmux("capture-pane", "-p", "-S", "-", "-E", "-", "-t", "t").rstrip("\n").split("\n")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def until(self, pattern: str, timeout: float = 60) -> list[str]:
        """The first screen with a row matching `pattern` (a regex); AssertionError with the last screen."""
        wanted = re.compile(pattern)
        deadline = time.monotonic() + timeout
        rows: list[str] = []
        while time.monotonic() < deadline:
            rows = self.screen()
            if any(wanted.search(row) for row in rows):
                return rows
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} on the screen within {timeout}s:\n" + "\n".join(self.history()))

    def exit_code(self, timeout: float = 120) -> int:
        rows = self.until(EXIT.pattern, timeout)
        return int(next(EXIT.match(row).group(1) for row in rows if EXIT.match(row)))

    def close(self) -> None:
        subprocess.run([TMUX, "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


def script(name: str) -> list[str]:
    return [sys.executable, f"scripts/{name}.py"]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
