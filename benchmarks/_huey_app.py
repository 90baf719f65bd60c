"""The huey side's app: SqliteHuey with fsync on, and the tasks it runs.

The database path comes from ``BENCH_HUEY_DB`` (set by the conductor), so
that producer, consumer and monitor processes open the same one.
"""

from __future__ import annotations

import os
import time

from huey import SqliteHuey

# fsync=True: SQLite's synchronous=FULL (WAL mode): each commit is synced, as
# omniq_trio's fsync="always" syncs each acknowledged enqueue
huey = SqliteHuey("omniq-bench", filename=os.environ["BENCH_HUEY_DB"], fsync=True)


@huey.task()
def noop_sync() -> None:
    """Does nothing."""


@huey.task()
def since(enqueued_at: float) -> float:
    """Seconds from enqueue (wall clock) to the start of this run."""
    return time.time() - enqueued_at
