"""``current_task()``: what a running task knows of itself, and what it may do.

The executor sets a :class:`TaskContext` in a contextvar for the length of
each run, before the run starts (so a sync task's thread, which runs in a
copy of the executor's context, sees it too), and resets it when the run ends.
Child tasks the task starts inherit it, as trio copies contexts at spawn.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, final

import attrs
import trio

from .errors import NoTaskContextError, ProgressError, TaskContextError
from .models import Progress

__all__ = [
    "ProgressSink",
    "RunContext",
    "RunFlag",
    "TaskContext",
    "check_progress",
    "current_task",
    "reset_context",
    "set_context",
]

_current: contextvars.ContextVar[RunContext] = contextvars.ContextVar("omniq_trio_task")


def current_task() -> TaskContext:
    """The :class:`TaskContext` of the task running here (in its own trio task, its
    child tasks, or its thread); raises :class:`~omniq_trio.errors.NoTaskContextError`
    outside a task."""
    try:
        run = _current.get()
    except LookupError:
        raise NoTaskContextError(
            "current_task() is only available inside a task a worker pool is running"
        ) from None
    if run.made is None:  # a race between threads builds two equal ones: harmless
        run.made = run.runner.context(run.task, run.control)
    return run.made


class _Runner(Protocol):
    def context(self, task: Any, control: Any) -> TaskContext: ...


@final
class RunContext:
    """What the executor sets for a run: the makings of its :class:`TaskContext`, built
    on the task's first ``current_task()`` (most tasks never ask)."""

    __slots__ = ("control", "made", "runner", "task")

    def __init__(self, task: Any, control: Any, runner: _Runner) -> None:
        self.task = task
        self.control = control
        self.runner = runner
        self.made: TaskContext | None = None


class RunFlag(Protocol):
    """The part of a run's control the context reads (``worker._cancel.RunControl``)."""

    @property
    def cancelled(self) -> bool: ...


class ProgressSink(Protocol):
    """Where reports go (``worker._progress.ProgressWriter``); called on the trio thread."""

    def submit(self, task_id: str, progress: Progress) -> None: ...


def check_progress(fraction: object, message: object) -> tuple[float, str | None]:
    """``(fraction, message)`` if they make a progress report, else ``ProgressError``."""
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or math.isnan(fraction)
        or not 0 <= fraction <= 1
    ):
        raise ProgressError(f"progress must be a number from 0 to 1, got {fraction!r}")
    if message is not None and not isinstance(message, str):
        raise ProgressError(f"a progress message must be a string or None, got {message!r}")
    return float(fraction), message


@final
@attrs.frozen(eq=False)
class TaskContext:
    """A running task as it sees itself: get it with :func:`omniq_trio.current_task`.

    Read-only facts of this run, the live :attr:`cancelled` flag, progress
    reports and enqueueing of follow-up tasks. The ``*_sync`` methods are for
    sync task functions, in a worker thread or inline on the trio thread.
    """

    #: The task's id.
    id: str
    #: Its function, as ``"module:qualname"``.
    func: str
    #: The queue it was claimed from.
    queue: str
    #: Which execution of the task this is: 1 on the first run, 2 on the first retry, ...
    attempt: int
    #: Retries allowed after the first execution.
    max_retries: int
    #: When it was enqueued (wall clock, seconds since the epoch).
    created_at: float
    #: When this execution was due (after a retry: its backoff's end).
    eta: float
    #: The worker pool running it.
    worker_id: str
    #: The task's headers (small string metadata).
    headers: Mapping[str, str]
    _flag: RunFlag
    _progress: ProgressSink
    _clock_now: Callable[[], float]
    _enqueue: Callable[..., Awaitable[str]]
    _token: trio.lowlevel.TrioToken

    @property
    def cancelled(self) -> bool:
        """Whether the task was cancelled while it runs; live. An async task is
        interrupted anyway (``trio.Cancelled``); a sync task in a thread cannot be,
        and should check this and return early."""
        return self._flag.cancelled

    async def report_progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the run has got (``fraction`` from 0 to 1), shown as the
        task's ``progress``. Returns at once: the first report is written straight
        away, later ones at most once a second each (the latest wins). A bad value
        raises :class:`~omniq_trio.errors.ProgressError`."""
        self._submit(*check_progress(fraction, message))
        await trio.lowlevel.checkpoint()

    def report_progress_sync(self, fraction: float, message: str | None = None) -> None:
        """:meth:`report_progress` for a sync task (in its thread, or inline); never blocks."""
        fraction, message = check_progress(fraction, message)
        if _on_trio_thread():
            self._submit(fraction, message)
        else:
            # once the pool has stopped, nobody would show it
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._submit, fraction, message)

    def _submit(self, fraction: float, message: str | None) -> None:
        self._progress.submit(self.id, Progress(fraction, message, self._clock_now()))

    async def enqueue(self, func: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> str:
        """Enqueue a follow-up task: the same arguments and options as
        :meth:`AsyncOmniQ.enqueue <omniq_trio.AsyncOmniQ.enqueue>`, on the pool's client."""
        return await self._enqueue(func, *args, **kwargs)

    def enqueue_sync(self, func: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> str:
        """:meth:`enqueue` for a sync task running in a worker thread (blocks the thread
        until the task is stored). An inline sync task (``sync_tasks="inline"``) runs on
        the trio thread, which must not block: it raises
        :class:`~omniq_trio.errors.TaskContextError`."""
        if _on_trio_thread():
            raise TaskContextError(
                "enqueue_sync() would block the trio thread (sync_tasks='inline'); "
                "run sync tasks in threads (sync_tasks='thread') or make the task async "
                "and await ctx.enqueue()"
            )
        enqueue = functools.partial(self._enqueue, func, *args, **kwargs)
        task_id: str = trio.from_thread.run(enqueue, trio_token=self._token)
        return task_id


def _on_trio_thread() -> bool:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


def set_context(context: RunContext) -> contextvars.Token[RunContext]:
    """Make ``context`` current (the executor, as a run starts)."""
    return _current.set(context)


def reset_context(token: contextvars.Token[RunContext]) -> None:
    """Undo :func:`set_context` (the executor, as a run ends)."""
    _current.reset(token)
