"""``WorkerMetrics``: a worker pool's own counters, fed by its hooks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..hooks import HookEvent, RunEnded, RunStarted
from ..worker import WorkerPool
from ._exposition import render
from ._names import (
    DURATION_BUCKETS,
    LABEL_FUNCTION,
    LABEL_HOSTNAME,
    LABEL_OUTCOME,
    LABEL_QUEUE,
    LABEL_WORKER_ID,
    WAIT_BUCKETS,
)

__all__ = ["WorkerMetrics"]


@final
class WorkerMetrics:
    """The metrics of one worker pool, in a registry of its own (never the global one,
    so that several pools in one process, and tests, do not collide).

    It is a hook: ``pool.add_hook(metrics)`` before the pool runs, as
    ``omniq-trio worker --metrics-port`` does. Serve :attr:`registry` with
    :func:`~omniq_trio.metrics.serve_metrics` (``metrics.render``), or with any
    ``prometheus_client`` exposition.
    """

    def __init__(self, pool: WorkerPool, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        labels = (LABEL_FUNCTION, LABEL_QUEUE)
        self._runs = Counter(
            "omniq_worker_runs",
            "Runs this worker ended, by function, queue and outcome.",
            (*labels, LABEL_OUTCOME),
            registry=self.registry,
        )
        self._started = Counter(
            "omniq_worker_runs_started",
            "Runs this worker started, by function and queue.",
            labels,
            registry=self.registry,
        )
        self._duration = Histogram(
            "omniq_worker_run_duration_seconds",
            "How long runs took, by function and queue (lost runs are not timed).",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._wait = Histogram(
            "omniq_worker_task_wait_seconds",
            "How long tasks waited, from when they were due (enqueued, or their retry or "
            "delay came) to the start of their run on this worker, by queue.",
            (LABEL_QUEUE,),
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_PoolGauges(pool))

    def __call__(self, event: HookEvent) -> None:
        """The hook: count what the event says."""
        if isinstance(event, RunEnded):
            task = event.task
            self._runs.labels(task.func, task.queue, event.outcome.value).inc()
            if event.duration is not None:
                self._duration.labels(task.func, task.queue).observe(event.duration)
        elif isinstance(event, RunStarted):
            self._started.labels(event.task.func, event.task.queue).inc()
            self._wait.labels(event.task.queue).observe(event.wait)

    async def render(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the exposition format ``accept`` asks for (Prometheus text
        by default): the body and its content type."""
        return render(self.registry, accept)


@final
class _PoolGauges(Collector):
    """What the pool says of itself at the moment of a scrape."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._hostname = socket.gethostname()

    def collect(self) -> Iterator[Metric]:
        pool = self._pool
        stats = pool.statistics()
        yield GaugeMetricFamily(
            "omniq_worker_running_tasks", "Tasks this worker is running now.", stats.tasks_running
        )
        yield GaugeMetricFamily(
            "omniq_worker_concurrency", "Tasks this worker runs at once at most.", pool.concurrency
        )
        yield GaugeMetricFamily(
            "omniq_worker_uptime_seconds", "Seconds since this worker started.", stats.uptime
        )
        info = GaugeMetricFamily(
            "omniq_worker_info",
            "This worker's id (as `omniq-trio workers` lists it) and host; always 1.",
            labels=(LABEL_WORKER_ID, LABEL_HOSTNAME),
        )
        info.add_metric((pool.worker_id, self._hostname), 1)
        yield info
