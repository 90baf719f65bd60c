"""Counters a worker pool keeps, and the snapshot it hands out."""

from __future__ import annotations

import attrs

__all__ = ["Counters", "PoolStatistics"]


@attrs.define(eq=False)
class Counters:
    """Running totals of one pool, all on its trio thread (no lock needed).

    The executors (``TaskRunner``) count ``running``, ``released`` (runs
    the stop interrupted) and ``cancelled`` (runs their task's cancel
    interrupted); the recorder counts ``processed``, ``succeeded``,
    ``failed`` and ``retried`` once the store has taken each outcome.
    """

    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    cancelled: int = 0
    running: int = 0
    #: ids of the tasks executing now (for the worker registry)
    running_ids: set[str] = attrs.Factory(set)


@attrs.frozen
class PoolStatistics:
    """A snapshot of a worker pool's counters (``WorkerPool.statistics()``)."""

    #: Runs that finished, whatever the outcome, once the store took the outcome.
    tasks_processed: int
    tasks_succeeded: int
    #: Runs that failed with no retry left.
    tasks_failed: int
    #: Runs that failed and were scheduled to run again.
    tasks_retried: int
    #: Runs the stop interrupted at its deadline, handed back to the queue
    #: (tasks claimed but not yet started when the pool stopped go back too,
    #: uncounted: they never ran).
    tasks_released: int
    #: Tasks executing right now.
    tasks_running: int
    #: Seconds since the pool started (trio time), 0 before it has.
    uptime: float
    #: Runs interrupted because their task was cancelled (or was no longer this
    #: pool's); their outcome was dropped.
    tasks_cancelled: int = 0
