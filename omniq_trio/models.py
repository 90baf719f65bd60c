"""The values omniq_trio stores and returns: tasks, their results and their states,
and what the store knows of queues, schedules and workers.

Every store enforces the one table of allowed state changes, :data:`TRANSITIONS`
(the check lives with the other store rules, in ``omniq_trio.store``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = [
    "DEFAULT_QUEUE",
    "FINISHED_STATUSES",
    "LIVE_STATUSES",
    "TRANSITIONS",
    "Enqueued",
    "Progress",
    "QueueInfo",
    "RateLimit",
    "ScheduleInfo",
    "Task",
    "TaskError",
    "TaskPage",
    "TaskResult",
    "TaskStatus",
    "WorkerInfo",
]

#: The queue of a task enqueued without ``queue=``.
DEFAULT_QUEUE: Final = "default"


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

#: States of a task that has not finished: it holds its unique key.
LIVE_STATUSES: Final = frozenset({TaskStatus.PENDING, TaskStatus.RETRYING, TaskStatus.RUNNING})


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


@attrs.frozen
class Progress:
    """How far a run has got, as its task last reported (``ctx.report_progress``)."""

    #: Between 0 and 1.
    fraction: float
    #: What it is doing, if it said.
    message: str | None = None
    #: When it was reported (wall clock).
    updated_at: float = 0.0


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
    #: The named queue it waits in; workers choose the queues they claim from.
    queue: str = DEFAULT_QUEUE
    #: While a task with this key has not finished, enqueuing the key again
    #: creates nothing and answers that task's id.
    unique_key: str | None = None
    #: Also count tasks with the key that finished at most this many seconds
    #: before this one was created as duplicates.
    unique_for: float | None = None
    #: When the current run was due before any retry moved its eta: a
    #: repeating task's slot, from which its next slot is counted (``None``:
    #: ``eta``, for tasks stored before this field existed).
    scheduled_at: float | None = None
    #: Runs lost to a worker that died while running it (its lease expired).
    lost_runs: int = 0
    #: Lost runs allowed: one more ends the task FAILED (``WorkerLostError``).
    #: Separate from ``max_retries``, so that crashes stay at-least-once.
    max_lost_runs: int = 3
    #: What the current (or last) run last reported; cleared when a run starts.
    progress: Progress | None = None
    #: Small string metadata carried with the task (trace context, for one).
    headers: Mapping[str, str] = attrs.field(factory=dict)

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


@attrs.frozen
class Enqueued:
    """What ``enqueue`` did with one call: the task's id, and whether it was created
    (``False``: a task with the same unique key exists, and ``id`` is that task's)."""

    id: str
    created: bool


@attrs.frozen
class TaskPage:
    """One page of a task listing (``AsyncOmniQ.query_tasks``)."""

    tasks: list[Task]
    #: Pass it as ``cursor=`` for the next page; ``None`` on the last one.
    next_cursor: str | None = None


@attrs.frozen
class RateLimit:
    """At most ``max_starts`` tasks of a queue start in any ``per`` seconds,
    counted across every worker of the store."""

    max_starts: int
    per: float


@attrs.frozen
class QueueInfo:
    """A queue as the store knows it: its tasks by status, and its controls."""

    name: str
    #: Every status present, zeros included.
    counts: Mapping[TaskStatus, int]
    #: Paused queues are skipped by every worker's claims.
    paused: bool = False
    limit: RateLimit | None = None


@attrs.frozen
class ScheduleInfo:
    """A cron schedule some worker pool runs, as recorded in the store."""

    #: Unique per store; fires each slot once across every pool that runs it.
    name: str
    func: str
    #: The cron expression (five fields, or ``@hourly``, ``@daily``, ...).
    cron: str
    timezone: str = "UTC"
    queue: str = DEFAULT_QUEUE
    #: The latest slot fired (wall clock), if any.
    last_slot: float | None = None
    #: The next slot, as the pool that last recorded the schedule computed it.
    next_slot: float | None = None
    #: When a pool last recorded it.
    updated_at: float = 0.0


@attrs.frozen
class WorkerInfo:
    """A running worker pool, as it records itself in the store with its heartbeat.

    Field names match the keys of ``omniq-trio workers --json``; times are wall
    clock seconds since the epoch.
    """

    id: str
    hostname: str
    pid: int
    concurrency: int
    #: The queues it claims from; ``None``: every queue.
    queues: tuple[str, ...] | None
    started_at: float
    #: Its last heartbeat.
    last_seen: float
    #: It counts as dead after this (its last heartbeat plus its lease).
    expires_at: float
    #: Ids of the tasks it is running.
    running: tuple[str, ...] = ()
    succeeded: int = 0
    failed: int = 0
