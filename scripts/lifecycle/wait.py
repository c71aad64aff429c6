"""Waits a person can see: what is awaited, for how long so far, and what they can do meanwhile.

A boto3 waiter blocks without a word for as long as its operation takes (an hour for a stack held
by a service that never stabilizes). `shown` runs beside it: on a terminal one line rewritten in
place every second; elsewhere (CI, a pipe) the line at once and again every EVERY seconds, so a
log shows the wait went on.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator

EVERY = 30  # seconds between lines without a terminal


def elapsed(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@contextlib.contextmanager
def shown(what: str, advice: str, out=None, after: float = 0) -> Iterator[None]:
    """Show `what (elapsed; advice)` while the block runs; a block done within `after` seconds
    shows nothing (most change sets are made in a second or two)."""
    out = out or sys.stdout
    terminal = out.isatty()
    began = time.monotonic()
    stop = threading.Event()

    def line() -> str:
        return f"{what} ({elapsed(time.monotonic() - began)}; {advice})"

    def first() -> None:
        print(line(), end="" if terminal else "\n", file=out, flush=True)
        visible.set()

    def tick() -> None:
        if after and (stop.wait(after) or first()):
            return
        while not stop.wait(1 if terminal else EVERY):
            if terminal:
                out.write(f"\r{line()}\x1b[K")
                out.flush()
            else:
                print(line(), file=out, flush=True)

    visible = threading.Event()
    if not after:
        first()
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        if terminal and visible.is_set():
            out.write(f"\r{line()}\x1b[K\n")
            out.flush()
