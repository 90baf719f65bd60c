"""The checks every public entry point applies to numbers, names and lists, in one place.

Each check raises the error class its caller names (``ConfigError`` for
settings, ``TaskOptionError`` for enqueue options, ...) with a message that
names the value and what would be right, and returns the value normalised.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .errors import OmniQError

__all__ = [
    "QUEUE_NAME",
    "check_identifier",
    "check_int",
    "check_number",
    "check_queue_name",
    "check_seconds",
    "format_queue_caps",
    "is_number",
    "parse_queue_caps",
    "to_tuple",
]


#: What a queue name may be: letters, digits and ``_ . : -``, starting with a
#: letter or digit, at most 100 characters (it appears in metrics labels and URLs).
QUEUE_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def is_number(value: object) -> bool:
    """A finite int or float (bools are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_number(
    value: object,
    *,
    name: str,
    error: type[OmniQError],
    minimum: float | None = None,
    exclusive: bool = False,
    maximum: float | None = None,
) -> float:
    """A finite number within ``[minimum, maximum]`` (``minimum`` excluded if ``exclusive``)."""
    if (
        not is_number(value)
        or (minimum is not None and (value < minimum or (exclusive and value == minimum)))  # type: ignore[operator]
        or (maximum is not None and value > maximum)  # type: ignore[operator]
    ):
        raise error(f"{name} must be {_bounds(minimum, exclusive, maximum)}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_int(
    value: object, *, name: str, error: type[OmniQError], minimum: int | None = None
) -> int:
    """An int (not a bool), at least ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
    ):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise error(f"{name} must be an integer{bound}, got {value!r}")
    return value


def check_seconds(
    value: object, *, name: str, error: type[OmniQError], allow_zero: bool = True
) -> float:
    """A duration: seconds (int or float) or a ``timedelta``, >= 0 (or > 0)."""
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if not is_number(value):
        raise error(f"{name} must be a number of seconds or a timedelta, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):  # type: ignore[operator]
        raise error(f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_identifier(value: object, *, name: str, error: type[OmniQError]) -> str:
    """A lower-case identifier (a PostgreSQL schema name, say)."""
    if not (isinstance(value, str) and value.isidentifier() and value.lower() == value):
        raise error(f"{name} must be a lower-case identifier (letters, digits, _), got {value!r}")
    return value


def check_queue_name(value: object, *, error: type[OmniQError], name: str = "queue") -> str:
    """A queue name (see :data:`QUEUE_NAME`)."""
    if not (isinstance(value, str) and QUEUE_NAME.match(value)):
        raise error(
            f"{name} must be a queue name (letters, digits and _ . : -, starting with a "
            f"letter or digit, at most 100 characters), got {value!r}"
        )
    return value


def parse_queue_caps(
    value: object, *, error: type[OmniQError], name: str = "queues"
) -> dict[str, int | None]:
    """Queues and their caps, from a mapping ``{"emails": 2, "default": None}``, a list
    of names, or entries written ``NAME`` or ``NAME=CAP`` (in a list, or
    comma-separated in one string: ``"emails=2,default"``). ``None``: no cap."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    pairs: list[tuple[object, object]]
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, Iterable):
        pairs = []
        for entry in value:
            if not isinstance(entry, str):
                raise error(f"{name} entries must be queue names, got {entry!r}")
            queue_text, sep, cap_text = entry.strip().partition("=")
            pairs.append((queue_text.strip(), cap_text.strip() if sep else None))
    else:
        raise error(
            f"{name} must be a list of queue names or a mapping of names to caps, got {value!r}"
        )
    caps: dict[str, int | None] = {}
    for given, cap in pairs:
        queue = check_queue_name(given, error=error, name=f"{name} entry")
        if queue in caps:
            raise error(f"{name} names queue {queue!r} twice")
        if isinstance(cap, str):
            if not cap.isdigit():
                raise error(
                    f"{name}: the cap of {queue!r} must be a whole number >= 1, "
                    f"got {cap!r} (write NAME=CAP, e.g. emails=2)"
                )
            cap = int(cap)
        caps[queue] = (
            None
            if cap is None
            else check_int(cap, name=f"{name}: the cap of {queue!r}", error=error, minimum=1)
        )
    return caps


def format_queue_caps(caps: Mapping[str, int | None]) -> tuple[str, ...]:
    """The ``NAME`` / ``NAME=CAP`` entries of ``caps`` (as ``OMNIQ_QUEUES`` writes them)."""
    return tuple(queue if cap is None else f"{queue}={cap}" for queue, cap in caps.items())


def to_tuple(values: Iterable[Any]) -> tuple[Any, ...]:
    """``tuple`` as a typed converter: with plain ``tuple`` (or a generic one),
    type checkers see the parameter as ``Iterable[T]`` and reject every argument."""
    return tuple(values)


def _bounds(minimum: float | None, exclusive: bool, maximum: float | None) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if exclusive else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return "a finite number" + (" " + " and ".join(parts) if parts else "")
