"""Counted nouns in messages: one helper, so no message says "1 hosts" or "10 of 10 uploaded, the rest"."""
from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 host`, `3 hosts`; `many` for a plural that is not noun + s (`1 repository`, `2 repositories`)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
