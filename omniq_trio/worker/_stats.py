"""Counters a worker pool keeps, and the snapshot it hands out."""

from __future__ import annotations

import attrs

__all__ = ["Counters", "PoolStatistics"]


@attrs.define(eq=False)
class Counters:
    """Running totals, updated by the pool's executors (and only by them)."""

    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    running: int = 0
    #: ids of the tasks executing now (for the worker registry)
    running_ids: set[str] = attrs.Factory(set)


@attrs.frozen
class PoolStatistics:
    """A snapshot of a worker pool's counters (``WorkerPool.statistics()``)."""

    #: Runs that finished, whatever the outcome.
    tasks_processed: int
    tasks_succeeded: int
    #: Runs that failed with no retry left.
    tasks_failed: int
    #: Runs that failed and were scheduled to run again.
    tasks_retried: int
    #: Tasks handed back to the queue unfinished (stop deadline, or never started).
    tasks_released: int
    #: Tasks executing right now.
    tasks_running: int
    #: Seconds since the pool started (trio time), 0 before it has.
    uptime: float
