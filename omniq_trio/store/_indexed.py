"""``IndexedStore``: the Store contract implemented once over a ``TaskIndex``.

A subclass says how a change is committed (the memory store applies it; the
journal writes it down first) and how the index is brought up to date before
a read (the journal catches up with other processes); everything else is here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from ..errors import InvalidTransitionError, LeaseLostError, TaskNotFoundError
from ..models import Task, TaskResult, TaskStatus
from ._base import Change, Outcome, Store, StoreStats
from ._events import Cancelled, Completed, Event, Failed, Put, Released, Retried
from ._index import DuplicateTaskError, TaskIndex

__all__ = ["IndexedStore", "Plan", "changes_of"]

R = TypeVar("R")

#: What a change does to the index: its events, and how to compute the
#: caller's answer once they are applied.
Plan = tuple[Sequence[Event], Callable[[], R]]


def _none() -> None:
    return None


def changes_of(events: Iterable[Event]) -> list[Change]:
    """The changes ``events`` make that waiters wait for."""
    work = finished = False
    for event in events:
        match event:
            case Put() | Released() | Retried():
                work = True
            case Completed() | Cancelled():
                finished = True
            case Failed(retry_at=retry_at):
                finished = finished or retry_at is None
                work = True
    return [change for change, made in ((Change.WORK, work), (Change.FINISHED, finished)) if made]


class IndexedStore(Store):
    """A store whose state is a :class:`TaskIndex` changed by events."""

    def __init__(self) -> None:
        super().__init__()
        self._index = TaskIndex()

    @abstractmethod
    async def _commit(self, plan: Callable[[TaskIndex], Plan[R]]) -> R:
        """Run ``plan`` against the up-to-date index, make its events durable,
        apply them (then :meth:`_applied`), and return the plan's answer.
        Exceptions ``plan`` raises reach the caller and change nothing."""

    @abstractmethod
    async def _read(self, query: Callable[[TaskIndex], R]) -> R:
        """Run ``query`` against the up-to-date index."""

    def _applied(self, events: Iterable[Event]) -> None:
        """Wake those waiting for what ``events`` did."""
        for change in changes_of(events):
            self._notify(change)

    # ---------------------------------------------------------------- changes

    async def enqueue(self, tasks: Sequence[Task]) -> None:
        def plan(index: TaskIndex) -> Plan[None]:
            seen: set[str] = set()
            for task in tasks:
                if task.id in seen:
                    raise DuplicateTaskError(task.id)
                seen.add(task.id)
            return [index.enqueue_event(task) for task in tasks], _none

        if tasks:
            await self._commit(plan)

    async def cancel(self, task_id: str, *, at: float) -> bool:
        def plan(index: TaskIndex) -> Plan[bool]:
            event = index.cancel_event(task_id, at=at)
            return ([event], lambda: True) if event else ([], lambda: False)

        return await self._commit(plan)

    async def retry(self, task_id: str, *, at: float) -> None:
        await self._commit(lambda index: ([index.retry_event(task_id, at=at)], _none))

    async def claim(
        self, worker_id: str, *, now: float, limit: int, lease_until: float
    ) -> list[Task]:
        def plan(index: TaskIndex) -> Plan[list[Task]]:
            event = index.claim_event(worker_id, now=now, limit=limit, lease_until=lease_until)
            if event is None:
                return [], list
            return [event], lambda: [index.tasks[task_id] for task_id in event.ids]

        return await self._commit(plan)

    async def record(self, outcomes: Sequence[Outcome]) -> list[Exception | None]:
        def plan(index: TaskIndex) -> Plan[list[Exception | None]]:
            events: list[Event] = []
            errors: list[Exception | None] = []
            seen: set[str] = set()
            for o in outcomes:
                try:
                    if o.error is None:
                        event: Event = index.complete_event(
                            o.task_id, o.worker_id, o.value, at=o.at, next_eta=o.next_eta
                        )
                    else:
                        event = index.fail_event(
                            o.task_id,
                            o.worker_id,
                            o.error,
                            at=o.at,
                            retry_at=o.retry_at,
                            next_eta=o.next_eta,
                        )
                except (InvalidTransitionError, LeaseLostError, TaskNotFoundError) as exc:
                    errors.append(exc)
                    continue
                if o.task_id in seen:  # two outcomes for one task in one call: the first wins
                    errors.append(LeaseLostError(o.task_id, o.worker_id, "outcome given twice"))
                    continue
                seen.add(o.task_id)
                events.append(event)
                errors.append(None)
            return events, lambda: errors

        if not outcomes:
            return []
        return await self._commit(plan)

    async def release(self, task_ids: Sequence[str], *, worker_id: str) -> list[str]:
        def plan(index: TaskIndex) -> Plan[list[str]]:
            event = index.release_event(task_ids, worker_id)
            return ([event], lambda: list(event.ids)) if event else ([], list)

        return await self._commit(plan)

    async def renew(self, worker_id: str, *, lease_until: float) -> None:
        def plan(index: TaskIndex) -> Plan[None]:
            event = index.renew_event(worker_id, lease_until=lease_until)
            return ([event] if event else []), _none

        await self._commit(plan)

    async def reclaim_expired(self, *, now: float) -> list[str]:
        def plan(index: TaskIndex) -> Plan[list[str]]:
            event = index.expired_event(now=now)
            return ([event], lambda: list(event.ids)) if event else ([], list)

        return await self._commit(plan)

    async def purge(self, *, finished_before: float, limit: int | None = None) -> int:
        def plan(index: TaskIndex) -> Plan[int]:
            event = index.purge_event(finished_before=finished_before, limit=limit)
            return ([event], lambda: len(event.ids)) if event else ([], lambda: 0)

        return await self._commit(plan)

    # ---------------------------------------------------------------- reading

    async def get_task(self, task_id: str) -> Task:
        return await self._read(lambda index: index.get(task_id))

    async def get_result(self, task_id: str) -> TaskResult | None:
        def query(index: TaskIndex) -> TaskResult | None:
            index.get(task_id)  # raises TaskNotFoundError
            return index.results.get(task_id)

        return await self._read(query)

    async def list_tasks(
        self, *, status: TaskStatus | None = None, limit: int | None = None
    ) -> list[Task]:
        return await self._read(lambda index: index.list(status, limit))

    async def stats(self) -> StoreStats:
        def query(index: TaskIndex) -> StoreStats:
            oldest = index.oldest_pending()
            return StoreStats(
                {status: index.counts[status] for status in TaskStatus},
                oldest.created_at if oldest else None,
            )

        return await self._read(query)

    async def next_due(self, *, now: float) -> float | None:
        return await self._read(lambda index: index.next_due(now))
