"""Task functions the benchmarks enqueue."""

from __future__ import annotations

import time


async def noop() -> None:
    """Does nothing: what is measured is the queue."""


async def since(enqueued_at: float) -> float:
    """Seconds from enqueue (wall clock) to the start of this run."""
    return time.time() - enqueued_at


def noop_sync() -> None:
    """Does nothing, in a worker thread: what is measured is the queue and the thread hop."""
