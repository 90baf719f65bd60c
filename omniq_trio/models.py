"""The values omniq_trio stores and returns: tasks, their results and their states.

Every store enforces the one table of allowed state changes,
:data:`TRANSITIONS`, through :func:`check_transition`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import attrs

from .errors import InvalidTransitionError

__all__ = [
    "FINISHED_STATUSES",
    "TRANSITIONS",
    "Task",
    "TaskError",
    "TaskResult",
    "TaskStatus",
    "check_transition",
]


class TaskStatus(enum.StrEnum):
    """Where a task is in its lifecycle.

    Members compare equal to their lower-case string values, so
    ``task["status"] == "running"`` and ``task["status"] == TaskStatus.RUNNING``
    both hold.
    """

    #: Waiting to run: due at its ``eta`` (immediately when none was given).
    PENDING = "pending"
    #: Claimed by a worker, which holds a lease on it and renews it while the task runs.
    RUNNING = "running"
    #: Finished without raising; its return value is in the result.
    SUCCESS = "success"
    #: Raised (or timed out) with its retry budget spent; the error is in the result.
    FAILED = "failed"
    #: Raised with retries left; due again at ``eta`` (now + backoff).
    RETRYING = "retrying"
    #: Cancelled before it finished; it will not run (again).
    CANCELLED = "cancelled"


#: Allowed state changes, ``old -> {new, ...}``. Every store checks each change
#: against this table before it makes it.
TRANSITIONS: Final[Mapping[TaskStatus, frozenset[TaskStatus]]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.RETRYING: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.SUCCESS,
            TaskStatus.FAILED,
            TaskStatus.RETRYING,
            # released on stop or lease expiry, or an interval task rescheduled
            TaskStatus.PENDING,
            TaskStatus.CANCELLED,
        }
    ),
    # a failed task can be retried by hand (``omniq-trio retry``)
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING}),
    TaskStatus.SUCCESS: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}

#: States a task does not leave by itself; their tasks have a result.
FINISHED_STATUSES: Final = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED})

#: States a worker may claim from.
CLAIMABLE_STATUSES: Final = frozenset({TaskStatus.PENDING, TaskStatus.RETRYING})


def check_transition(task_id: str, old: TaskStatus, new: TaskStatus) -> None:
    """Raise :class:`~omniq_trio.errors.InvalidTransitionError` unless ``old -> new`` is allowed."""
    if new not in TRANSITIONS[old]:
        raise InvalidTransitionError(task_id, old, new)


@attrs.frozen
class TaskError:
    """What a failed execution raised: the exception's type, message and traceback."""

    #: Qualified name of the exception type, e.g. ``"builtins.ValueError"``.
    type: str
    #: ``str(exception)``.
    message: str
    #: The formatted traceback, empty when there is none.
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


# Not slotted: a task's state changes by copying its __dict__ (see
# store/_index.py), ~10x cheaper than attrs.evolve; it is what lets the journal
# replay a million records in seconds. It costs ~110 bytes per task.
@attrs.frozen(slots=False)
class Task:
    """One enqueued call and its scheduling state.

    Tasks are immutable snapshots; stores produce new ones as the task moves
    through its lifecycle. For compatibility with code written for OmniQ's
    dict-shaped listings, a task can also be read like a mapping:
    ``task["status"]`` is ``task.status``.
    """

    #: Unique id returned by ``enqueue``.
    id: str
    #: The function to call, as ``"module:qualname"``.
    func: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    status: TaskStatus = TaskStatus.PENDING
    #: Higher runs first among due tasks; ties go to the earlier ``eta``, then FIFO.
    priority: int = 0
    #: Wall-clock time (seconds since the epoch) from which the task may run.
    eta: float = 0.0
    #: Seconds between the runs of a repeating task (measured from the previous eta).
    interval: float | None = None
    #: Retries allowed after the first execution: ``max_retries=3`` means up to 4 runs.
    max_retries: int = 0
    #: Seconds an execution may take before it is cancelled and fails.
    timeout: float | None = None
    #: Whether a timed-out execution is retried (when retries are left).
    retry_on_timeout: bool = False
    #: Executions of the current run that finished, successfully or not
    #: (retries included); a repeating task starts each run at 0. Releases
    #: (stop, lease expiry) are not counted.
    attempts: int = 0
    created_at: float = 0.0
    #: When the current or last execution was claimed.
    started_at: float | None = None
    #: When the task last reached SUCCESS, FAILED or CANCELLED.
    finished_at: float | None = None
    #: The worker holding the task while it is RUNNING.
    worker_id: str | None = None
    #: Until when that worker's lease lasts (wall-clock time).
    lease_until: float | None = None
    #: The error of the last failed execution; cleared when an execution succeeds.
    error: TaskError | None = None

    def __getitem__(self, key: str) -> Any:
        if key in _TASK_FIELDS:
            return getattr(self, key)
        raise KeyError(key)

    def keys(self) -> tuple[str, ...]:
        """The field names, so that ``dict(task)`` works."""
        return _TASK_FIELDS


_TASK_FIELDS: Final = tuple(a.name for a in attrs.fields(Task))


@attrs.frozen
class TaskResult:
    """The outcome of a task's last finished execution."""

    task_id: str
    #: SUCCESS, FAILED or CANCELLED; for a repeating task, the outcome of its latest run.
    status: TaskStatus
    #: What the function returned (``None`` unless SUCCESS).
    value: Any = None
    #: What it raised (``None`` unless FAILED).
    error: TaskError | None = None
    #: Executions that finished, counting this one.
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the task succeeded."""
        return self.status is TaskStatus.SUCCESS
