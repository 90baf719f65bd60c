"""The rules every store applies the same way, in one store-neutral place.

The memory store and the journal (through their shared task index) and the
PostgreSQL store (around its SQL) call these, so a third store cannot drift
from them: which changes the lifecycle allows, what counts as a duplicate,
which outcome of two wins, what a refused outcome says, when a lost run ends a
task, how a rate limit counts, and which change wakes whom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Final

from ..errors import (
    DuplicateTaskError,
    InvalidTransitionError,
    LeaseLostError,
    TaskOptionError,
    WorkerLostError,
)
from ..models import (
    LIVE_STATUSES,
    TRANSITIONS,
    RateLimit,
    Task,
    TaskError,
    TaskStatus,
)
from ._base import Change, Outcome, OutcomeKind

__all__ = [
    "CANCEL_CHANGES",
    "ENQUEUE_CHANGES",
    "check_new_tasks",
    "check_transition",
    "duplicate_outcomes",
    "lease_lost",
    "outcome_changes",
    "reclaim_changes",
    "starts_allowed",
    "unique_firsts",
    "unique_key_taken",
    "worker_lost_error",
]

#: What an enqueue (or a fired schedule slot) wakes.
ENQUEUE_CHANGES: Final = frozenset({Change.WORK})
#: What a release, a manual retry, a resumed queue or a changed rate limit wakes.
WORK_CHANGES: Final = frozenset({Change.WORK})

_MAX_PRIORITY: Final = (1 << 63) - 1
_MIN_PRIORITY: Final = -(1 << 63)
_WORKER_LOST: Final = f"{WorkerLostError.__module__}.{WorkerLostError.__qualname__}"


def check_transition(task_id: str, old: TaskStatus, new: TaskStatus) -> None:
    """Raise :class:`~omniq_trio.errors.InvalidTransitionError` unless ``old -> new`` is allowed."""
    if new not in TRANSITIONS[old]:
        raise InvalidTransitionError(task_id, old, new)


def check_new_tasks(tasks: Sequence[Task]) -> None:
    """A batch to enqueue: every task PENDING, no id twice (``DuplicateTaskError``), a
    priority that fits in a signed 64-bit integer (``TaskOptionError``)."""
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            raise DuplicateTaskError(task.id)
        seen.add(task.id)
        if task.status is not TaskStatus.PENDING:
            raise InvalidTransitionError(task.id, task.status, TaskStatus.PENDING)
        if not _MIN_PRIORITY <= task.priority <= _MAX_PRIORITY:
            raise TaskOptionError(
                f"task {task.id}: priority {task.priority} is out of range "
                f"({_MIN_PRIORITY} to {_MAX_PRIORITY})"
            )


def unique_firsts(tasks: Sequence[Task]) -> list[int | None]:
    """Per task of a batch, the index of an earlier task with the same unique key
    (it collapses into that one), or ``None`` if it is the first with its key."""
    first: dict[str, int] = {}
    answer: list[int | None] = []
    for i, task in enumerate(tasks):
        key = task.unique_key
        if key is None:
            answer.append(None)
            continue
        earlier = first.setdefault(key, i)
        answer.append(None if earlier == i else earlier)
    return answer


def unique_key_taken(
    holder_status: TaskStatus, holder_finished_at: float | None, task: Task
) -> bool:
    """Whether a stored task with ``task``'s unique key makes ``task`` a duplicate:
    it has not finished, or it finished within ``task.unique_for`` before ``task``
    was created."""
    if holder_status in LIVE_STATUSES:
        return True
    if task.unique_for is None or holder_finished_at is None:
        return False
    return holder_finished_at >= task.created_at - task.unique_for


def duplicate_outcomes(outcomes: Sequence[Outcome]) -> list[LeaseLostError | None]:
    """Two outcomes for one task in one call: the first wins, the others are refused."""
    seen: set[str] = set()
    refused: list[LeaseLostError | None] = []
    for outcome in outcomes:
        if outcome.task_id in seen:
            refused.append(
                LeaseLostError(outcome.task_id, outcome.worker_id, "outcome given twice")
            )
        else:
            seen.add(outcome.task_id)
            refused.append(None)
    return refused


def lease_lost(
    task_id: str, worker_id: str, status: TaskStatus | str, holder: str | None
) -> LeaseLostError:
    """The error for a worker reporting on a task it no longer holds."""
    status = TaskStatus(status)
    detail = (
        f"it is {status.value}"
        if status is not TaskStatus.RUNNING
        else f"it was handed to {holder} after the lease expired"
    )
    return LeaseLostError(task_id, worker_id, detail)


def worker_lost_error(task: Task, *, now: float) -> TaskError | None:
    """The error that ends a task whose run was just lost (its lease expired at ``now``),
    or ``None`` if it has lost runs left and goes back to the queue.

    ``task`` is as it was before the loss: ``task.lost_runs`` does not count this one.
    """
    lost = task.lost_runs + 1
    if lost <= task.max_lost_runs:
        return None
    when = dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds")
    return TaskError(
        _WORKER_LOST,
        f"the worker running it ({task.worker_id}) was lost (its lease expired, seen at "
        f"{when}); runs lost {lost} times, more than max_lost_runs={task.max_lost_runs}. "
        "The task may be killing its worker (a crash, an out-of-memory kill, os._exit)",
    )


def starts_allowed(limit: RateLimit, recent_starts: Iterable[float], now: float) -> int:
    """How many tasks of a rate-limited queue may start at ``now``, given the start times
    recorded for it: at most ``limit.max_starts`` in any window of ``limit.per`` seconds."""
    window_start = now - limit.per
    in_window = sum(1 for at in recent_starts if at > window_start)
    return max(0, limit.max_starts - in_window)


def outcome_changes(outcome: Outcome) -> frozenset[Change]:
    """What recording ``outcome`` wakes."""
    return _OUTCOME_CHANGES[outcome.kind]


def reclaim_changes(*, requeued: bool, failed: bool) -> frozenset[Change]:
    """What taking back the tasks of dead workers wakes."""
    changes: set[Change] = set()
    if requeued:
        changes.add(Change.WORK)
    if failed:
        changes.add(Change.FINISHED)
    return frozenset(changes)


def cancel_changes(*, was_running: bool) -> frozenset[Change]:
    """What cancelling a task wakes: its result's waiters, and its worker if it runs."""
    return CANCEL_CHANGES if was_running else _FINISHED


_FINISHED: Final = frozenset({Change.FINISHED})
#: What cancelling a RUNNING task wakes.
CANCEL_CHANGES: Final = frozenset({Change.FINISHED, Change.CANCELLED})
_OUTCOME_CHANGES: Final = {
    OutcomeKind.SUCCESS: _FINISHED,
    OutcomeKind.FAILURE: _FINISHED,
    OutcomeKind.RETRY: frozenset({Change.WORK}),
    OutcomeKind.NEXT_RUN: frozenset({Change.WORK, Change.FINISHED}),
}
