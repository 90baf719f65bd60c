"""What a pool tells its hooks, from the places things happen.

Events go out where the pool learns them: a run's start from its executor;
its end from the recorder once the store took (or refused) its outcome, from
the executor when a stop or the task's cancel interrupts it, and from the lease keeper when it
reclaims the tasks of a dead worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .._clock import Clock
from .._hook_delivery import HookDelivery
from ..errors import TaskTimeoutError, TaskTooLargeError, UnregisteredTaskError
from ..hooks import RunEnded, RunOutcome, RunStarted
from ..models import Task, TaskError, TaskStatus
from ..store import Outcome, OutcomeKind, Store

__all__ = [
    "report_lost",
    "run_cancelled",
    "run_ended",
    "run_outcome",
    "run_released",
    "run_started",
]


def _type_name(kind: type[BaseException]) -> str:
    # as the executor names an error's type (TaskError.type)
    return f"{kind.__module__}.{kind.__qualname__}"


_TIMEOUT: Final = _type_name(TaskTimeoutError)
#: errors of a task the worker would not run (it never called the function)
_REFUSALS: Final = frozenset(map(_type_name, (UnregisteredTaskError, TaskTooLargeError)))


def run_outcome(outcome: Outcome) -> RunOutcome:
    """How a run whose outcome is ``outcome`` ended."""
    error = outcome.error
    if error is None:
        return RunOutcome.SUCCESS
    if error.type == _TIMEOUT:
        return RunOutcome.TIMEOUT
    if error.type in _REFUSALS:
        return RunOutcome.REFUSED
    if outcome.kind is OutcomeKind.RETRY:
        return RunOutcome.RETRY
    return RunOutcome.FAILURE


def run_started(hooks: HookDelivery, task: Task, worker_id: str, clock: Clock) -> None:
    """A run of ``task`` starts now."""
    if hooks:
        hooks.emit(RunStarted(task, worker_id, clock.now()))


def run_ended(
    hooks: HookDelivery,
    task: Task,
    outcome: Outcome,
    duration: float,
    *,
    refused: TaskError | None = None,
) -> None:
    """The store took ``outcome`` (or refused it: ``refused`` says why)."""
    if not hooks:
        return
    if refused is not None:
        hooks.emit(
            RunEnded(task, outcome.worker_id, RunOutcome.REFUSED, outcome.at, duration, refused)
        )
        return
    kind = run_outcome(outcome)
    retry_at = outcome.eta if outcome.kind is OutcomeKind.RETRY else None
    error = outcome.error
    hooks.emit(RunEnded(task, outcome.worker_id, kind, outcome.at, duration, error, retry_at))


def run_released(
    hooks: HookDelivery, task: Task, worker_id: str, at: float, duration: float
) -> None:
    """The run of ``task`` was interrupted, or its outcome not written: it is PENDING again."""
    if hooks:
        hooks.emit(RunEnded(task, worker_id, RunOutcome.RELEASED, at, duration))


def run_cancelled(
    hooks: HookDelivery, task: Task, worker_id: str, at: float, duration: float
) -> None:
    """The run of ``task`` was interrupted by its cancel: its outcome was dropped."""
    if hooks:
        hooks.emit(RunEnded(task, worker_id, RunOutcome.CANCELLED, at, duration))


async def report_lost(
    hooks: HookDelivery, task_ids: Iterable[str], *, store: Store, worker_id: str, at: float
) -> None:
    """Tell the hooks about runs this pool found lost (it reclaimed their tasks)."""
    if not hooks:
        return
    for task_id in task_ids:
        try:
            task = await store.get_task(task_id)
        except Exception:  # purged meanwhile, or the store failed: nothing to say
            continue
        # a task past max_lost_runs is FAILED with the WorkerLostError
        error = task.error if task.status is TaskStatus.FAILED else None
        hooks.emit(RunEnded(task, worker_id, RunOutcome.LOST, at, None, error))
