"""``TaskIndex``: the state of every task in memory, changed only by events.

The memory store is this index; the file journal is this index plus a log of
its events. ``*_event`` methods check a requested change against the current
state and the rules (``_rules.py``), raising a named error and changing
nothing when it is not allowed, and return the events that make it;
:meth:`TaskIndex.apply` makes them. An event built by the index is valid by
construction, so ``apply`` never fails, which is what lets the journal replay
its log without checks. Queries are in ``_index_queries.py``.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from ..errors import (
    DuplicateTaskError,
    InvalidTransitionError,
    TaskNotFoundError,
    UniqueConflictError,
)
from ..models import (
    CLAIMABLE_STATUSES,
    FINISHED_STATUSES,
    LIVE_STATUSES,
    Enqueued,
    Progress,
    Task,
    TaskError,
    TaskResult,
    TaskStatus,
)
from ._base import Outcome, OutcomeKind
from ._controls import Controls
from ._events import (
    Cancelled,
    Claimed,
    Event,
    Expired,
    ProgressSet,
    Purged,
    Put,
    QueueLimited,
    QueuePaused,
    Released,
    Renewed,
    Retried,
    ScheduleFired,
    SchedulesRecorded,
    WorkerGone,
    WorkerSeen,
)
from ._rules import (
    check_new_tasks,
    check_transition,
    lease_lost,
    unique_firsts,
    unique_key_taken,
    worker_lost_error,
)

__all__ = ["TaskIndex"]

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


class TaskIndex:
    """Tasks, results, and the queues that make claiming and expiry cheap."""

    def __init__(self) -> None:
        self.tasks: dict[str, Task] = {}
        self.results: dict[str, TaskResult] = {}
        self.counts: Counter[TaskStatus] = Counter()
        self.queue_counts: dict[str, Counter[TaskStatus]] = {}
        self.controls = Controls()
        #: task id -> its place in enqueue order (cursors of listings)
        self.order: dict[str, int] = {}
        self._enqueued = itertools.count()
        #: unique key -> id of the latest task created with it
        self.unique: dict[str, str] = {}
        # A claimable task sits in its queue's heap `_scheduled[queue]` by eta
        # until it is due, then in `_ready[queue]` by (-priority, eta, seq).
        # Entries are removed lazily: one is live only while `_queued[id] == seq`.
        self._seq = itertools.count()
        self._queued: dict[str, int] = {}
        self._scheduled: dict[str, list[tuple[float, int, str]]] = {}
        self._ready: dict[str, list[tuple[int, float, int, str]]] = {}
        self._held: dict[str, set[str]] = {}
        # (finished_at, id) in the order tasks finished, for purging old results
        self._finished: deque[tuple[float, str]] = deque()
        self._bulk = False

    # ------------------------------------------------------------ lookups

    def get(self, task_id: str) -> Task:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise TaskNotFoundError(task_id) from None

    def held_by(self, worker_id: str) -> frozenset[str]:
        return frozenset(self._held.get(worker_id, ()))

    def queued_ids(self) -> Iterable[str]:
        """Ids of the claimable tasks."""
        return self._queued.keys()

    def first_eta(self, queue: str, now: float) -> float | None:
        """The eta of a claimable task of ``queue``: one that is due (at most ``now``)
        if there is one, else the earliest; ``None`` if the queue has none."""
        self._promote(now)
        queued = self._queued
        ready = self._ready.get(queue)
        while ready:
            _, eta, seq, task_id = ready[0]
            if queued.get(task_id) == seq:
                return eta
            heapq.heappop(ready)
        scheduled = self._scheduled.get(queue)
        while scheduled:
            eta, seq, task_id = scheduled[0]
            if queued.get(task_id) == seq:
                return eta
            heapq.heappop(scheduled)
        return None

    def queue_names(self) -> Iterable[str]:
        """Queues that have (or had) claimable tasks."""
        return self._scheduled.keys() | self._ready.keys()

    # ------------------------------------------------------------ changes

    def enqueue_events(self, tasks: Sequence[Task]) -> tuple[list[Event], list[Enqueued]]:
        """Put events for the tasks to create, and per task what was done."""
        check_new_tasks(tasks)
        events: list[Event] = []
        answers: list[Enqueued] = []
        firsts = unique_firsts(tasks)
        for task, first in zip(tasks, firsts, strict=True):
            if task.id in self.tasks:
                raise DuplicateTaskError(task.id)
            if first is not None:
                answers.append(Enqueued(answers[first].id, False))
                continue
            holder = self._unique_holder(task)
            if holder is not None:
                answers.append(Enqueued(holder, False))
                continue
            events.append(Put(task))
            answers.append(Enqueued(task.id, True))
        return events, answers

    def _unique_holder(self, task: Task) -> str | None:
        """The id of a stored task that makes ``task`` a duplicate, if any."""
        if task.unique_key is None:
            return None
        holder_id = self.unique.get(task.unique_key)
        holder = None if holder_id is None else self.tasks.get(holder_id)
        if holder is None or not unique_key_taken(holder.status, holder.finished_at, task):
            return None
        return holder.id

    def claim_event(
        self,
        worker_id: str,
        *,
        now: float,
        limit: int,
        lease_until: float,
        queues: Mapping[str, int] | None = None,
    ) -> Claimed | None:
        """Pick up to ``limit`` due tasks: highest priority, then earliest eta, then FIFO,
        across the allowed queues, within each queue's budget."""
        self._promote(now)
        budgets: dict[str, int | None] = {}
        names = self._ready.keys() if queues is None else queues.keys()
        for name in names:
            heap = self._ready.get(name)
            if not heap:
                continue
            budget = None if queues is None else queues[name]
            control = self.controls.queue(name)
            allowed = control.allowed(now) if control is not None else None
            if allowed is not None:
                budget = allowed if budget is None else min(budget, allowed)
            if budget is None or budget > 0:
                budgets[name] = budget
        ids: list[str] = []
        heads = [(heap[0], name) for name in budgets if (heap := self._ready[name])]
        heapq.heapify(heads)
        queued = self._queued
        while heads and len(ids) < limit:
            (_, _, seq, task_id), name = heads[0]
            heap = self._ready[name]
            heapq.heappop(heap)
            if queued.get(task_id) == seq:
                del queued[task_id]
                ids.append(task_id)
                budget = budgets[name]
                if budget is not None:
                    budgets[name] = budget = budget - 1
                if budget == 0:
                    heapq.heappop(heads)
                    continue
            if heap:
                heapq.heapreplace(heads, (heap[0], name))
            else:
                heapq.heappop(heads)
        if not ids:
            return None
        return Claimed(tuple(ids), worker_id, lease_until, now)

    def check_outcome(self, outcome: Outcome) -> Outcome:
        """The outcome itself is the event; raises if its worker does not hold the task."""
        self._check_held(outcome.task_id, outcome.worker_id, outcome.status)
        return outcome

    def release_event(self, task_ids: Iterable[str], worker_id: str) -> Released | None:
        """Release those of ``task_ids`` that ``worker_id`` still holds."""
        held = self._held.get(worker_id, set())
        ids = tuple(dict.fromkeys(t for t in task_ids if t in held))
        return Released(ids) if ids else None

    def renew_event(self, worker_id: str, *, lease_until: float) -> Renewed | None:
        return Renewed(worker_id, lease_until) if self._held.get(worker_id) else None

    def expired_event(self, *, now: float) -> Expired | None:
        """Every running task whose lease ended before ``now``."""
        ids = tuple(
            task_id
            for held in self._held.values()
            for task_id in held
            if (lease := self.tasks[task_id].lease_until) is not None and lease < now
        )
        return Expired(ids, now) if ids else None

    def cancel_event(self, task_id: str, *, at: float) -> Cancelled | None:
        """None when the task has already finished (there is nothing to cancel)."""
        task = self.get(task_id)
        if task.status in FINISHED_STATUSES:
            return None
        check_transition(task_id, task.status, TaskStatus.CANCELLED)
        return Cancelled(task_id, at, task.status is _RUNNING)

    def retry_event(self, task_id: str, *, at: float) -> Retried:
        task = self.get(task_id)
        if task.status is not TaskStatus.FAILED:
            raise InvalidTransitionError(task_id, task.status, _PENDING)
        key = task.unique_key
        holder = None if key is None else self.tasks.get(self.unique.get(key, ""))
        if key is not None and holder is not None and holder.status in LIVE_STATUSES:
            raise UniqueConflictError(task_id, key, holder.id)
        return Retried(task_id, at)

    def purge_event(
        self, *, finished_before: float, failed_before: float, limit: int | None = None
    ) -> Purged | None:
        """Finished tasks whose last run ended before their status's horizon."""
        ids: list[str] = []
        horizon = max(finished_before, failed_before)
        for finished_at, task_id in self._finished:
            if finished_at >= horizon or (limit is not None and len(ids) >= limit):
                break
            task = self.tasks.get(task_id)
            if task is None or task.finished_at != finished_at:
                continue
            if task.status is TaskStatus.FAILED:
                if finished_at < failed_before:
                    ids.append(task_id)
            elif task.status in FINISHED_STATUSES and finished_at < finished_before:
                ids.append(task_id)
        return Purged(tuple(ids)) if ids else None

    def progress_event(self, task_id: str, worker_id: str, progress: Progress) -> ProgressSet:
        task = self.get(task_id)
        if task.status is not _RUNNING or task.worker_id != worker_id:
            raise lease_lost(task_id, worker_id, task.status, task.worker_id)
        return ProgressSet(task_id, progress)

    def fire_events(
        self, name: str, slot: float, task: Task
    ) -> tuple[list[Event], Enqueued | None]:
        last = self.controls.last_fired(name)
        if last is not None and last >= slot:
            return [], None
        events, (answer,) = self.enqueue_events([task])
        return [ScheduleFired(name, slot), *events], answer

    def _check_held(self, task_id: str, worker_id: str, new: TaskStatus) -> None:
        task = self.get(task_id)
        if task.status is not _RUNNING or task.worker_id != worker_id:
            raise lease_lost(task_id, worker_id, task.status, task.worker_id)
        check_transition(task_id, _RUNNING, new)

    def snapshot(self) -> list[Event]:
        """Events that rebuild this index from nothing: every task with its result,
        in enqueue order, then the controls (a compacted journal)."""
        results = self.results
        events: list[Event] = [Put(task, results.get(task.id)) for task in self.tasks.values()]
        events.extend(self.controls.snapshot())
        return events

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
        self._scheduled = {}
        for task_id, seq in self._queued.items():
            task = self.tasks[task_id]
            self._scheduled.setdefault(task.queue, []).append((task.eta, seq, task_id))
        for heap in self._scheduled.values():
            heapq.heapify(heap)
        self._ready = {}

    def _apply_put(self, event: Put) -> None:
        self._put(event.task, event.result)

    def _apply_claimed(self, event: Claimed) -> None:
        held = self._held.setdefault(event.worker_id, set())
        tasks, queued = self.tasks, self._queued
        per_queue: Counter[str] = Counter()
        for task_id in event.ids:
            task = tasks[task_id]
            queued.pop(task_id, None)
            per_queue[task.queue] += 1
            self._set(
                task,
                _replace(
                    task,
                    status=_RUNNING,
                    started_at=event.at,
                    worker_id=event.worker_id,
                    lease_until=event.lease_until,
                    progress=None,
                ),
            )
            held.add(task_id)
        if self.controls.queues:
            self.controls.started(per_queue.items(), event.at)

    def _apply_renewed(self, event: Renewed) -> None:
        for task_id in self._held.get(event.worker_id, ()):
            self.tasks[task_id] = _replace(self.tasks[task_id], lease_until=event.lease_until)

    def _apply_outcome(self, outcome: Outcome) -> None:
        task_id, at, error = outcome.task_id, outcome.at, outcome.error
        task = self._unhold(task_id)
        attempts = task.attempts + 1
        kind = outcome.kind
        if kind is OutcomeKind.RETRY:
            assert outcome.eta is not None
            self._requeue(
                task,
                outcome.eta,
                attempts=attempts,
                error=error,
                finished_at=task.finished_at,
                status=TaskStatus.RETRYING,
            )
            return
        status = TaskStatus.FAILED if error is not None else TaskStatus.SUCCESS
        self.results[task_id] = TaskResult(
            task_id, status, outcome.value, error, attempts, task.started_at, at
        )
        if kind is OutcomeKind.NEXT_RUN:
            assert outcome.eta is not None
            self._requeue(
                task,
                outcome.eta,
                attempts=0,
                error=error,
                finished_at=at,
                scheduled_at=outcome.eta,
                lost_runs=0,
            )
        else:
            self._finish(task, status, at, attempts=attempts, error=error)

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

    def _apply_expired(self, event: Expired) -> None:
        for task_id in event.ids:
            task = self._unhold(task_id)
            error = worker_lost_error(task, now=event.at)
            lost = task.lost_runs + 1
            if error is None:
                self._requeue(
                    task,
                    task.eta,
                    attempts=task.attempts,
                    error=task.error,
                    finished_at=task.finished_at,
                    lost_runs=lost,
                )
                continue
            self.results[task_id] = TaskResult(
                task_id, TaskStatus.FAILED, None, error, task.attempts, task.started_at, event.at
            )
            self._finish(
                _replace(task, lost_runs=lost),
                TaskStatus.FAILED,
                event.at,
                attempts=task.attempts,
                error=error,
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
        if task.unique_key is not None:
            self.unique[task.unique_key] = task.id
        self._requeue(
            task,
            event.at,
            attempts=0,
            error=task.error,
            finished_at=None,
            scheduled_at=event.at,
            lost_runs=0,
        )

    def _apply_purged(self, event: Purged) -> None:
        for task_id in event.ids:
            task = self.tasks.pop(task_id)
            self._count(task.queue, task.status, -1)
            self.results.pop(task_id, None)
            self.order.pop(task_id, None)
            if task.unique_key is not None and self.unique.get(task.unique_key) == task_id:
                del self.unique[task.unique_key]
        self._drop_stale_finished()

    def _apply_progress(self, event: ProgressSet) -> None:
        task = self.tasks[event.task_id]
        self.tasks[task.id] = _replace(task, progress=event.progress)

    def _apply_queue_paused(self, event: QueuePaused) -> None:
        self.controls.pause(event.name, event.paused)

    def _apply_queue_limited(self, event: QueueLimited) -> None:
        self.controls.set_limit(event.name, event.limit, event.starts)

    def _apply_schedule_fired(self, event: ScheduleFired) -> None:
        self.controls.fire(event.name, event.slot)

    def _apply_schedules(self, event: SchedulesRecorded) -> None:
        self.controls.record_schedules(event.schedules)

    def _apply_worker_seen(self, event: WorkerSeen) -> None:
        self.controls.workers[event.info.id] = event.info

    def _apply_worker_gone(self, event: WorkerGone) -> None:
        self.controls.workers.pop(event.worker_id, None)

    _appliers: Final[dict[type[Any], Callable[[TaskIndex, Any], None]]] = {
        Put: _apply_put,
        Claimed: _apply_claimed,
        Renewed: _apply_renewed,
        Outcome: _apply_outcome,
        Released: _apply_released,
        Expired: _apply_expired,
        Cancelled: _apply_cancelled,
        Retried: _apply_retried,
        Purged: _apply_purged,
        ProgressSet: _apply_progress,
        QueuePaused: _apply_queue_paused,
        QueueLimited: _apply_queue_limited,
        ScheduleFired: _apply_schedule_fired,
        SchedulesRecorded: _apply_schedules,
        WorkerSeen: _apply_worker_seen,
        WorkerGone: _apply_worker_gone,
    }

    # ----------------------------------------------------------------- helpers

    def _put(self, task: Task, result: TaskResult | None) -> None:
        old = self.tasks.get(task.id)
        if old is not None:
            self._count(old.queue, old.status, -1)
        else:
            self.order[task.id] = next(self._enqueued)
        self.tasks[task.id] = task
        self._count(task.queue, task.status, 1)
        if task.unique_key is not None:
            self.unique[task.unique_key] = task.id
        if result is not None:
            self.results[task.id] = result
        if task.status in CLAIMABLE_STATUSES:
            self._enqueue_ready(task)
        elif task.status is _RUNNING and task.worker_id is not None:
            self._held.setdefault(task.worker_id, set()).add(task.id)
        elif task.status in FINISHED_STATUSES and task.finished_at is not None:
            self._finished.append((task.finished_at, task.id))

    def _count(self, queue: str, status: TaskStatus, delta: int) -> None:
        self.counts[status] += delta
        counts = self.queue_counts.get(queue)
        if counts is None:
            counts = self.queue_counts[queue] = Counter()
        counts[status] += delta
        if delta < 0 and not any(counts.values()):
            del self.queue_counts[queue]

    def _set(self, old: Task, new: Task) -> None:
        self.tasks[new.id] = new
        if old.status is not new.status:
            self._count(old.queue, old.status, -1)
            self._count(new.queue, new.status, 1)

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
        **changes: Any,
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
            **changes,
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
        if not self._bulk:  # load() builds the heaps once at the end
            heap = self._scheduled.get(task.queue)
            if heap is None:
                heap = self._scheduled[task.queue] = []
            heapq.heappush(heap, (task.eta, seq, task.id))

    def _promote(self, now: float) -> None:
        """Move tasks that have become due from the schedules to the ready queues."""
        queued, tasks = self._queued, self.tasks
        for name, scheduled in self._scheduled.items():
            if not scheduled or scheduled[0][0] > now:
                continue
            ready = self._ready.get(name)
            if ready is None:
                ready = self._ready[name] = []
            while scheduled and scheduled[0][0] <= now:
                eta, seq, task_id = heapq.heappop(scheduled)
                if queued.get(task_id) == seq:
                    heapq.heappush(ready, (-tasks[task_id].priority, eta, seq, task_id))
