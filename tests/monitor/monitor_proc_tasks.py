"""Tasks of the monitoring process tests; their worker imports this module."""

from __future__ import annotations


def add(a: int, b: int) -> int:
    return a + b


def boom() -> None:
    raise ValueError("boom")
