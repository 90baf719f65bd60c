"""``Call``: a request to run a function later, and its checks, before anything is stored."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from ._codec import Codec
from ._functions import func_path
from ._limits import check_call_size
from ._validate import check_int, check_queue_name, check_seconds, is_number, to_tuple
from .config import Settings
from .errors import TaskOptionError
from .models import DEFAULT_QUEUE, Task

__all__ = ["MAX_HEADER_BYTES", "RESERVED_OPTIONS", "Call", "Eta", "Seconds", "build_task"]

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
        "queue",
        "unique_key",
        "unique_for",
        "max_lost_runs",
        "headers",
        "connection",
        "task_kwargs",
    }
)

#: Most bytes of headers (keys and values, UTF-8) a task may carry: they ride
#: along in every listing, so they are for small metadata (trace context).
MAX_HEADER_BYTES: Final = 4096
#: Longest unique key, in characters.
MAX_UNIQUE_KEY: Final = 500

Seconds = float | int | dt.timedelta
#: When a task may run: an aware datetime, or seconds since the epoch.
Eta = dt.datetime | float | int


@attrs.frozen(kw_only=True)
class Call:
    """One task to enqueue: ``Call(func, args, kwargs, delay=..., priority=...)``.

    ``func`` is a module-level function or a ``"module:qualname"`` string.
    ``eta`` is an aware ``datetime`` or seconds since the epoch; ``delay``,
    ``interval``, ``timeout`` and ``unique_for`` are seconds or ``timedelta``.
    Options left as ``None`` take their default from the function's
    ``@omniq_trio.task(...)`` (when ``func`` is the function object), then
    from :class:`~omniq_trio.config.Settings` (``priority``: 0,
    ``retry_on_timeout``: False).
    """

    func: Callable[..., Any] | str = attrs.field(kw_only=False)
    args: tuple[Any, ...] = attrs.field(default=(), converter=to_tuple, kw_only=False)
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, kw_only=False)
    eta: Eta | None = None
    delay: Seconds | None = None
    interval: Seconds | None = None
    max_retries: int | None = None
    timeout: Seconds | None = None
    priority: int | None = None
    retry_on_timeout: bool | None = None
    #: The named queue (default ``"default"``).
    queue: str | None = None
    #: While a task with this key has not finished, enqueuing it again creates nothing.
    unique_key: str | None = None
    #: ... nor within this many seconds after it finished.
    unique_for: Seconds | None = None
    #: Runs that may be lost to dead workers (default ``Settings.max_lost_runs``).
    max_lost_runs: int | None = None
    #: Small string metadata carried with the task.
    headers: Mapping[str, str] | None = None


def _eta(value: Eta) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise TaskOptionError(
                "eta must be a timezone-aware datetime (e.g. datetime.now(timezone.utc)); "
                f"got naive {value!r}"
            )
        return value.timestamp()
    if not is_number(value):
        raise TaskOptionError(f"eta must be an aware datetime or epoch seconds, got {value!r}")
    return float(value)


def _seconds(name: str, value: Seconds | None, *, allow_zero: bool) -> float | None:
    if value is None:
        return None
    return check_seconds(value, name=name, error=TaskOptionError, allow_zero=allow_zero)


def _unique_key(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_UNIQUE_KEY:
        raise TaskOptionError(
            f"unique_key must be a non-empty string of at most {MAX_UNIQUE_KEY} characters, "
            f"got {value!r}"
        )
    return value


def _headers(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TaskOptionError(f"headers must be a mapping of strings to strings, got {value!r}")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
    if size > MAX_HEADER_BYTES:
        raise TaskOptionError(f"headers take {size} bytes; at most {MAX_HEADER_BYTES} are allowed")
    return dict(value)


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
    max_lost = settings.max_lost_runs if call.max_lost_runs is None else call.max_lost_runs
    queue = DEFAULT_QUEUE if call.queue is None else call.queue
    unique_key = _unique_key(call.unique_key)
    unique_for = _seconds("unique_for", call.unique_for, allow_zero=True)
    if unique_for is not None and unique_key is None:
        raise TaskOptionError("unique_for needs a unique_key")
    args, kwargs = codec.encode_args(call.args, call.kwargs)
    check_call_size(path, args, kwargs, limit=settings.max_task_bytes)
    return Task(
        # 128 random bits as 32 hex digits, as uuid4().hex looks, at a fifth of its cost
        id=os.urandom(16).hex(),
        func=path,
        args=args,
        kwargs=kwargs,
        priority=0
        if call.priority is None
        else check_int(call.priority, name="priority", error=TaskOptionError),
        eta=eta,
        interval=_seconds("interval", call.interval, allow_zero=False),
        max_retries=check_int(max_retries, name="max_retries", error=TaskOptionError, minimum=0),
        timeout=settings.default_timeout if timeout is None else timeout,
        retry_on_timeout=bool(call.retry_on_timeout),
        created_at=now,
        queue=check_queue_name(queue, error=TaskOptionError),
        unique_key=unique_key,
        unique_for=unique_for,
        scheduled_at=eta,
        max_lost_runs=check_int(max_lost, name="max_lost_runs", error=TaskOptionError, minimum=0),
        headers=_headers(call.headers),
    )
