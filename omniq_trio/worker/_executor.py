"""Executors: receive claimed tasks, run them, record what happened.

A task's own failures (an exception, a timeout, a bad return value, a
function that cannot be imported) become its outcome; nothing a task does
stops the executor. Cancellation (the stop deadline) is the one thing that
ends a run early: the task goes back to PENDING with no attempt charged.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, Final

import attrs
import trio

from .._clock import Clock
from .._codec import Codec
from .._functions import resolve_func
from ..config import Settings
from ..errors import LeaseLostError, TaskTimeoutError
from ..logging import (
    log_task_failed,
    log_task_released,
    log_task_retrying,
    log_task_started,
    log_task_succeeded,
    worker_logger,
)
from ..models import Task, TaskError
from ..store import Store
from ._backoff import next_interval_eta, retry_delay
from ._stats import Counters

__all__ = ["TaskRunner", "cleanup_scope", "executor"]

#: Seconds a cleanup write (releasing tasks on stop) may take. It runs
#: shielded from the stop's cancellation, so it needs a limit of its own.
CLEANUP_TIMEOUT: Final = 5.0


def cleanup_scope() -> trio.CancelScope:
    """A shielded scope with its own short deadline, for writes that must happen on the way out."""
    return trio.CancelScope(shield=True, deadline=trio.current_time() + CLEANUP_TIMEOUT)


def task_error(exc: BaseException) -> TaskError:
    kind = type(exc)
    module = kind.__module__
    name = kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
    return TaskError(
        name, str(exc), "".join(traceback.format_exception(exc)) if exc.__traceback__ else ""
    )


@attrs.frozen
class _Outcome:
    value: Any = None
    error: TaskError | None = None
    #: whether the retry policy applies (False for errors a retry cannot fix)
    retryable: bool = True


@attrs.frozen
class TaskRunner:
    """Everything an executor needs to run one task and record its outcome."""

    store: Store
    worker_id: str
    settings: Settings
    clock: Clock
    codec: Codec
    #: bounds the threads running sync task functions to the pool's concurrency
    limiter: trio.CapacityLimiter
    counters: Counters
    rand: Callable[[], float]

    async def run(self, task: Task) -> None:
        """Run ``task`` and record its outcome; on cancellation, release it and re-raise."""
        counters = self.counters
        counters.running += 1
        try:
            log_task_started(task)
            started = trio.current_time()
            outcome = await self._execute(task)
            await self._record(task, outcome, trio.current_time() - started)
        except trio.Cancelled:
            with cleanup_scope():
                await self._release(task)
            raise
        finally:
            counters.running -= 1

    async def _execute(self, task: Task) -> _Outcome:
        try:
            func = resolve_func(task.func)
            args, kwargs = self.codec.decode_args(task.args, task.kwargs)
        except Exception as exc:
            return _Outcome(error=task_error(exc), retryable=False)
        with trio.move_on_after(task.timeout) if task.timeout else nullcontext() as scope:
            try:
                if inspect.iscoroutinefunction(func):
                    value = await func(*args, **kwargs)
                elif self.settings.sync_tasks == "inline":
                    await trio.lowlevel.checkpoint()
                    value = func(*args, **kwargs)
                else:
                    # abandon_on_cancel: a thread cannot be interrupted, so on
                    # timeout or at the stop deadline we stop waiting for it
                    # (it finishes in the background, its result discarded).
                    value = await trio.to_thread.run_sync(
                        functools.partial(func, *args, **kwargs),
                        abandon_on_cancel=True,
                        limiter=self.limiter,
                    )
                if inspect.isawaitable(value):
                    value = await value
            except (
                Exception,
                SystemExit,
            ) as exc:  # a task calling sys.exit() fails, the worker stays
                return _Outcome(error=task_error(exc))
        if scope is not None and scope.cancelled_caught:
            error = task_error(TaskTimeoutError(f"timed out after {task.timeout}s"))
            return _Outcome(error=error, retryable=task.retry_on_timeout)
        try:
            return _Outcome(value=self.codec.encode_value(value))
        except Exception as exc:
            return _Outcome(error=task_error(exc), retryable=False)

    async def _record(self, task: Task, outcome: _Outcome, duration: float) -> None:
        counters = self.counters
        now = self.clock.now()
        next_eta = next_interval_eta(task.eta, task.interval, now) if task.interval else None
        try:
            if outcome.error is None:
                await self.store.complete(
                    task.id,
                    worker_id=self.worker_id,
                    value=outcome.value,
                    at=now,
                    next_eta=next_eta,
                )
                counters.succeeded += 1
                log_task_succeeded(task, duration)
            elif outcome.retryable and task.attempts < task.max_retries:
                settings = self.settings
                delay = retry_delay(
                    task.attempts,
                    base=settings.retry_backoff,
                    cap=settings.retry_backoff_max,
                    jitter=settings.retry_jitter,
                    rand=self.rand,
                )
                await self.store.fail(
                    task.id,
                    worker_id=self.worker_id,
                    error=outcome.error,
                    at=now,
                    retry_at=now + delay,
                )
                counters.retried += 1
                log_task_retrying(task, outcome.error, delay)
            else:
                await self.store.fail(
                    task.id,
                    worker_id=self.worker_id,
                    error=outcome.error,
                    at=now,
                    next_eta=next_eta,
                )
                counters.failed += 1
                log_task_failed(task, outcome.error)
            counters.processed += 1
        except LeaseLostError as exc:
            worker_logger.warning("outcome of task %s dropped: %s", task.id, exc)
        except Exception:
            # The store could not take the outcome (I/O error, lost connection).
            # The task stays RUNNING under our lease; if we cannot renew it
            # either, it expires and the task runs again elsewhere.
            worker_logger.exception("could not record the outcome of task %s", task.id)

    async def _release(self, task: Task) -> None:
        try:
            released = await self.store.release([task.id], worker_id=self.worker_id)
        except Exception:
            worker_logger.exception(
                "could not release task %s; it runs again when its lease expires", task.id
            )
            return
        self.counters.released += len(released)
        log_task_released(released, "interrupted by the stop")


async def executor(task_receive: trio.MemoryReceiveChannel[Task], runner: TaskRunner) -> None:
    """Run tasks from ``task_receive`` one at a time until the channel closes."""
    async with task_receive:
        async for task in task_receive:
            await runner.run(task)
