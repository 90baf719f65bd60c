"""Log events of omniq_trio, on the standard ``logging`` module.

Everything is logged under the ``omniq_trio`` logger (children:
``omniq_trio.worker``, ``omniq_trio.store``). Its level comes from
``OMNIQ_LOG_LEVEL`` when set. Library code never installs handlers; the
worker process (``serve``, ``omniq-trio worker``) calls
:func:`configure_logging`. Task events carry ``task_id``, ``func`` and
``attempt`` as record attributes for structured handlers.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Task, TaskError

__all__ = [
    "configure_logging",
    "log_task_failed",
    "log_task_released",
    "log_task_retrying",
    "log_task_started",
    "log_task_succeeded",
    "log_worker_started",
    "log_worker_stopped",
    "logger",
]

logger = logging.getLogger("omniq_trio")
worker_logger = logging.getLogger("omniq_trio.worker")

if _level := os.environ.get("OMNIQ_LOG_LEVEL"):
    logger.setLevel(_level.upper())

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str | int | None = None) -> None:
    """Send omniq_trio's log to stderr (once), at ``level`` or ``OMNIQ_LOG_LEVEL`` or INFO."""
    level = level or os.environ.get("OMNIQ_LOG_LEVEL") or "INFO"
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    if not any(getattr(h, "_omniq", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._omniq = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


def log_worker_started(*, concurrency: int, poll_interval: float, worker_id: str = "") -> None:
    """A worker pool started."""
    worker_logger.info(
        "worker %sstarted (concurrency=%d, poll_interval=%ss)",
        f"{worker_id} " if worker_id else "",
        concurrency,
        poll_interval,
        extra={"worker_id": worker_id, "concurrency": concurrency, "poll_interval": poll_interval},
    )


def log_worker_stopped(*, tasks_processed: int, uptime: float, worker_id: str = "") -> None:
    """A worker pool stopped."""
    worker_logger.info(
        "worker %sstopped after %.1fs (%d tasks processed)",
        f"{worker_id} " if worker_id else "",
        uptime,
        tasks_processed,
        extra={"worker_id": worker_id, "tasks_processed": tasks_processed, "uptime": uptime},
    )


def _task_extra(task: Task, **more: Any) -> dict[str, Any]:
    return {"task_id": task.id, "func": task.func, "attempt": task.attempts + 1, **more}


def log_task_started(task: Task) -> None:
    if not worker_logger.isEnabledFor(logging.DEBUG):
        return
    worker_logger.debug(
        "task %s started: %s (attempt %d)",
        task.id,
        task.func,
        task.attempts + 1,
        extra=_task_extra(task),
    )


def log_task_succeeded(task: Task, duration: float) -> None:
    if not worker_logger.isEnabledFor(logging.DEBUG):
        return
    worker_logger.debug(
        "task %s succeeded in %.3fs: %s (attempt %d)",
        task.id,
        duration,
        task.func,
        task.attempts + 1,
        extra=_task_extra(task, duration=duration),
    )


def log_task_failed(task: Task, error: TaskError) -> None:
    worker_logger.error(
        "task %s failed: %s (attempt %d): %s",
        task.id,
        task.func,
        task.attempts + 1,
        error,
        extra=_task_extra(task, error=str(error)),
    )


def log_task_retrying(task: Task, error: TaskError, delay: float) -> None:
    worker_logger.warning(
        "task %s will retry in %.2fs: %s (attempt %d of %d): %s",
        task.id,
        delay,
        task.func,
        task.attempts + 1,
        task.max_retries + 1,
        error,
        extra=_task_extra(task, error=str(error), delay=delay),
    )


def log_task_released(task_ids: Sequence[str], reason: str) -> None:
    """Tasks went back to PENDING without a charge (stop deadline, lease expiry)."""
    if task_ids:
        worker_logger.warning(
            "%d task(s) released back to the queue (%s): %s",
            len(task_ids),
            reason,
            ", ".join(task_ids),
            extra={"task_ids": task_ids, "reason": reason},
        )
