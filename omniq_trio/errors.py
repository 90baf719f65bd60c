"""Every error a user of omniq_trio can cause or meet, each with a message that says what to do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import TaskStatus

__all__ = [
    "ConfigError",
    "DuplicateTaskError",
    "FunctionImportError",
    "InvalidTransitionError",
    "JournalCorruptError",
    "JournalError",
    "LeaseLostError",
    "NoTaskContextError",
    "OmniQError",
    "ProgressError",
    "ResultTooLargeError",
    "ScheduleError",
    "SerializationError",
    "StoreClosedError",
    "StoreError",
    "StoreUnavailableError",
    "TaskContextError",
    "TaskModuleImportError",
    "TaskNotFoundError",
    "TaskOptionError",
    "TaskTimeoutError",
    "TaskTooLargeError",
    "TransactionalEnqueueError",
    "UniqueConflictError",
    "UnregisteredTaskError",
    "UnsupportedPlatformError",
    "WorkerLostError",
]


class OmniQError(Exception):
    """Base class of every error omniq_trio raises on purpose."""


class ConfigError(OmniQError, ValueError):
    """A setting (argument, ``Settings`` field or ``OMNIQ_*`` variable) is invalid."""


class TaskOptionError(OmniQError, ValueError):
    """An ``enqueue`` option is invalid (negative delay, eta and delay together, a bad queue
    name, ...); nothing was stored."""


class ScheduleError(OmniQError, ValueError):
    """A cron :class:`~omniq_trio.Schedule` is invalid (its expression, timezone, queue,
    name, arguments), or two schedules of one pool share a name; nothing was started."""


class SerializationError(OmniQError, ValueError):
    """A value cannot be stored: task arguments at ``enqueue``, or a task's return value."""


class FunctionImportError(OmniQError, LookupError):
    """A ``"module:qualname"`` task path does not name an importable callable."""


class TaskNotFoundError(OmniQError, LookupError):
    """No task has this id (it never existed, or its result expired and was purged)."""

    def __init__(self, task_id: str, detail: str | None = None) -> None:
        super().__init__(
            f"no task with id {task_id!r} "
            f"({detail or 'never enqueued, or purged after result_ttl'})"
        )
        self.task_id = task_id


class InvalidTransitionError(OmniQError):
    """A change of state the task lifecycle does not allow (see ``models.TRANSITIONS``)."""

    def __init__(self, task_id: str, old: TaskStatus, new: TaskStatus) -> None:
        super().__init__(f"task {task_id} cannot go from {old.value} to {new.value}")
        self.task_id = task_id
        self.old = old
        self.new = new


class DuplicateTaskError(OmniQError, ValueError):
    """A task with this id already exists, or an id appears twice in one batch;
    ``enqueue`` changed nothing."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"a task with id {task_id!r} already exists")
        self.task_id = task_id


class UniqueConflictError(OmniQError):
    """A FAILED task cannot be retried: another live task holds its unique key."""

    def __init__(self, task_id: str, unique_key: str, holder: str) -> None:
        super().__init__(
            f"task {task_id} cannot be retried: its unique key {unique_key!r} is held by "
            f"task {holder}, which has not finished; retry it once that one has"
        )
        self.task_id = task_id
        self.unique_key = unique_key
        self.holder = holder


class LeaseLostError(OmniQError):
    """A worker reported on a task it no longer holds.

    The task was cancelled, or its lease expired and it was handed to another
    worker; the report is dropped and nothing changes.
    """

    def __init__(self, task_id: str, worker_id: str, detail: str) -> None:
        super().__init__(f"worker {worker_id} no longer holds task {task_id}: {detail}")
        self.task_id = task_id
        self.worker_id = worker_id


class ProgressError(TaskOptionError):
    """A task reported a bad progress (``ctx.report_progress``): a fraction that is not a
    number between 0 and 1, or a message that is not a string. Nothing was stored."""


class TaskContextError(OmniQError, RuntimeError):
    """The task context (:func:`~omniq_trio.current_task`) was used where it cannot be."""


class NoTaskContextError(TaskContextError):
    """:func:`~omniq_trio.current_task` was called outside a running task."""


class TaskTimeoutError(OmniQError, TimeoutError):
    """Stored as a task's error when an execution ran past its ``timeout``."""


