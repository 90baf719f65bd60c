"""Every error a user of omniq_trio can cause or meet, each with a message that says what to do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import TaskStatus

__all__ = [
    "ConfigError",
    "FunctionImportError",
    "InvalidTransitionError",
    "JournalCorruptError",
    "JournalError",
    "LeaseLostError",
    "OmniQError",
    "SerializationError",
    "StoreClosedError",
    "StoreError",
    "TaskNotFoundError",
    "TaskTimeoutError",
    "TransactionalEnqueueError",
]


class OmniQError(Exception):
    """Base class of every error omniq_trio raises on purpose."""


class ConfigError(OmniQError, ValueError):
    """A setting (argument, ``Settings`` field or ``OMNIQ_*`` variable) is invalid."""


class SerializationError(OmniQError, ValueError):
    """A value cannot be stored: task arguments at ``enqueue``, or a task's return value."""


class FunctionImportError(OmniQError, LookupError):
    """A ``"module:qualname"`` task path does not name an importable callable."""


class TaskNotFoundError(OmniQError, LookupError):
    """No task has this id (it never existed, or its result expired and was purged)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"no task with id {task_id!r} (never enqueued, or purged after result_ttl)"
        )
        self.task_id = task_id


class InvalidTransitionError(OmniQError):
    """A change of state the task lifecycle does not allow (see ``models.TRANSITIONS``)."""

    def __init__(self, task_id: str, old: TaskStatus, new: TaskStatus) -> None:
        super().__init__(f"task {task_id} cannot go from {old.value} to {new.value}")
        self.task_id = task_id
        self.old = old
        self.new = new


class LeaseLostError(OmniQError):
    """A worker reported on a task it no longer holds.

    The task was cancelled, or its lease expired and it was handed to another
    worker; the report is dropped and nothing changes.
    """

    def __init__(self, task_id: str, worker_id: str, detail: str) -> None:
        super().__init__(f"worker {worker_id} no longer holds task {task_id}: {detail}")
        self.task_id = task_id
        self.worker_id = worker_id


class TaskTimeoutError(OmniQError, TimeoutError):
    """Stored as a task's error when an execution ran past its ``timeout``."""


class StoreError(OmniQError):
    """The store cannot serve the request (I/O error, lost connection, ...)."""


class StoreClosedError(StoreError):
    """The store was closed, or failed and must be reopened."""


class JournalError(StoreError):
    """The file journal cannot be used as it is on disk."""


class JournalCorruptError(JournalError):
    """A journal record before the tail is damaged; nothing was changed.

    Run ``omniq-trio repair`` (or :func:`omniq_trio.store.repair_journal`) to
    keep every record before the damage and drop the rest.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(
            f"journal {path} is damaged at byte offset {offset} ({reason}); records after it "
            f"are intact, so this is not a torn write. Run `omniq-trio repair --base-dir "
            f"{path.parent}` to keep everything before the damage."
        )
        self.path = path
        self.offset = offset
        self.reason = reason


class TransactionalEnqueueError(OmniQError):
    """``enqueue(connection=...)`` cannot write the task in that transaction (a store
    without transactions, or a connection of the wrong kind); nothing was written."""
