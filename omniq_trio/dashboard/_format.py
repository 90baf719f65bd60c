"""How the pages write times, durations and stored values (Jinja filters)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Final

__all__ = ["FILTERS", "age", "pretty", "relative", "timestamp"]

#: Characters of one stored value shown on a page; the rest is cut (the CLI's
#: ``inspect --json`` shows it whole).
MAX_VALUE_CHARS: Final = 20_000


def age(seconds: float | None) -> str:
    """A short duration: ``12 ms``, ``4.5s``, ``45s``, ``3m 12s``, ``2h 5m``, ``3d 4h``."""
    if seconds is None:
        return "-"
    if 0 <= seconds < 1 and seconds != 0:
        return f"{max(1, round(seconds * 1000))} ms"
    if 0 <= seconds < 10 and seconds != math.floor(seconds):
        return f"{seconds:.1f}s"
    whole = max(0, math.floor(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size or (unit == "s" and not parts):
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return " ".join(parts[:2])


def timestamp(at: float | None) -> str:
    """Local date and time to the second, ``2024-05-01 12:03:04``."""
    if at is None:
        return "-"
    return f"{dt.datetime.fromtimestamp(at).astimezone():%Y-%m-%d %H:%M:%S}"


def clock(at: float | None) -> str:
    """Local time of day, ``12:03:04``."""
    if at is None:
        return "-"
    return f"{dt.datetime.fromtimestamp(at).astimezone():%H:%M:%S}"


def relative(at: float | None, now: float) -> str:
    """How long ago (or ahead) ``at`` is: ``3m 12s ago``, ``in 5s``."""
    if at is None:
        return ""
    delta = now - at
    return f"{age(delta)} ago" if delta >= 0 else f"in {age(-delta)}"


def pretty(value: Any) -> str:
    """A stored value as indented JSON (``repr`` for what JSON cannot say), cut when long."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=repr, sort_keys=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"\n... ({len(text) - MAX_VALUE_CHARS} more characters)"
    return text


def call(func: str, args: Any, kwargs: Any) -> str:
    """A task's call on one line, ``app.tasks:send(1, to='ada')``, cut at 120 characters."""
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in dict(kwargs).items()]
    text = f"{func.rpartition(':')[2]}({', '.join(parts)})"
    return text if len(text) <= 120 else text[:119] + "\u2026"


def _short(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def utc_offset() -> str:
    """The server's UTC offset, which every time on the pages is in: ``UTC+02:00``."""
    offset = dt.datetime.now().astimezone().strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


#: The filters the templates use.
FILTERS: Final = {
    "age": age,
    "timestamp": timestamp,
    "clock": clock,
    "relative": relative,
    "pretty": pretty,
}
