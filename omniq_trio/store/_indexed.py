"""``IndexedStore``: the Store contract implemented once over a ``TaskIndex``.

A subclass says how a change is committed (the memory store applies it; the
journal writes it down first) and how the index is brought up to date before
a read (the journal catches up with other processes); everything else is here.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TypeVar

from ..errors import LeaseLostError, TaskNotFoundError
from ..models import (
    Enqueued,
    Progress,
    QueueInfo,
    RateLimit,
    ScheduleInfo,
    Task,
    TaskPage,
    TaskResult,
    TaskStatus,
    WorkerInfo,
)
from ._base import Change, Outcome, Reclaimed, Store, StoreStats
from ._events import (
    Cancelled,
    Event,
    Expired,
    Put,
    QueueLimited,
    QueuePaused,
    Released,
    Retried,
    SchedulesRecorded,
    WorkerGone,
    WorkerSeen,
)
from ._index import TaskIndex
from ._index_queries import list_page, next_due, queue_infos, stats
from ._rules import (
    ENQUEUE_CHANGES,
    WORK_CHANGES,
    cancel_changes,
    duplicate_outcomes,
    outcome_changes,
    reclaim_changes,
)

__all__ = ["IndexedStore", "Plan", "changes_of"]

R = TypeVar("R")

#: What a change does to the index: its events, and how to compute the
#: caller's answer once they are applied.
Plan = tuple[Sequence[Event], Callable[[], R]]


def _none() -> None:
    return None


def changes_of(events: Iterable[Event]) -> set[Change]:
    """Which waiters ``events`` wake (the rules of ``_rules.py``, per event)."""
    changes: set[Change] = set()
    for event in events:
        match event:
            case Put() | Released() | Retried():
                changes |= ENQUEUE_CHANGES
            case Outcome():
                changes |= outcome_changes(event)
            case Cancelled(was_running=was_running):
                changes |= cancel_changes(was_running=was_running)
            case Expired():
                changes |= reclaim_changes(requeued=True, failed=True)
            case QueuePaused(paused=False) | QueueLimited():
                changes |= WORK_CHANGES
    return changes


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
        self._notify_changes(changes_of(events))

    # ---------------------------------------------------------------- changes

    async def enqueue(self, tasks: Sequence[Task]) -> list[Enqueued]:
        def plan(index: TaskIndex) -> Plan[list[Enqueued]]:
            events, answers = index.enqueue_events(tasks)
            return events, lambda: answers

        return await self._commit(plan)

    async def cancel(self, task_id: str, *, at: float) -> bool:
        def plan(index: TaskIndex) -> Plan[bool]:
            event = index.cancel_event(task_id, at=at)
            return ([event], lambda: True) if event else ([], lambda: False)

        return await self._commit(plan)

    async def retry(self, task_id: str, *, at: float) -> None:
        await self._commit(lambda index: ([index.retry_event(task_id, at=at)], _none))

    async def claim(
        self,
        worker_id: str,
        *,
        now: float,
        limit: int,
        lease_until: float,
        queues: Mapping[str, int] | None = None,
    ) -> list[Task]:
        def plan(index: TaskIndex) -> Plan[list[Task]]:
            event = index.claim_event(
                worker_id, now=now, limit=limit, lease_until=lease_until, queues=queues
            )
            if event is None:
                return [], list
            return [event], lambda: index.get_many(list(event.ids))

        return await self._commit(plan)

    async def record(self, outcomes: Sequence[Outcome]) -> list[Exception | None]:
        def plan(index: TaskIndex) -> Plan[list[Exception | None]]:
            events: list[Event] = []
            errors: list[Exception | None] = list(duplicate_outcomes(outcomes))
            for i, outcome in enumerate(outcomes):
                if errors[i] is not None:
                    continue
                try:
                    events.append(index.check_outcome(outcome))
                except (LeaseLostError, TaskNotFoundError) as exc:
                    errors[i] = exc
            return events, lambda: errors

        if not outcomes:
            return await self._read(lambda index: [])
        return await self._commit(plan)

    async def release(self, task_ids: Sequence[str], *, worker_id: str) -> list[str]:
        def plan(index: TaskIndex) -> Plan[list[str]]:
            event = index.release_event(task_ids, worker_id)
            return ([event], lambda: list(event.ids)) if event else ([], list)

        return await self._commit(plan)

    async def renew(self, worker_id: str, *, lease_until: float) -> frozenset[str]:
        def plan(index: TaskIndex) -> Plan[frozenset[str]]:
            event = index.renew_event(worker_id, lease_until=lease_until)
            return ([event] if event else []), lambda: index.held_by(worker_id)

        return await self._commit(plan)

    async def reclaim_expired(self, *, now: float) -> Reclaimed:
        def plan(index: TaskIndex) -> Plan[Reclaimed]:
            event = index.expired_event(now=now)
            if event is None:
                return [], Reclaimed

            def answer() -> Reclaimed:
                failed = tuple(
                    task_id
                    for task_id in event.ids
                    if index.cols.status_of(index.slot(task_id)) is TaskStatus.FAILED
                )
                requeued = tuple(task_id for task_id in event.ids if task_id not in failed)
                return Reclaimed(requeued, failed)

            return [event], answer

        return await self._commit(plan)

    async def purge(
        self, *, finished_before: float, failed_before: float, limit: int | None = None
    ) -> int:
        def plan(index: TaskIndex) -> Plan[int]:
            event = index.purge_event(
                finished_before=finished_before, failed_before=failed_before, limit=limit
            )
            return ([event], lambda: len(event.ids)) if event else ([], lambda: 0)

        return await self._commit(plan)

    async def set_progress(self, task_id: str, *, worker_id: str, progress: Progress) -> None:
        await self._commit(
            lambda index: ([index.progress_event(task_id, worker_id, progress)], _none)
        )

    async def pause_queue(self, name: str, *, paused: bool) -> None:
        await self._commit(lambda index: ([QueuePaused(name, paused)], _none))

    async def set_queue_limit(self, name: str, limit: RateLimit | None) -> None:
        await self._commit(lambda index: ([QueueLimited(name, limit)], _none))

    async def fire_schedule(self, name: str, *, slot: float, task: Task) -> Enqueued | None:
        def plan(index: TaskIndex) -> Plan[Enqueued | None]:
            events, answer = index.fire_events(name, slot, task)
            return events, lambda: answer

        return await self._commit(plan)

    async def register_schedules(self, schedules: Sequence[ScheduleInfo]) -> None:
        if not schedules:
            return await self._read(lambda index: None)
        await self._commit(lambda index: ([SchedulesRecorded(tuple(schedules))], _none))

    async def register_worker(self, info: WorkerInfo) -> None:
        def plan(index: TaskIndex) -> Plan[None]:
            # pools that died without unregistering are dropped with the next heartbeat
            gone: list[Event] = [
                WorkerGone(w.id)
                for w in index.controls.workers.values()
                if w.expires_at < info.last_seen and w.id != info.id
            ]
            return [*gone, WorkerSeen(info)], _none

        await self._commit(plan)

    async def unregister_worker(self, worker_id: str) -> None:
        def plan(index: TaskIndex) -> Plan[None]:
            known = worker_id in index.controls.workers
            return ([WorkerGone(worker_id)] if known else []), _none

        await self._commit(plan)

    # ---------------------------------------------------------------- reading

    async def get_task(self, task_id: str) -> Task:
        return await self._read(lambda index: index.get(task_id))

    async def get_result(self, task_id: str) -> TaskResult | None:
        def query(index: TaskIndex) -> TaskResult | None:
            return index.result(index.slot(task_id))  # slot: TaskNotFoundError

        return await self._read(query)

    async def list_tasks(
        self,
        *,
        status: TaskStatus | frozenset[TaskStatus] | None = None,
        queue: str | None = None,
        func: str | None = None,
        id_prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> TaskPage:
        return await self._read(
            lambda index: list_page(
                index,
                status=status,
                queue=queue,
                func=func,
                id_prefix=id_prefix,
                limit=limit,
                cursor=cursor,
                newest_first=newest_first,
            )
        )

    async def stats(self, *, now: float) -> StoreStats:
        return await self._read(lambda index: stats(index, now))

    async def next_due(self, *, now: float, queues: Collection[str] | None = None) -> float | None:
        return await self._read(lambda index: next_due(index, now, queues))

    async def list_queues(self) -> list[QueueInfo]:
        return await self._read(queue_infos)

    async def list_schedules(self) -> list[ScheduleInfo]:
        return await self._read(lambda index: index.controls.schedule_list())

    async def list_workers(self, *, now: float) -> list[WorkerInfo]:
        return await self._read(lambda index: index.controls.live_workers(now))
