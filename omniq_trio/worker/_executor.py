"""Executors: receive claimed tasks, run them, pass on how each run ended.

A task's own failures (an exception, a timeout, a bad or oversize return
value, a function that is not registered, an oversize call) become its outcome; nothing a task does
stops the executor. Two things end a run early: the stop deadline (the task
goes back to PENDING with no attempt charged) and the task's cancellation
(its own cancel scope, ``_cancel.py``: the task is CANCELLED already, and the
run's outcome is dropped).

Executors do not write outcomes themselves: they send them to the recorder
and take the next task at once, so outcomes of many runs share one write.
A crash between the end of a run and its record is no different from a crash
during the run: the task runs again (at-least-once).
"""

from __future__ import annotations

import functools
import inspect
import math
import traceback
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Final

import attrs
import trio

from .._clock import Clock
from .._codec import Codec
from .._context import RunContext, TaskContext, reset_context, set_context
from .._hook_delivery import HookDelivery
from .._limits import check_call_size, check_result_size
from .._registry import resolve_task
from .._tracing import Tracing, run_span
from ..config import Settings
from ..errors import TaskContextError, TaskTimeoutError
from ..hooks import RunOutcome
from ..logging import log_task_released, log_task_started, worker_logger
from ..models import Progress, Task, TaskError
from ..store import Outcome, Store
from ._backoff import next_interval_eta, retry_delay
from ._cancel import RunControl, RunningTasks
from ._credits import Credits
from ._observe import run_cancelled, run_outcome, run_released, run_started
from ._progress import ProgressWriter
from ._stats import Counters
from ._threads import SyncThreads

__all__ = ["Finished", "TaskRunner", "cleanup_scope", "executor"]

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
    formatted = "".join(traceback.format_exception(exc)) if exc.__traceback__ else ""
    return TaskError(name, str(exc), formatted)


@attrs.frozen
class _ThreadSlot:
    """The pool's thread limiter as one sync task sees it: the task's timeout
    starts when it gets a thread, not while it waits for one.

    An abandoned thread (its task timed out, or was stopped) keeps its slot
    until it really ends, so that hung tasks cannot pile up threads; a task
    waiting for that slot has not started, and must not time out meanwhile.
    """

    limiter: trio.CapacityLimiter
    #: the task's timeout scope, if it has a timeout
    scope: trio.CancelScope | None
    timeout: float | None

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        if self.scope is None or self.timeout is None:
            await self.limiter.acquire_on_behalf_of(borrower)
            return
        self.scope.deadline = math.inf
        await self.limiter.acquire_on_behalf_of(borrower)
        self.scope.deadline = trio.current_time() + self.timeout

    def release_on_behalf_of(self, borrower: object) -> None:
        self.limiter.release_on_behalf_of(borrower)


@attrs.frozen
class Finished:
    """A run that ended, on its way from an executor to the recorder."""

    task: Task
    outcome: Outcome
    #: Seconds the run took (trio time).
    duration: float


