"""``serve``: run a worker as a process until SIGINT or SIGTERM."""

from __future__ import annotations

import functools
import gc
import logging
import signal
import threading

import trio

from ._client import AsyncOmniQ
from .config import Settings
from .errors import ConfigError, StoreUnavailableError
from .logging import configure_logging, worker_logger
from .worker import WorkerPool

__all__ = ["EX_TEMPFAIL", "serve"]

#: The exit status of a worker process whose store stayed unavailable (sysexits.h):
#: a temporary failure, worth a restart.
EX_TEMPFAIL = 75


async def serve(
    settings: Settings | None = None,
    *,
    task_status: trio.TaskStatus[WorkerPool] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a worker pool from ``settings`` (default ``Settings.from_env()``) until stopped.

    ``trio.run(omniq_trio.serve)`` runs it as a process: the first SIGINT or
    SIGTERM stops it gracefully (running tasks get ``shutdown_timeout``), a
    second one stops it at once (running tasks go back to the queue, nothing is
    lost). If the store stays unavailable for ``store_failure_timeout``, the
    process exits with status 75 (``SystemExit(75)``, EX_TEMPFAIL) so that its
    supervisor restarts it. ``await nursery.start(omniq_trio.serve, settings)``
    embeds it and returns the running ``WorkerPool``; stop it with
    ``pool.stop()`` or by cancelling; there a store that stays unavailable
    raises :class:`~omniq_trio.errors.StoreUnavailableError` instead. The pool
    imports the modules of ``settings.imports`` first.

    With ``settings.metrics_port``, the pool's Prometheus metrics are served at
    ``http://metrics_host:metrics_port/metrics`` (the address is logged once it
    listens).
    """
    as_process = task_status is trio.TASK_STATUS_IGNORED
    try:
        await run_worker(settings, task_status=task_status)
    except BaseException as exc:
        unavailable = _store_unavailable(exc)
        if unavailable is None or not as_process:
            raise
        raise SystemExit(EX_TEMPFAIL) from unavailable


def _store_unavailable(exc: BaseException) -> StoreUnavailableError | None:
    """The ``StoreUnavailableError`` ``exc`` is, or is alone in (nested groups)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, StoreUnavailableError) else None


async def run_worker(
    settings: Settings | None = None,
    *,
    task_status: trio.TaskStatus[WorkerPool] = trio.TASK_STATUS_IGNORED,
) -> None:
    """:func:`serve`, raising ``StoreUnavailableError`` (alone, not in a group) rather
    than exiting, for the ``omniq-trio worker`` command."""
    try:
        await _serve(settings, task_status=task_status)
    except BaseException as exc:
        unavailable = _store_unavailable(exc)
        if unavailable is None:
            raise
        raise unavailable from None


async def _serve(settings: Settings | None, *, task_status: trio.TaskStatus[WorkerPool]) -> None:
    settings = Settings.from_env() if settings is None else settings
    if not logging.getLogger().handlers:
        configure_logging(settings.log_level)
    async with AsyncOmniQ(settings) as omniq, trio.open_nursery() as nursery:
        pool = omniq.worker()
        if settings.metrics_port is not None:
            await nursery.start(_serve_metrics, pool)
        if threading.current_thread() is threading.main_thread():
            await nursery.start(_stop_on_signals, pool)
            # This process is ours: spare the cyclic collector from rescanning
            # what start-up loaded (modules, settings, the store's state).
            gc.freeze()
        await pool.run(task_status=task_status)
        nursery.cancel_scope.cancel()


async def _serve_metrics(
    pool: WorkerPool, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    try:
        from .metrics import WorkerMetrics, serve_metrics
    except ImportError as exc:
        raise ConfigError(
            f"metrics_port needs prometheus-client ({exc}): pip install 'omniq-trio[metrics]'"
        ) from None
    settings = pool.settings
    metrics = WorkerMetrics(pool)
    pool.add_hook(metrics)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            functools.partial(
                serve_metrics,
                metrics.render,
                host=settings.metrics_host,
                port=settings.metrics_port or 0,
            )
        )
        worker_logger.info("worker %s metrics at %s", pool.worker_id, url, extra={"url": url})
        task_status.started()


async def _stop_on_signals(
    pool: WorkerPool, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        received = 0
        async for signum in signals:
            received += 1
            name = signal.Signals(signum).name
            if received == 1:
                running = pool.statistics().tasks_running
                worker_logger.warning(
                    "%s received: stopping gracefully, %d task(s) still finishing "
                    "(up to %ss); send it again to stop now",
                    name,
                    running,
                    pool.settings.shutdown_timeout,
                )
                pool.stop_nowait()
            else:
                worker_logger.warning(
                    "%s received again: stopping now; running tasks go back to the queue", name
                )
                pool.stop_nowait(timeout=0)