class WorkerLostError(OmniQError):
    """Stored as a task's error when its runs were lost to dead workers more than
    ``max_lost_runs`` times (the worker process died, was killed, ran out of memory).

    A run is lost when the lease of the worker running it expires; the task
    runs again, up to its ``max_lost_runs`` budget (separate from ``max_retries``),
    so a task that kills its worker cannot loop forever.
    """


class StoreError(OmniQError):
    """The store cannot serve the request (I/O error, lost connection, ...)."""


class StoreUnavailableError(StoreError):
    """The store could not be reopened within ``Settings.store_failure_timeout``.

    A worker pool raises it from ``run()``; ``omniq-trio worker`` and ``serve``
    exit with status 75 (EX_TEMPFAIL) so that a supervisor restarts them.
    """


class StoreClosedError(StoreError):
    """The store was closed (or not opened yet)."""


class JournalError(StoreError):
    """The file journal cannot be used as it is on disk."""


class UnsupportedPlatformError(JournalError):
    """The file journal cannot run on this platform (it needs POSIX file locks, which
    Windows lacks); use the memory store or PostgreSQL there."""


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


class UnregisteredTaskError(OmniQError, LookupError):
    """Stored as a task's error when its function is not registered in the worker's process.

    Nothing was imported or run. A worker runs a function only if it is
    decorated with ``@omniq_trio.task`` in a module the worker imports, passed
    as a function object to ``enqueue`` in the worker's own process, or
    defined at module level in a module of ``Settings.imports``.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"refused to run {path!r} ({reason}); nothing was imported. Register it: "
            "@omniq_trio.task, or a module-level function of a module the worker imports "
            "(Settings.imports, OMNIQ_IMPORTS, --import). Once a worker that knows it runs, "
            "`omniq-trio retry TASK_ID` runs this task again"
        )
        self.path = path
        self.reason = reason


class TaskModuleImportError(OmniQError, ImportError):
    """A module of ``Settings.imports`` (``OMNIQ_IMPORTS``, ``--import``) cannot be imported."""

    def __init__(self, module: str, cause: BaseException) -> None:
        super().__init__(
            f"cannot import {module!r} (Settings.imports / OMNIQ_IMPORTS / --import): "
            f"{type(cause).__name__}: {cause}"
        )
        self.module = module


class TaskTooLargeError(SerializationError):
    """A task's stored call (its function path and arguments) exceeds ``Settings.max_task_bytes``.

    Raised by ``enqueue`` (nothing is stored), and stored as the error of a
    task a worker refused to decode for its size.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the task's stored call is {size:,} bytes, more than max_task_bytes ({limit:,}); "
            "pass a reference to large data (a path, a URL, a row id) instead of the data, "
            "or raise Settings.max_task_bytes (OMNIQ_MAX_TASK_BYTES)"
        )
        self.size = size
        self.limit = limit


class ResultTooLargeError(SerializationError):
    """Stored as a task's error when its return value exceeds ``Settings.max_result_bytes``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the task's return value is {size:,} bytes when stored, more than max_result_bytes "
            f"({limit:,}); it was not stored. Return a reference to large data instead, or "
            "raise Settings.max_result_bytes (OMNIQ_MAX_RESULT_BYTES)"
        )
        self.size = size
        self.limit = limit


class TransactionalEnqueueError(TaskOptionError):
    """``enqueue(connection=...)`` cannot write the task in that transaction (a store
    without transactions, or a connection of the wrong kind); nothing was written."""
