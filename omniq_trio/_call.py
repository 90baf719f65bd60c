"""``Call``: a request to run a function later, and its checks, before anything is stored."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ._codec import Codec
from ._functions import func_path
from ._limits import check_call_size
from .config import Settings
from .errors import OmniQError
from .models import Task

__all__ = ["RESERVED_OPTIONS", "Call", "TaskOptionError", "build_task"]

#: Keyword arguments of ``enqueue`` that configure the task instead of being
#: passed to it. To pass a task argument with one of these names, put it in
#: ``task_kwargs={...}``.
RESERVED_OPTIONS = frozenset(
    {
        "eta",
        "delay",
        "interval",
        "max_retries",
        "timeout",
        "priority",
        "retry_on_timeout",
        "task_kwargs",
    }
)

Seconds = float | int | dt.timedelta


class TaskOptionError(OmniQError, ValueError):
    """An ``enqueue`` option is invalid (negative delay, eta and delay together, ...)."""


def _to_tuple(args: Iterable[Any]) -> tuple[Any, ...]:
    # a typed converter: with plain `tuple`, type checkers see the parameter as
    # Iterable[_T_co] and reject every argument
    return tuple(args)


@attrs.frozen(kw_only=True)
class Call:
    """One task to enqueue: ``Call(func, args, kwargs, delay=..., priority=...)``.

    ``func`` is a module-level function or a ``"module:qualname"`` string.
    ``eta`` is an aware ``datetime`` or seconds since the epoch; ``delay``,
    ``interval`` and ``timeout`` are seconds or ``timedelta``. Options left as
    ``None`` take their default from the function's ``@omniq_trio.task(...)``
    (when ``func`` is the function object), then from
    :class:`~omniq_trio.config.Settings` (``priority``: 0, ``retry_on_timeout``: False).
    """

    func: Callable[..., Any] | str = attrs.field(kw_only=False)
    args: tuple[Any, ...] = attrs.field(default=(), converter=_to_tuple, kw_only=False)
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, kw_only=False)
    eta: dt.datetime | float | None = None
    delay: Seconds | None = None
    interval: Seconds | None = None
    max_retries: int | None = None
    timeout: Seconds | None = None
    priority: int | None = None
    retry_on_timeout: bool | None = None


def _seconds(name: str, value: Seconds | None, *, allow_zero: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TaskOptionError(f"{name} must be a number of seconds or a timedelta, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise TaskOptionError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}"
        )
    return float(value)


def _eta(value: dt.datetime | float) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise TaskOptionError(
                "eta must be a timezone-aware datetime (e.g. datetime.now(timezone.utc)); "
                f"got naive {value!r}"
            )
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TaskOptionError(f"eta must be an aware datetime or epoch seconds, got {value!r}")
    return float(value)


def _int(name: str, value: object, *, minimum: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
    ):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise TaskOptionError(f"{name} must be an integer{bound}, got {value!r}")
    return value


def build_task(call: Call, *, settings: Settings, codec: Codec, now: float) -> Task:
    """Check ``call`` and make it a new PENDING task (a named error, and nothing stored, if bad)."""
    path = func_path(call.func)
    if not isinstance(call.kwargs, Mapping) or not all(isinstance(k, str) for k in call.kwargs):
        raise TaskOptionError(f"kwargs must be a mapping with string keys, got {call.kwargs!r}")
    if call.eta is not None and call.delay is not None:
        raise TaskOptionError("give eta or delay, not both")
    delay = _seconds("delay", call.delay, allow_zero=True)
    eta = _eta(call.eta) if call.eta is not None else now + (delay or 0.0)
    timeout = _seconds("timeout", call.timeout, allow_zero=False)
    max_retries = settings.default_max_retries if call.max_retries is None else call.max_retries
    args, kwargs = codec.encode_args(call.args, call.kwargs)
    check_call_size(path, args, kwargs, limit=settings.max_task_bytes)
    return Task(
        id=uuid.uuid4().hex,
        func=path,
        args=args,
        kwargs=kwargs,
        priority=0 if call.priority is None else _int("priority", call.priority),
        eta=eta,
        interval=_seconds("interval", call.interval, allow_zero=False),
        max_retries=_int("max_retries", max_retries, minimum=0),
        timeout=settings.default_timeout if timeout is None else timeout,
        retry_on_timeout=bool(call.retry_on_timeout),
        created_at=now,
    )
