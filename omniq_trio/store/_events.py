"""The changes a store makes to its tasks, as values.

The in-memory index applies them; the file journal also writes them down and
replays them on open. An event is only ever created from the current state by
the index (``TaskIndex.*_event``), so applying it cannot fail.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..models import Task, TaskError, TaskResult

__all__ = [
    "Cancelled",
    "Claimed",
    "Completed",
    "Event",
    "Failed",
    "Purged",
    "Put",
    "Released",
    "Renewed",
    "Retried",
]


@attrs.frozen
class Put:
    """A task (and its latest result) exactly as given: an enqueue, or a compacted snapshot."""

    task: Task
    result: TaskResult | None = None


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
class Completed:
    """A run returned ``value``; the task is SUCCESS, or PENDING at ``next_eta`` if it repeats."""

    task_id: str
    worker_id: str
    value: Any
    at: float
    next_eta: float | None = None


@attrs.frozen
class Failed:
    """A run raised ``error``: RETRYING at ``retry_at``, PENDING at ``next_eta``
    (a repeating task's next run), or else FAILED."""

    task_id: str
    worker_id: str
    error: TaskError
    at: float
    retry_at: float | None = None
    next_eta: float | None = None


@attrs.frozen
class Released:
    """Running tasks go back to PENDING without a charge (stop, or expired lease)."""

    ids: tuple[str, ...]


@attrs.frozen
class Cancelled:
    task_id: str
    at: float


@attrs.frozen
class Retried:
    """A FAILED task is PENDING again with a fresh retry budget."""

    task_id: str
    at: float


@attrs.frozen
class Purged:
    """Finished tasks and their results are forgotten."""

    ids: tuple[str, ...]


Event = Put | Claimed | Renewed | Completed | Failed | Released | Cancelled | Retried | Purged
