"""A queue for tests: the memory store, sync tasks inline, retries without jitter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from .._client import AsyncOmniQ
from ..config import Settings

__all__ = ["TEST_SETTINGS", "open_test_omniq"]

#: The settings :func:`open_test_omniq` and the ``omniq`` fixture start from.
#: ``sync_tasks="inline"`` keeps sync task functions on the trio thread, where
#: trio's MockClock can see them (a thread would let autojump advance virtual
#: time while it runs); ``retry_jitter=0`` makes every retry land at an exact,
#: predictable time.
TEST_SETTINGS: Final = Settings(backend="memory", sync_tasks="inline", retry_jitter=0)


@asynccontextmanager
async def open_test_omniq(
    settings: Settings | None = None, **overrides: Any
) -> AsyncIterator[AsyncOmniQ]:
    """An open ``AsyncOmniQ`` on a fresh memory store, closed on exit.

    ``settings`` defaults to :data:`TEST_SETTINGS`; ``overrides`` change
    fields of it (``open_test_omniq(max_retries=...)`` is an error: use
    ``default_max_retries=3``). Stored times follow the running trio clock,
    so under ``trio.testing.MockClock`` every eta, backoff and timeout is
    virtual.
    """
    settings = TEST_SETTINGS if settings is None else settings
    if overrides:
        settings = settings.evolve(**overrides)
    async with AsyncOmniQ(settings) as omniq:
        yield omniq
