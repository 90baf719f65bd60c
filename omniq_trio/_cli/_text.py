"""Plain-text output of the ``omniq-trio`` command: tables, ages, dates, JSON.

No colours and no terminal tricks, so that output piped into ``grep`` or a
file reads the same as on screen.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from typing import Any, Final

import attrs

from ..models import Progress, Task, TaskResult

__all__ = ["age", "date", "parse_duration", "percent", "table", "to_json"]

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"``, ``"1w"`` or a plain ``"30"``."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration; write e.g. 90s, 15m, 2h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def age(seconds: float) -> str:
    """A short human duration: ``45s``, ``3m 12s``, ``2h 5m``, ``3d 4h``."""
    seconds = max(0, math.floor(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def date(timestamp: float | None, *, now: float) -> str:
    """Local date and time of ``timestamp``, with how long ago (or ahead) it is."""
    if timestamp is None:
        return "-"
    when = dt.datetime.fromtimestamp(timestamp).astimezone()
    delta = now - timestamp
    relative = f"{age(delta)} ago" if delta >= 0 else f"in {age(-delta)}"
    return f"{when:%Y-%m-%d %H:%M:%S %Z} ({relative})"


def percent(progress: Progress | None) -> str:
    """A task's progress as ``40%`` (``-`` when it reported none)."""
    return "-" if progress is None else f"{math.floor(progress.fraction * 100)}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: int = 0) -> str:
    """Columns separated by two spaces; the last ``right`` columns aligned right."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    first_right = len(headers) - right

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i >= first_right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=True)
    return repr(value)


def to_json(value: Task | TaskResult | dict[str, Any] | list[Any] | None) -> str:
    """JSON for scripts: tasks and results as objects, times as epoch seconds."""
    if isinstance(value, list):
        return json.dumps([_plain(v) if attrs.has(type(v)) else v for v in value], default=_plain)
    return json.dumps(_plain(value) if attrs.has(type(value)) else value, default=_plain)
