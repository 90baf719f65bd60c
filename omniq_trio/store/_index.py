"""``TaskIndex``: the state of every task in memory, changed only by events.

The memory store is this index; the file journal is this index plus a log of
its events. ``*_event`` methods check a requested change against the current
state and the lifecycle (raising a named error and changing nothing when it is
not allowed) and return the event that makes it; :meth:`TaskIndex.apply`
makes it. An event built by the index is valid by construction, so ``apply``
never fails, which is what lets the journal replay its log without checks.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any, Final

from ..errors import InvalidTransitionError, LeaseLostError, TaskNotFoundError
from ..models import (
    CLAIMABLE_STATUSES,
    FINISHED_STATUSES,
    Task,
    TaskError,
    TaskResult,
    TaskStatus,
    check_transition,
)
from ._events import (
    Cancelled,
    Claimed,
    Completed,
    Event,
    Failed,
    Purged,
    Put,
    Released,
    Renewed,
    Retried,
)

__all__ = ["DuplicateTaskError", "TaskIndex"]

_PENDING: Final = TaskStatus.PENDING
_RUNNING: Final = TaskStatus.RUNNING


def _replace(task: Task, **changes: Any) -> Task:
    """``attrs.evolve`` for the index's hot paths: a copy of the instance dict.

    Tasks are made by the index from tasks that were checked when created,
    so re-running ``__init__`` would only cost time.
    """
    new = object.__new__(Task)
    state = new.__dict__
    state.update(task.__dict__)
    state.update(changes)
    return new


class DuplicateTaskError(InvalidTransitionError):
    """A task with this id already exists."""

    def __init__(self, task_id: str) -> None:
        Exception.__init__(self, f"a task with id {task_id!r} already exists")
        self.task_id = task_id


class TaskIndex:
    """Tasks, results, and the queues that make claiming and expiry cheap."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.results: dict[str, TaskResult] = {}
        self.counts: Counter[TaskStatus] = Counter()
        # Claimable tasks sit in one of two heaps: `_scheduled` by eta until
        # they are due, then `_ready` by (-priority, eta, seq). Entries are
        # removed lazily: one is live only while `_queued[id] == seq`.
        self._seq = itertools.count()
        self._queued: dict[str, int] = {}
        self._scheduled: list[tuple[float, int, str]] = []
        self._ready: list[tuple[int, float, int, str]] = []
        self._held: dict[str, set[str]] = {}
        # (finished_at, id) in the order tasks finished, for purging old results
        self._finished: deque[tuple[float, str]] = deque()
        self._bulk = False

    # ----------------------------------------------------------------- queries

    def get(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise TaskNotFoundError(task_id) from None

    def list(self, status: TaskStatus | None = None, limit: int | None = None) -> list[Task]:
        """Tasks in the order they were enqueued, optionally of one status."""
        tasks: Iterable[Task] = self.tasks.values()
        if status is not None:
            tasks = (t for t in tasks if t.status is status)
        return list(itertools.islice(tasks, limit))

    def next_due(self, now: float) -> float | None:
        """The earliest eta of a claimable task (``now`` or earlier if one is due)."""
        self._promote(now)
        while self._ready:
            _, eta, seq, task_id = self._ready[0]
            if self._queued.get(task_id) == seq:
                return eta
            heapq.heappop(self._ready)
        while self._scheduled:
            eta, seq, task_id = self._scheduled[0]
            if self._queued.get(task_id) == seq:
                return eta
            heapq.heappop(self._scheduled)
        return None

    def oldest_pending(self) -> Task | None:
        """The claimable task that was enqueued first."""
        for task in self.tasks.values():
            if task.status in CLAIMABLE_STATUSES:
                return task
        return None

    def enqueue_event(self, task: Task) -> Put:
        if task.id in self.tasks:
            raise DuplicateTaskError(task.id)
        if task.status is not _PENDING:
            raise InvalidTransitionError(task.id, task.status, _PENDING)
        return Put(task)

    def claim_event(
        self, worker_id: str, *, now: float, limit: int, lease_until: float
    ) -> Claimed | None:
        """Pick up to ``limit`` due tasks: highest priority, then earliest eta, then FIFO."""
        self._promote(now)
        ids: list[str] = []
        ready = self._ready
        queued = self._queued
        while ready and len(ids) < limit:
            _, _, seq, task_id = heapq.heappop(ready)
            if queued.get(task_id) == seq:
                del queued[task_id]
                ids.append(task_id)
        if not ids:
            return None
        return Claimed(tuple(ids), worker_id, lease_until, now)

    def complete_event(
        self, task_id: str, worker_id: str, value: Any, *, at: float, next_eta: float | None = None
    ) -> Completed:
        self._check_held(
            task_id, worker_id, _PENDING if next_eta is not None else TaskStatus.SUCCESS
        )
        return Completed(task_id, worker_id, value, at, next_eta)

    def fail_event(
        self,
        task_id: str,
        worker_id: str,
        error: TaskError,
        *,
        at: float,
        retry_at: float | None = None,
        next_eta: float | None = None,
    ) -> Failed:
        if retry_at is not None:
            new = TaskStatus.RETRYING
        elif next_eta is not None:
            new = _PENDING
        else:
            new = TaskStatus.FAILED
        self._check_held(task_id, worker_id, new)
        return Failed(task_id, worker_id, error, at, retry_at, next_eta)

    def release_event(self, task_ids: Iterable[str], worker_id: str) -> Released | None:
        """Release those of ``task_ids`` that ``worker_id`` still holds."""
        held = self._held.get(worker_id, set())
        ids = tuple(dict.fromkeys(t for t in task_ids if t in held))
        return Released(ids) if ids else None

    def renew_event(self, worker_id: str, *, lease_until: float) -> Renewed | None:
        return Renewed(worker_id, lease_until) if self._held.get(worker_id) else None

    def expired_event(self, *, now: float) -> Released | None:
        """Release every running task whose lease ended before ``now``."""
        ids = tuple(
            task_id
            for held in self._held.values()
            for task_id in held
            if (lease := self.tasks[task_id].lease_until) is not None and lease < now
        )
        return Released(ids) if ids else None

    def cancel_event(self, task_id: str, *, at: float) -> Cancelled | None:
        """None when the task has already finished (there is nothing to cancel)."""
        task = self.get(task_id)
        if task.status in FINISHED_STATUSES:
            return None
        check_transition(task_id, task.status, TaskStatus.CANCELLED)
        return Cancelled(task_id, at)

    def retry_event(self, task_id: str, *, at: float) -> Retried:
        task = self.get(task_id)
        check_transition(task_id, task.status, _PENDING)
        if task.status is not TaskStatus.FAILED:
            raise InvalidTransitionError(task_id, task.status, _PENDING)
        return Retried(task_id, at)

    def purge_event(self, *, finished_before: float, limit: int | None = None) -> Purged | None:
        """Finished tasks whose last run ended before ``finished_before``."""
        ids: list[str] = []
        for finished_at, task_id in self._finished:
            if finished_at >= finished_before or (limit is not None and len(ids) >= limit):
                break
            task = self.tasks.get(task_id)
            if (
                task is not None
                and task.status in FINISHED_STATUSES
                and task.finished_at == finished_at
            ):
                ids.append(task_id)
        return Purged(tuple(ids)) if ids else None

    def _check_held(self, task_id: str, worker_id: str, new: TaskStatus) -> None:
        task = self.get(task_id)
        if task.status is not _RUNNING or task.worker_id != worker_id:
            detail = (
                f"it is {task.status.value}"
                if task.status is not _RUNNING
                else f"it was handed to {task.worker_id} after the lease expired"
            )
            raise LeaseLostError(task_id, worker_id, detail)
        check_transition(task_id, _RUNNING, new)

    # ------------------------------------------------------------------- apply

    def apply(self, event: Event) -> None:
        """Make the change ``event`` describes."""
        self._appliers[type(event)](self, event)

    def apply_all(self, events: Iterable[Event]) -> None:
        appliers = self._appliers
        for event in events:
            appliers[type(event)](self, event)

    def load(self, events: Iterable[Event]) -> None:
        """Apply many events at once (a replay): the queues are built once, at the end."""
        self._bulk = True
        try:
            self.apply_all(events)
        finally:
            self._bulk = False
        self._scheduled = [(self.tasks[i].eta, seq, i) for i, seq in self._queued.items()]
        heapq.heapify(self._scheduled)
        self._ready = []

    def _apply_put(self, event: Put) -> None:
        self._put(event.task, event.result)

    def _apply_claimed(self, event: Claimed) -> None:
        held = self._held.setdefault(event.worker_id, set())
        tasks, queued = self.tasks, self._queued
        for task_id in event.ids:
            task = tasks[task_id]
            queued.pop(task_id, None)
            self._set(
                task,
                _replace(
                    task,
                    status=_RUNNING,
                    started_at=event.at,
                    worker_id=event.worker_id,
                    lease_until=event.lease_until,
                ),
            )
            held.add(task_id)

    def _apply_renewed(self, event: Renewed) -> None:
        for task_id in self._held.get(event.worker_id, ()):
            self.tasks[task_id] = _replace(self.tasks[task_id], lease_until=event.lease_until)

    def _apply_completed(self, event: Completed) -> None:
        task_id, at = event.task_id, event.at
        task = self._unhold(task_id)
        attempts = task.attempts + 1
        self.results[task_id] = TaskResult(
            task_id, TaskStatus.SUCCESS, event.value, None, attempts, task.started_at, at
        )
        if event.next_eta is None:
            self._finish(task, TaskStatus.SUCCESS, at, attempts=attempts, error=None)
        else:
            self._requeue(task, event.next_eta, attempts=0, error=None, finished_at=at)

    def _apply_failed(self, event: Failed) -> None:
        task_id, at, error = event.task_id, event.at, event.error
        task = self._unhold(task_id)
        attempts = task.attempts + 1
        if event.retry_at is not None:
            self._requeue(
                task,
                event.retry_at,
                attempts=attempts,
                error=error,
                finished_at=task.finished_at,
                status=TaskStatus.RETRYING,
            )
            return
        self.results[task_id] = TaskResult(
            task_id, TaskStatus.FAILED, None, error, attempts, task.started_at, at
        )
        if event.next_eta is None:
            self._finish(task, TaskStatus.FAILED, at, attempts=attempts, error=error)
        else:
            self._requeue(task, event.next_eta, attempts=0, error=error, finished_at=at)

    def _apply_released(self, event: Released) -> None:
        for task_id in event.ids:
            task = self._unhold(task_id)
            self._requeue(
                task,
                task.eta,
                attempts=task.attempts,
                error=task.error,
                finished_at=task.finished_at,
            )

    def _apply_cancelled(self, event: Cancelled) -> None:
        task_id, at = event.task_id, event.at
        task = self.tasks[task_id]
        if task.status is _RUNNING:
            task = self._unhold(task_id)
        self._queued.pop(task_id, None)
        self.results[task_id] = TaskResult(
            task_id, TaskStatus.CANCELLED, None, None, task.attempts, task.started_at, at
        )
        self._finish(task, TaskStatus.CANCELLED, at, attempts=task.attempts, error=task.error)

    def _apply_retried(self, event: Retried) -> None:
        task = self.tasks[event.task_id]
        self.results.pop(event.task_id, None)
        self._requeue(task, event.at, attempts=0, error=task.error, finished_at=None)

    def _apply_purged(self, event: Purged) -> None:
        for task_id in event.ids:
            task = self.tasks.pop(task_id)
            self.counts[task.status] -= 1
            self.results.pop(task_id, None)
        self._drop_stale_finished()

    _appliers: Final[dict[type[Any], Callable[[TaskIndex, Any], None]]] = {
        Put: _apply_put,
        Claimed: _apply_claimed,
        Renewed: _apply_renewed,
        Completed: _apply_completed,
        Failed: _apply_failed,
        Released: _apply_released,
        Cancelled: _apply_cancelled,
        Retried: _apply_retried,
        Purged: _apply_purged,
    }

    # ----------------------------------------------------------------- helpers

    def _put(self, task: Task, result: TaskResult | None) -> None:
        old = self.tasks.get(task.id)
        if old is not None:
            self.counts[old.status] -= 1
        self.tasks[task.id] = task
        self.counts[task.status] += 1
        if result is not None:
            self.results[task.id] = result
        if task.status in CLAIMABLE_STATUSES:
            self._enqueue_ready(task)
        elif task.status is _RUNNING and task.worker_id is not None:
            self._held.setdefault(task.worker_id, set()).add(task.id)
        elif task.status in FINISHED_STATUSES and task.finished_at is not None:
            self._finished.append((task.finished_at, task.id))

    def _set(self, old: Task, new: Task) -> None:
        self.tasks[new.id] = new
        if old.status is not new.status:
            self.counts[old.status] -= 1
            self.counts[new.status] += 1

    def _unhold(self, task_id: str) -> Task:
        task = self.tasks[task_id]
        if task.worker_id is not None:
            held = self._held.get(task.worker_id)
            if held is not None:
                held.discard(task_id)
                if not held:
                    del self._held[task.worker_id]
        return task

    def _requeue(
        self,
        task: Task,
        eta: float,
        *,
        attempts: int,
        error: TaskError | None,
        finished_at: float | None,
        status: TaskStatus = _PENDING,
    ) -> None:
        new = _replace(
            task,
            status=status,
            eta=eta,
            attempts=attempts,
            error=error,
            finished_at=finished_at,
            worker_id=None,
            lease_until=None,
        )
        self._set(task, new)
        self._enqueue_ready(new)

    def _finish(
        self, task: Task, status: TaskStatus, at: float, *, attempts: int, error: TaskError | None
    ) -> None:
        self._set(
            task,
            _replace(
                task,
                status=status,
                finished_at=at,
                attempts=attempts,
                error=error,
                worker_id=None,
                lease_until=None,
            ),
        )
        self._finished.append((at, task.id))

    def _drop_stale_finished(self) -> None:
        finished = self._finished
        while finished:
            finished_at, task_id = finished[0]
            task = self.tasks.get(task_id)
            if (
                task is not None
                and task.status in FINISHED_STATUSES
                and task.finished_at == finished_at
            ):
                return
            finished.popleft()

    def _enqueue_ready(self, task: Task) -> None:
        seq = next(self._seq)
        self._queued[task.id] = seq
        if not self._bulk:  # load() builds the heap once at the end
            heapq.heappush(self._scheduled, (task.eta, seq, task.id))

    def _promote(self, now: float) -> None:
        """Move tasks that have become due from the schedule to the ready queue."""
        scheduled = self._scheduled
        while scheduled and scheduled[0][0] <= now:
            eta, seq, task_id = heapq.heappop(scheduled)
            if self._queued.get(task_id) == seq:
                priority = self.tasks[task_id].priority
                heapq.heappush(self._ready, (-priority, eta, seq, task_id))
