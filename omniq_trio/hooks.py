"""Hooks: callables that see the life of tasks (enqueued, run started, run ended).

A hook is a function (or any callable) of one event, sync or ``async``::

    def report_failures(event: HookEvent) -> None:
        if isinstance(event, RunEnded) and event.outcome is RunOutcome.FAILURE:
            send_to_error_tracker(event.task, event.error)

Register hooks on the client, ``AsyncOmniQ(settings, hooks=[report_failures])``
or ``omniq.add_hook(report_failures)`` (its worker pools see them too), or
declare them in a task module a worker imports, as a module-level
``omniq_hooks = [report_failures]``: ``omniq-trio worker --import app.tasks``
then delivers its pools' events to them.

Sync hooks run inline, where the event happens: keep them quick (a counter, a
log line). Async hooks run one at a time in an actor of their own, fed by a
bounded buffer, so a slow one never holds up a task; when the buffer is full,
events for async hooks are dropped and counted, with a warning. A hook that
raises is logged (``omniq_trio.hooks``) and changes nothing else.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import attrs

from .models import Task, TaskError

__all__ = ["Hook", "HookEvent", "RunEnded", "RunOutcome", "RunStarted", "TaskEnqueued"]


class RunOutcome(enum.StrEnum):
    """How a run ended (the ``omniq_outcome`` label of the run metrics)."""

    #: It returned; the task is SUCCESS (a repeating task: PENDING at its next run).
    SUCCESS = "success"
    #: It raised with no retry left; the task is FAILED (repeating: its next run).
    FAILURE = "failure"
    #: It raised and runs again at ``retry_at``; the task is RETRYING.
    RETRY = "retry"
    #: It ran past its timeout; ``retry_at`` says when it runs again, if it does.
    TIMEOUT = "timeout"
    #: The task was cancelled while it ran.
    CANCELLED = "cancelled"
    #: Its worker died (its lease expired); reported by the pool that reclaimed the
    #: task, which is PENDING again, or FAILED past ``max_lost_runs``.
    LOST = "lost"
    #: The worker would not run it (its function is not registered, its call is
    #: too large), or the store refused its outcome (the worker had lost the task).
    REFUSED = "refused"
    #: A stop interrupted it, or its outcome could not be written: the task went
    #: back to PENDING uncharged and runs again.
    RELEASED = "released"


@attrs.frozen
class TaskEnqueued:
    """A task was stored by ``enqueue`` (a call a unique key collapsed creates none,
    and is not reported; nor are enqueues inside your own transaction, ``connection=``)."""

    #: The task as stored (PENDING).
    task: Task


@attrs.frozen
class RunStarted:
    """A worker pool started running a task."""

    #: The task as claimed (RUNNING; ``attempts`` counts the runs before this one).
    task: Task
    #: The pool running it.
    worker_id: str
    #: When the run started (wall clock, seconds since the epoch).
    at: float

    @property
    def wait(self) -> float:
        """Seconds the task waited to start once it was due (from its eta)."""
        return max(0.0, self.at - self.task.eta)


@attrs.frozen
class RunEnded:
    """A run ended, and how."""

    #: The task as it was when the run started (for a lost run: as reclaimed).
    task: Task
    #: The pool reporting it (for a lost run: the pool that reclaimed the task).
    worker_id: str
    outcome: RunOutcome
    #: When it was reported (wall clock).
    at: float
    #: Seconds the run took; ``None`` for a lost run.
    duration: float | None
    #: What the run raised (failure, retry, timeout, refused; lost: ``WorkerLostError``).
    error: TaskError | None = None
    #: When the task runs again, after a retry or a timeout with retries left.
    retry_at: float | None = None


#: What a hook receives.
HookEvent: TypeAlias = TaskEnqueued | RunStarted | RunEnded

#: A sync or async callable of one event; what it returns is ignored.
Hook: TypeAlias = Callable[[HookEvent], None] | Callable[[HookEvent], Awaitable[None]]
