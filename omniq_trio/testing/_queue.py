"""A queue for tests: the memory store, sync tasks inline, retries without jitter."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from .._client import AsyncOmniQ
from .._clock import Clock
from .._validate import check_number
from ..config import Settings
from ..errors import ConfigError

__all__ = ["TEST_SETTINGS", "open_test_omniq"]

#: The settings :func:`open_test_omniq` and the ``omniq`` fixture start from.
#: ``sync_tasks="inline"`` keeps sync task functions on the trio thread, where
#: trio's MockClock can see them (a thread would let autojump advance virtual
#: time while it runs); ``retry_jitter=0`` makes every retry land at an exact,
#: predictable time.
TEST_SETTINGS: Final = Settings(backend="memory", sync_tasks="inline", retry_jitter=0)


@asynccontextmanager
async def open_test_omniq(
    settings: Settings | None = None,
    *,
    start: dt.datetime | float | None = None,
    **overrides: Any,
) -> AsyncIterator[AsyncOmniQ]:
    """An open ``AsyncOmniQ`` on a fresh memory store, closed on exit.

    ``settings`` defaults to :data:`TEST_SETTINGS`; ``overrides`` change
    fields of it (``open_test_omniq(max_retries=...)`` is an error: use
    ``default_max_retries=3``). Stored times follow the running trio clock,
    so under ``trio.testing.MockClock`` every eta, backoff and timeout is
    virtual. ``start`` (an aware datetime or epoch seconds) is the wall-clock
    time at the MockClock's time 0 (default: the real time when the clock is
    first read), to test a cron schedule on a given day; only a MockClock
    honours it.
    """
    settings = TEST_SETTINGS if settings is None else settings
    if overrides:
        settings = settings.evolve(**overrides)
    clock = None if start is None else Clock(start=_epoch(start))
    async with AsyncOmniQ(settings, clock=clock) as omniq:
        yield omniq


def _epoch(start: dt.datetime | float) -> float:
    if isinstance(start, dt.datetime):
        if start.tzinfo is None:
            raise ConfigError(f"start must be an aware datetime, got naive {start!r}")
        return start.timestamp()
    return check_number(start, name="start", error=ConfigError)
