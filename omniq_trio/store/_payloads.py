"""Where the parts of a task that the index does not hold live: its payload source.

The index keeps, per task, *refs* to the events that carry its payload: the
``Put`` that created it (arguments, headers, options), the event that set its
error, its result, its progress. A payload source turns a ref back into the
event. The memory store keeps the events themselves (:class:`MemoryPayloads`);
the journal reads them back from its file by offset (``_journal/_payloads.py``).

The functions here take the parts out of an event, whatever its kind.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..models import Progress, Task, TaskError
from ._base import Outcome
from ._events import Event, Expired, ProgressSet, Put

__all__ = [
    "MemoryPayloads",
    "PayloadSource",
    "error_in",
    "progress_in",
    "result_in",
    "task_in",
]


class PayloadSource(Protocol):
    """Events by ref, for the index."""

    def hold(self, event: Event, ref: int) -> int:
        """Keep ``event`` for one column of one slot; returns the ref to store. ``ref`` is
        where the event was written (the journal's offset), or 0."""

    def release(self, ref: int) -> None:
        """A column no longer refers to ``ref``."""

    def event(self, ref: int) -> Event:
        """The event kept under ``ref``."""

    def prefetch(self, refs: list[int]) -> None:
        """``refs`` are about to be read (a claim's tasks): read them ahead if that is cheaper."""


class MemoryPayloads:
    """Events kept as objects, one entry per column that refers to one."""

    def __init__(self) -> None:
        self._events: dict[int, Event] = {}
        self._next = 1

    def hold(self, event: Event, ref: int) -> int:
        ref = self._next
        self._next += 1
        self._events[ref] = event
        return ref

    def release(self, ref: int) -> None:
        self._events.pop(ref, None)

    def event(self, ref: int) -> Event:
        return self._events[ref]

    def prefetch(self, refs: list[int]) -> None:
        pass

    def __len__(self) -> int:
        return len(self._events)


def task_in(event: Event) -> Task:
    """The task a ``Put`` created."""
    if not isinstance(event, Put):
        raise TypeError(f"a task's payload is a put event, not {type(event).__name__}")
    return event.task


def error_in(event: Event, task_id: str) -> TaskError | None:
    """The error ``event`` gave task ``task_id``."""
    match event:
        case Outcome(error=error):
            return error
        case Put(task=task):
            return task.error
        case Expired(failed=failed) if failed is not None:
            return failed.get(task_id)
    raise TypeError(f"no error in a {type(event).__name__} event")


def result_in(event: Event, task_id: str) -> tuple[Any, TaskError | None]:
    """The value and error of the result ``event`` stored for ``task_id``."""
    match event:
        case Outcome(value=value, error=error):
            return value, error
        case Put(result=result) if result is not None:
            return result.value, result.error
        case Expired(failed=failed) if failed is not None:
            return None, failed.get(task_id)
    raise TypeError(f"no result in a {type(event).__name__} event")


def progress_in(event: Event) -> Progress | None:
    match event:
        case ProgressSet(progress=progress):
            return progress
        case Put(task=task):
            return task.progress
    raise TypeError(f"no progress in a {type(event).__name__} event")
