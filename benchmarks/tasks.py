"""Task functions the benchmarks enqueue."""

from __future__ import annotations

import time
from pathlib import Path


async def noop() -> None:
    """Does nothing: what is measured is the queue."""


async def since(enqueued_at: float) -> float:
    """Seconds from enqueue (wall clock) to the start of this run."""
    return time.time() - enqueued_at


def noop_sync() -> None:
    """Does nothing, in a worker thread: what is measured is the queue and the thread hop."""


async def cancel_wait(marker_dir: str, key: str) -> None:
    """Write ``key.started``, then sleep until cancelled; the ``finally`` writes
    ``key.finally`` holding the wall time it ran (``benchmarks.cancel_delay``)."""
    import trio

    markers = Path(marker_dir)
    (markers / f"{key}.started").write_text("")
    try:
        await trio.sleep(3600)
    finally:
        now = time.time()
        tmp = markers / f"{key}.tmp"
        tmp.write_text(repr(now))
        tmp.rename(markers / f"{key}.finally")  # whole, once it appears
