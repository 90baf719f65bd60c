"""The changes a store makes, as values.

The in-memory index applies them; the file journal also writes them down and
replays them on open. An event is only ever created from the current state by
the index (``TaskIndex.*_event``), so applying it cannot fail. How a run ended
is its :class:`~omniq_trio.store.Outcome`, which is an event as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ..models import Progress, RateLimit, ScheduleInfo, Task, TaskError, TaskResult, WorkerInfo
from ._base import Outcome

__all__ = [
    "Cancelled",
    "Claimed",
    "Event",
    "Expired",
    "ProgressSet",
    "Purged",
    "Put",
    "QueueLimited",
    "QueuePaused",
    "Released",
    "Renewed",
    "Retried",
    "ScheduleFired",
    "SchedulesRecorded",
    "WorkerGone",
    "WorkerSeen",
]


@attrs.frozen
class Put:
    """A task (and its latest result) exactly as given: an enqueue, or a compacted snapshot."""

    task: Task
    result: TaskResult | None = None
    #: Its place in enqueue order, which listing cursors point at (a compacted snapshot
    #: keeps it; ``None``: after every task before it).
    order: int | None = None
    #: A claimable task's place among the claimable ones, for the FIFO order of claims
    #: (a compacted snapshot keeps it; ``None``: after every one queued before it).
    queued: int | None = None


@attrs.frozen
class Claimed:
    """Due tasks handed to a worker, which holds them until ``lease_until``."""

    ids: tuple[str, ...]
    worker_id: str
    lease_until: float
    at: float


@attrs.frozen
class Renewed:
    """Every task a worker holds is leased until ``lease_until``."""

    worker_id: str
    lease_until: float


@attrs.frozen
class Released:
    """Running tasks go back to PENDING without a charge (a graceful stop)."""

    ids: tuple[str, ...]


@attrs.frozen
class Expired:
    """Running tasks whose lease ended at ``at``: each counts a lost run, and goes back
    to PENDING or, past its ``max_lost_runs``, to FAILED with the error in ``failed``."""

    ids: tuple[str, ...]
    at: float
    #: The tasks that end FAILED, with their ``WorkerLostError`` error. ``None`` in
    #: records written before it was stored (the replay works it out).
    failed: Mapping[str, TaskError] | None = None


@attrs.frozen
class Cancelled:
    task_id: str
    at: float
    #: It was RUNNING: its worker must be told to stop the run.
    was_running: bool = False


@attrs.frozen
class Retried:
    """A FAILED task is PENDING again with fresh budgets."""

    task_id: str
    at: float


@attrs.frozen
class Purged:
    """Finished tasks and their results are forgotten."""

    ids: tuple[str, ...]


@attrs.frozen
class ProgressSet:
    """A running task reported how far it has got."""

    task_id: str
    progress: Progress


@attrs.frozen
class QueuePaused:
    name: str
    paused: bool


@attrs.frozen
class QueueLimited:
    name: str
    limit: RateLimit | None
    #: The starts the limit counts (a compacted snapshot carries them; a change has none).
    starts: tuple[float, ...] = ()


@attrs.frozen
class ScheduleFired:
    """Slot ``slot`` of a schedule fired (its task, if created, is a ``Put`` beside it)."""

    name: str
    slot: float


@attrs.frozen
class SchedulesRecorded:
    schedules: tuple[ScheduleInfo, ...]


@attrs.frozen
class WorkerSeen:
    """A worker pool's heartbeat."""

    info: WorkerInfo


@attrs.frozen
class WorkerGone:
    worker_id: str


Event = (
    Put
    | Claimed
    | Renewed
    | Outcome
    | Released
    | Expired
    | Cancelled
    | Retried
    | Purged
    | ProgressSet
    | QueuePaused
    | QueueLimited
    | ScheduleFired
    | SchedulesRecorded
    | WorkerSeen
    | WorkerGone
)
