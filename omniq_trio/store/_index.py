"""``TaskIndex``: the state of every task in memory, changed only by events.

The memory store is this index; the file journal is this index plus a log of
its events. ``*_event`` methods check a requested change against the current
state and the rules (``_rules.py``), raising a named error and changing
nothing when it is not allowed, and return the events that make it;
:meth:`IndexState.apply` makes them (``_index_state.py``, which also says how
the state is held). An event built by the index is valid by construction, so
``apply`` never fails, which is what lets the journal replay its log without
checks. Queries are in ``_index_queries.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..errors import DuplicateTaskError, InvalidTransitionError, UniqueConflictError
from ..models import (
    FINISHED_STATUSES,
    LIVE_STATUSES,
    Enqueued,
    Progress,
    Task,
    TaskError,
    TaskStatus,
)
from ._base import Outcome
from ._columns import STATUS_CODES, STATUSES, time_or_none
from ._events import (
    Cancelled,
    Claimed,
    Event,
    Expired,
    ProgressSet,
    Purged,
    Put,
    Released,
    Renewed,
    Retried,
    ScheduleFired,
)
from ._index_state import IndexState
from ._rules import (
    check_new_tasks,
    check_transition,
    lease_lost,
    unique_firsts,
    unique_key_taken,
    worker_lost_error,
)

__all__ = ["TaskIndex"]

_RUNNING = STATUS_CODES[TaskStatus.RUNNING]
_FAILED = STATUS_CODES[TaskStatus.FAILED]


class TaskIndex(IndexState):
    """Tasks, results, and the lanes that make claiming and expiry cheap."""

    # ------------------------------------------------------------ changes

    def enqueue_events(self, tasks: Sequence[Task]) -> tuple[list[Event], list[Enqueued]]:
        """Put events for the tasks to create, and per task what was done."""
        check_new_tasks(tasks)
        events: list[Event] = []
        answers: list[Enqueued] = []
        firsts = unique_firsts(tasks)
        lookup = self.cols.lookup
        for task, first in zip(tasks, firsts, strict=True):
            if lookup(task.id) >= 0:
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
        slot = self.unique.get(task.unique_key)
        if slot is None:
            return None
        cols = self.cols
        status = STATUSES[cols.status[slot]]
        finished_at = time_or_none(cols.finished_at[slot])
        if status is None or not unique_key_taken(status, finished_at, task):
            return None
        return cols.id_at(slot)

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
        names = self.cols.queues
        if queues is None:
            wanted: Iterable[tuple[int, int | None]] = ((q, None) for q in self.lanes.queues())
        else:
            wanted = [(code, n) for name, n in queues.items() if (code := names.find(name))]
        budgets: dict[int, int | None] = {}
        for code, budget in wanted:
            control = self.controls.queue(names.names[code])
            allowed = control.allowed(now) if control is not None else None
            if allowed is not None:
                budget = allowed if budget is None else min(budget, allowed)
            if budget is None or budget > 0:
                budgets[code] = budget
        slots = self.lanes.take(budgets, now, limit) if budgets else []
        if not slots:
            return None
        id_at = self.cols.id_at
        return Claimed(tuple(id_at(slot) for slot in slots), worker_id, lease_until, now)

    def check_outcome(self, outcome: Outcome) -> Outcome:
        """The outcome itself is the event; raises if its worker does not hold the task."""
        self._check_held(outcome.task_id, outcome.worker_id, outcome.status)
        return outcome

    def release_event(self, task_ids: Iterable[str], worker_id: str) -> Released | None:
        """Release those of ``task_ids`` that ``worker_id`` still holds."""
        held = self.held.get(worker_id)
        if not held:
            return None
        lookup = self.cols.lookup
        ids = tuple(dict.fromkeys(t for t in task_ids if lookup(t) in held))
        return Released(ids) if ids else None

    def renew_event(self, worker_id: str, *, lease_until: float) -> Renewed | None:
        return Renewed(worker_id, lease_until) if self.held.get(worker_id) else None

    def expired_event(self, *, now: float) -> Expired | None:
        """Every running task whose lease ended before ``now``, with the errors of those
        that have no lost run left."""
        expired = [
            slot for slot, (_, lease) in self.running.items() if lease is not None and lease < now
        ]
        if not expired:
            return None
        ids: list[str] = []
        failed: dict[str, TaskError] = {}
        for slot in expired:
            task = self.task(slot)
            ids.append(task.id)
            error = worker_lost_error(task, now=now)
            if error is not None:
                failed[task.id] = error
        return Expired(tuple(ids), now, failed)

    def cancel_event(self, task_id: str, *, at: float) -> Cancelled | None:
        """None when the task has already finished (there is nothing to cancel)."""
        status = self.cols.status_of(self.slot(task_id))
        if status in FINISHED_STATUSES:
            return None
        check_transition(task_id, status, TaskStatus.CANCELLED)
        return Cancelled(task_id, at, status is TaskStatus.RUNNING)

    def retry_event(self, task_id: str, *, at: float) -> Retried:
        slot = self.slot(task_id)
        status = self.cols.status_of(slot)
        if status is not TaskStatus.FAILED:
            raise InvalidTransitionError(task_id, status, TaskStatus.PENDING)
        key = self.unique_of.get(slot)
        holder = None if key is None else self.unique.get(key)
        if key is not None and holder is not None and holder != slot:
            holder_status = STATUSES[self.cols.status[holder]]
            if holder_status in LIVE_STATUSES:
                raise UniqueConflictError(task_id, key, self.cols.id_at(holder))
        return Retried(task_id, at)

    def purge_event(
        self, *, finished_before: float, failed_before: float, limit: int | None = None
    ) -> Purged | None:
        """Finished tasks whose last run ended before their status's horizon."""
        cols = self.cols
        ids: dict[str, None] = {}
        horizon = max(finished_before, failed_before)
        fin_slots, fin_at = self.fin_slots, self.fin_at
        for i in range(self.fin_pos, len(fin_slots)):
            finished_at = fin_at[i]
            if finished_at >= horizon or (limit is not None and len(ids) >= limit):
                break
            if not self.is_finished_entry(i):
                continue
            slot = fin_slots[i]
            cutoff = failed_before if cols.status[slot] == _FAILED else finished_before
            if finished_at < cutoff:
                ids[cols.id_at(slot)] = None
        return Purged(tuple(ids)) if ids else None

    def progress_event(self, task_id: str, worker_id: str, progress: Progress) -> ProgressSet:
        slot = self.slot(task_id)
        if self.cols.status[slot] != _RUNNING or self.holder(slot) != worker_id:
            raise lease_lost(task_id, worker_id, self.cols.status_of(slot), self.holder(slot))
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
        slot = self.slot(task_id)
        holder = self.holder(slot)
        if self.cols.status[slot] != _RUNNING or holder != worker_id:
            raise lease_lost(task_id, worker_id, self.cols.status_of(slot), holder)
        check_transition(task_id, TaskStatus.RUNNING, new)