@attrs.frozen
class TaskRunner:
    """Everything an executor needs to run one task and judge its outcome."""

    store: Store
    worker_id: str
    settings: Settings
    clock: Clock
    codec: Codec
    #: bounds the threads running sync task functions to the pool's concurrency
    limiter: trio.CapacityLimiter
    counters: Counters
    rand: Callable[[], float]
    hooks: HookDelivery = attrs.field(factory=HookDelivery)
    tracing: Tracing | None = None
    #: the threads sync task functions run in (bounded by ``limiter``)
    threads: SyncThreads = attrs.field(factory=SyncThreads)
    #: the runs in progress, each with its cancel scope
    runs: RunningTasks = attrs.field(factory=RunningTasks)
    #: where ``report_progress`` hands its reports (the pool's progress writer)
    progress: ProgressWriter | None = None
    #: ``AsyncOmniQ.enqueue`` of the pool's client, for ``current_task().enqueue``
    enqueue: Callable[..., Awaitable[str]] | None = None
    #: the pool's trio run (for ``enqueue_sync`` and progress from threads)
    token: trio.lowlevel.TrioToken | None = None

    async def run(
        self,
        task: Task,
        outcome_send: trio.MemorySendChannel[Finished],
        scope: trio.CancelScope | None = None,
    ) -> None:
        """Run ``task`` and send its outcome; if interrupted, release it and re-raise.

        ``scope`` (the executor's, entered around this call) is what a cancel of
        the task cancels; then the run's outcome is dropped (the store made the
        task CANCELLED already) and ``trio.Cancelled`` propagates to that scope.
        One scope serves an executor's runs until one is cancelled: entering a
        scope per run would cost every run a few microseconds."""
        counters = self.counters
        counters.running += 1
        counters.running_ids.add(task.id)
        handed_over = False
        started = trio.current_time()
        control = self.runs.start(task.id, scope)
        # set before the run starts: a sync task's thread runs in a copy of this context
        context_token = set_context(RunContext(task, control, self))
        try:
            log_task_started(task)
            run_started(self.hooks, task, self.worker_id, self.clock)
            with run_span(self.tracing, task, self.worker_id) as span:
                try:
                    outcome = await self._execute(task)
                except BaseException:
                    if control.cancelled and self.tracing is not None:
                        span.ended(RunOutcome.CANCELLED, None)
                    raise
                if control.cancelled:  # it caught the Cancelled, or returned meanwhile
                    if self.tracing is not None:
                        span.ended(RunOutcome.CANCELLED, None)
                elif self.tracing is not None:
                    span.ended(run_outcome(outcome), outcome.error)
            if control.cancelled:
                handed_over = True  # nothing to hand over, nothing to release
                self._cancelled(task, trio.current_time() - started)
                return
            finished = Finished(task, outcome, trio.current_time() - started)
            try:
                outcome_send.send_nowait(finished)  # room in the buffer: skip a scheduler trip
            except trio.WouldBlock:
                await outcome_send.send(finished)
            handed_over = True
        finally:
            reset_context(context_token)
            self.runs.end(control)
            if self.progress is not None:
                self.progress.forget(task.id)
            counters.running -= 1
            counters.running_ids.discard(task.id)
            if not handed_over:
                # Only cancellation gets here (a task's own errors are its
                # outcome), and not always as a bare trio.Cancelled: a nursery
                # inside the task wraps it in an exception group.
                if control.cancelled:  # and the stop too: the task is not ours to release
                    self._cancelled(task, trio.current_time() - started)
                else:
                    with cleanup_scope():
                        await self._release(task, trio.current_time() - started)

    def context(self, task: Task, control: RunControl) -> TaskContext:
        """The :class:`TaskContext` of ``task``'s run (built when the task asks for it)."""
        return TaskContext(
            id=task.id,
            func=task.func,
            queue=task.queue,
            attempt=task.attempts + 1,
            max_retries=task.max_retries,
            created_at=task.created_at,
            eta=task.eta,
            worker_id=self.worker_id,
            headers=task.headers,
            flag=control,
            progress=self.progress or _NO_PROGRESS,
            clock_now=self.clock.now,
            enqueue=self.enqueue or _no_enqueue,
            token=self.token or trio.lowlevel.current_trio_token(),
        )

    def _cancelled(self, task: Task, duration: float) -> None:
        self.counters.cancelled += 1
        worker_logger.info(
            "task %s was cancelled while it ran; its run was interrupted",
            task.id,
            extra={"task_id": task.id, "func": task.func},
        )
        run_cancelled(self.hooks, task, self.worker_id, self.clock.now(), duration)

    async def _execute(self, task: Task) -> Outcome:
        try:
            settings = self.settings
            # measured in stored form: an oversize task is never decoded (unpickled)
            check_call_size(task.func, task.args, task.kwargs, limit=settings.max_task_bytes)
            func = resolve_task(
                task.func,
                task_modules=settings.imports,
                allow_unregistered=settings.allow_unregistered_tasks,
            )
            args, kwargs = self.codec.decode_args(task.args, task.kwargs)
        except Exception as exc:
            return self._failed(task, exc, retryable=False)
        with trio.move_on_after(task.timeout) if task.timeout else nullcontext() as scope:
            try:
                if inspect.iscoroutinefunction(func):
                    value = await func(*args, **kwargs)
                elif self.settings.sync_tasks == "inline":
                    await trio.lowlevel.checkpoint()
                    value = func(*args, **kwargs)
                else:
                    # a thread cannot be interrupted, so on timeout or at the
                    # stop deadline we stop waiting for it (it finishes in the
                    # background, its result discarded)
                    value = await self.threads.run(
                        functools.partial(func, *args, **kwargs),
                        slot=_ThreadSlot(self.limiter, scope, task.timeout),
                    )
                if inspect.isawaitable(value):
                    value = await value
            # a task calling sys.exit() fails; the worker stays
            except (Exception, SystemExit) as exc:
                return self._failed(task, exc)
        if scope is not None and scope.cancelled_caught:
            timed_out = TaskTimeoutError(f"timed out after {task.timeout}s")
            return self._failed(task, timed_out, retryable=task.retry_on_timeout)
        try:
            stored = self.codec.encode_value(value)
            check_result_size(stored, limit=self.settings.max_result_bytes)
        except Exception as exc:
            return self._failed(task, exc, retryable=False)
        now = self.clock.now()
        if task.interval:
            eta = next_interval_eta(_slot(task), task.interval, now)
            return Outcome.next_run(task.id, self.worker_id, now, eta, value=stored)
        return Outcome.success(task.id, self.worker_id, now, stored)

    def _failed(self, task: Task, exc: BaseException, *, retryable: bool = True) -> Outcome:
        """A failed run's outcome: a retry if the policy allows one, else a failure (or,
        for a repeating task, its next run)."""
        error = task_error(exc)
        now = self.clock.now()
        if retryable and task.attempts < task.max_retries:
            settings = self.settings
            delay = retry_delay(
                task.attempts,
                base=settings.retry_backoff,
                cap=settings.retry_backoff_max,
                jitter=settings.retry_jitter,
                rand=self.rand,
            )
            return Outcome.retry(task.id, self.worker_id, now, error, now + delay)
        if task.interval:
            eta = next_interval_eta(_slot(task), task.interval, now)
            return Outcome.next_run(task.id, self.worker_id, now, eta, error=error)
        return Outcome.failure(task.id, self.worker_id, now, error)

    async def _release(self, task: Task, duration: float) -> None:
        try:
            released = await self.store.release([task.id], worker_id=self.worker_id)
        except Exception:
            worker_logger.exception(
                "could not release task %s; it runs again when its lease expires", task.id
            )
            return
        self.counters.released += len(released)
        log_task_released(released, "interrupted by the stop")
        if released:
            run_released(self.hooks, task, self.worker_id, self.clock.now(), duration)


class _NoProgress:
    def submit(self, task_id: str, progress: Progress) -> None:
        pass


_NO_PROGRESS: Final = _NoProgress()


async def _no_enqueue(*args: object, **kwargs: object) -> str:
    raise TaskContextError("this worker pool has no client to enqueue with")


def _slot(task: Task) -> float:
    """The slot the current run of a repeating task belongs to (retries do not move it)."""
    return task.eta if task.scheduled_at is None else task.scheduled_at


async def executor(
    task_receive: trio.MemoryReceiveChannel[Task],
    outcome_send: trio.MemorySendChannel[Finished],
    runner: TaskRunner,
    credits: Credits,
) -> None:
    """Run tasks from ``task_receive`` one at a time until the channel closes.

    Each task comes with a credit the poller took for it; the executor
    returns it when the run ends, so the poller may claim another.
    """
    async with task_receive, outcome_send:
        while True:
            # the scope a cancel of the running task cancels (see TaskRunner.run);
            # a new one once it has been
            with trio.CancelScope() as scope:
                async for task in task_receive:
                    try:
                        await runner.run(task, outcome_send, scope)
                    finally:
                        credits.release(task)
                    if scope.cancel_called:
                        break
                else:
                    return
