"""``StoreMetrics``: gauges of the whole store, read through a client at each scrape.

Served once per store (by ``omniq-trio metrics`` or the dashboard), not by
every worker: queue-depth alerts then work while every worker is down, and no
series is repeated per worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import Final, TypeVar, final

import attrs
import trio
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .._client import AsyncOmniQ
from ..logging import logger
from ..models import QueueInfo, TaskStatus, WorkerInfo
from ..store import StoreStats
from ._exposition import render
from ._names import LABEL_QUEUE, LABEL_STATUS

__all__ = ["StoreMetrics"]

T = TypeVar("T")

#: Seconds a store read may take before the scrape reports the store down.
READ_TIMEOUT: Final = 10.0


@attrs.frozen
class _Snapshot:
    """What one read of the store found (``stats`` is ``None``: the read failed)."""

    at: float
    read_seconds: float
    stats: StoreStats | None
    workers: list[WorkerInfo] | None
    queues: list[QueueInfo] | None


@final
class StoreMetrics(Collector):
    """The store's gauges: tasks by queue and status, the age of the oldest waiting
    task, live workers, paused queues, and whether the store answered.

    Each scrape (:meth:`render`) reads the store through ``omniq`` (``stats``,
    ``list_workers``, ``list_queues``); a read that fails or takes longer than
    a few seconds gives ``omniq_store_up 0`` and no other series. Parts a
    store does not implement are left out.
    """

    def __init__(self, omniq: AsyncOmniQ) -> None:
        self._omniq = omniq
        self._snapshot: _Snapshot | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    async def refresh(self) -> None:
        """Read the store now (the next :meth:`collect` reports what was read)."""
        omniq = self._omniq
        started = trio.current_time()
        stats = workers = queues = None
        with trio.move_on_after(READ_TIMEOUT) as scope:
            try:
                stats = await omniq.stats()
                workers = await _optional(omniq.list_workers())
                queues = await _optional(omniq.list_queues())
            except Exception:
                logger.exception("reading the store for its metrics failed")
                stats = None
        if scope.cancelled_caught:
            logger.error("reading the store for its metrics took over %ss", READ_TIMEOUT)
            stats = None
        self._snapshot = _Snapshot(
            omniq.clock.now(), trio.current_time() - started, stats, workers, queues
        )

    async def render(self, accept: str = "") -> tuple[bytes, str]:
        """Read the store, and return the gauges in the exposition format ``accept``
        asks for (Prometheus text by default), with its content type."""
        await self.refresh()
        return render(self.registry, accept)

    def describe(self) -> list[Metric]:
        return []  # read only when scraped, never at registration

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot
        if snapshot is None:
            return
        stats = snapshot.stats
        up = int(stats is not None)
        yield GaugeMetricFamily("omniq_store_up", "1 if the last read of the store worked.", up)
        yield GaugeMetricFamily(
            "omniq_store_read_seconds",
            "Seconds the read of the store for this scrape took.",
            snapshot.read_seconds,
        )
        if stats is None:
            return
        yield _tasks(stats)
        oldest = stats.oldest_due_eta
        yield GaugeMetricFamily(
            "omniq_oldest_waiting_task_age_seconds",
            "Seconds the oldest due task (PENDING or RETRYING, eta passed) has waited "
            "to start; 0 when none waits.",
            0.0 if oldest is None else max(0.0, snapshot.at - oldest),
        )
        if snapshot.workers is not None:
            yield from _workers(snapshot.workers)
        if snapshot.queues is not None:
            paused = GaugeMetricFamily(
                "omniq_queue_paused", "1 for a paused queue, else 0.", labels=(LABEL_QUEUE,)
            )
            for queue in snapshot.queues:
                paused.add_metric((queue.name,), int(queue.paused))
            yield paused


def _tasks(stats: StoreStats) -> GaugeMetricFamily:
    tasks = GaugeMetricFamily(
        "omniq_tasks",
        "Tasks in the store, by queue and status (every status of every queue, zeros included).",
        labels=(LABEL_QUEUE, LABEL_STATUS),
    )
    for queue, counts in sorted(stats.queues.items()):
        for status in TaskStatus:
            tasks.add_metric((queue, status.value), counts.get(status, 0))
    return tasks


def _workers(workers: list[WorkerInfo]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "omniq_workers_live",
        "Worker pools whose heartbeat has not expired, in any process.",
        len(workers),
    )
    yield GaugeMetricFamily(
        "omniq_workers_concurrency",
        "Tasks the live worker pools run at once at most, together.",
        sum(w.concurrency for w in workers),
    )
    yield GaugeMetricFamily(
        "omniq_workers_running_tasks",
        "Tasks the live worker pools were running at their last heartbeat, together.",
        sum(len(w.running) for w in workers),
    )


async def _optional(read: Awaitable[T]) -> T | None:
    """``await read``, or ``None`` if the store does not implement it."""
    try:
        return await read
    except NotImplementedError:
        return None
