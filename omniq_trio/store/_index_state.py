"""``IndexState``: what the task index holds, and how each event changes it.

The columns (``_columns.py``) hold every task's state in fixed-size entries;
the lanes (``_lanes.py``) hold the claimable ones in claim order; a payload
source (``_payloads.py``) keeps the events that carry what the columns do not
(arguments, errors, results, progress), reached by ref. A task is rebuilt
from the three when it is read (:meth:`IndexState.task`).

:meth:`IndexState.apply` never fails: every event was checked against the
state by ``TaskIndex`` (``_index.py``) when it was made, which is what lets the
journal replay its log without checks.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from ..errors import TaskNotFoundError
from ..models import FINISHED_STATUSES, Task, TaskResult, TaskStatus
from ._base import Outcome, OutcomeKind
from ._columns import NO_TIME, STATUS_CODES, STATUSES, Columns, opt_time, time_or_none
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
from ._lanes import Lanes
from ._payloads import MemoryPayloads, PayloadSource, error_in, progress_in, result_in, task_in
from ._rules import worker_lost_error

__all__ = ["IndexState"]

_PENDING: Final = STATUS_CODES[TaskStatus.PENDING]
_RUNNING: Final = STATUS_CODES[TaskStatus.RUNNING]
_RETRYING: Final = STATUS_CODES[TaskStatus.RETRYING]
_SUCCESS: Final = STATUS_CODES[TaskStatus.SUCCESS]
_FAILED: Final = STATUS_CODES[TaskStatus.FAILED]
_CANCELLED: Final = STATUS_CODES[TaskStatus.CANCELLED]
_CLAIMABLE: Final = frozenset({_PENDING, _RETRYING})
_NO_TIME: Final = NO_TIME
_NO_COUNTER: Final[Counter[int]] = Counter()
_FINISHED: Final = frozenset(STATUS_CODES[s] for s in FINISHED_STATUSES)
#: Finished entries dropped from the front of the purge order before it is compacted.
_TRIM: Final = 4096

#: (attempts, started_at, finished_at) of a result
Meta = tuple[int, float | None, float | None]


class IndexState:
    """Tasks in columns, their claim lanes, results, unique keys, controls."""

    def __init__(self, payloads: PayloadSource | None = None) -> None:
        self.cols = Columns()
        self.lanes = Lanes(self.cols)
        self.payloads: PayloadSource = MemoryPayloads() if payloads is None else payloads
        #: live tasks per status code (index 0 unused)
        self.counts = [0] * 7
        #: queue code -> live tasks per status code
        self.queue_counts: dict[int, list[int]] = {}
        #: function code -> live tasks
        self.func_counts: Counter[int] = Counter()
        self.controls = Controls()
        #: unique key -> slot of the latest task created with it
        self.unique: dict[str, int] = {}
        self.unique_of: dict[int, str] = {}
        #: running slot -> [worker id, lease until]
        self.running: dict[int, list[Any]] = {}
        self.held: dict[str, set[int]] = {}
        #: a stored result's (attempts, started_at, finished_at) where they are not the
        #: task's own (a repeating task back in the queue)
        self.run_meta: dict[int, Meta] = {}
        # slots in the order they finished, with when: the order purges go in
        self.fin_slots = array("I")
        self.fin_at = array("d")
        self.fin_pos = 0
        self.next_order = 0

    @property
    def live(self) -> int:
        """How many tasks the index holds."""
        return sum(self.counts)

    @property
    def dead(self) -> int:
        """Slots of purged tasks, kept until the index is rebuilt."""
        return len(self.cols) - self.live

    # ------------------------------------------------------------ lookups

    def slot(self, task_id: str) -> int:
        slot = self.cols.lookup(task_id)
        if slot < 0:
            raise TaskNotFoundError(task_id)
        return slot

    def get(self, task_id: str) -> Task:
        return self.task(self.slot(task_id))

    def get_many(self, task_ids: list[str]) -> list[Task]:
        """:meth:`get` of each, their records read ahead together."""
        slots = [self.slot(task_id) for task_id in task_ids]
        task_ref = self.cols.task_ref
        self.payloads.prefetch([task_ref[slot] for slot in slots])
        return [self.task(slot) for slot in slots]

    def live_slots(self, reverse: bool = False) -> Iterator[int]:
        status = self.cols.status
        slots = range(len(status) - 1, -1, -1) if reverse else range(len(status))
        return (slot for slot in slots if status[slot])

    def task(self, slot: int) -> Task:
        """The task in ``slot`` as it is now."""
        cols, payloads = self.cols, self.payloads
        base = task_in(payloads.event(cols.task_ref[slot]))
        running = self.running.get(slot)
        new = object.__new__(Task)  # see models.Task: a copy of a checked task's fields
        state = new.__dict__
        state.update(base.__dict__)
        state["status"] = STATUSES[cols.status[slot]]
        state["eta"] = cols.eta[slot]
        state["scheduled_at"] = time_or_none(cols.scheduled_at[slot])
        state["started_at"] = time_or_none(cols.started_at[slot])
        state["finished_at"] = time_or_none(cols.finished_at[slot])
        state["attempts"] = cols.attempts[slot]
        state["lost_runs"] = cols.lost_runs[slot]
        state["worker_id"], state["lease_until"] = running if running else (None, None)
        ref = cols.error_ref[slot]
        state["error"] = error_in(payloads.event(ref), base.id) if ref else None
        ref = cols.progress_ref[slot]
        state["progress"] = progress_in(payloads.event(ref)) if ref else None
        return new

    def result(self, slot: int) -> TaskResult | None:
        """The result of the last finished run of the task in ``slot``."""
        cols = self.cols
        code = cols.result_status[slot]
        if not code:
            return None
        status = STATUSES[code]
        assert status is not None
        task_id = cols.id_at(slot)
        ref = cols.result_ref[slot]
        value, error = result_in(self.payloads.event(ref), task_id) if ref else (None, None)
        meta = self.run_meta.get(slot) or self._own_meta(slot)
        return TaskResult(task_id, status, value, error, *meta)

    def _own_meta(self, slot: int) -> Meta:
        cols = self.cols
        return (
            cols.attempts[slot],
            time_or_none(cols.started_at[slot]),
            time_or_none(cols.finished_at[slot]),
        )

    def snapshot(self) -> list[Event]:
        """Events that rebuild this index from nothing: every task with its result,
        in enqueue order, then the controls (a compacted journal)."""
        events: list[Event] = list(self.snapshot_tasks())
        events.extend(self.controls.snapshot())
        return events

    def snapshot_tasks(self) -> Iterator[Put]:
        order, qseq = self.cols.order, self.cols.qseq
        # claimable tasks keep their order among themselves, renumbered from 1
        queued = sorted((qseq[slot], slot) for slot in range(len(qseq)) if qseq[slot])
        place = {slot: i for i, (_, slot) in enumerate(queued, 1)}
        for slot in self.live_slots():
            yield Put(self.task(slot), self.result(slot), order[slot], place.get(slot))

    def held_by(self, worker_id: str) -> frozenset[str]:
        id_at = self.cols.id_at
        return frozenset(id_at(slot) for slot in self.held.get(worker_id, ()))

    def holder(self, slot: int) -> str | None:
        running = self.running.get(slot)
        return None if running is None else running[0]

    def queue_name(self, code: int) -> str:
        return self.cols.queues.names[code]

    # ------------------------------------------------------------------- apply

    def apply(self, event: Event, ref: int = 0) -> None:
        """Make the change ``event`` describes; ``ref`` is where it was written (journal)."""
        self._appliers[type(event)](self, event, ref)

    def apply_all(self, events: Iterable[Event], refs: Sequence[int] | None = None) -> None:
        appliers = self._appliers
        if refs is None:
            for event in events:
                appliers[type(event)](self, event, 0)
        else:
            for event, ref in zip(events, refs, strict=True):
                appliers[type(event)](self, event, ref)

    def _apply_put(self, event: Put, ref: int) -> None:
        # the hottest applier (a journal is mostly puts): kept to few calls
        task, result, cols = event.task, event.result, self.cols
        task_id = task.id
        if task_id in cols.recent or (cols.hashed and cols.lookup(task_id) >= 0):
            self._drop(cols.lookup(task_id))  # not made by the index; tolerated in a log
        order = event.order
        if order is None:
            order = self.next_order
        if order >= self.next_order:
            self.next_order = order + 1
        code = STATUS_CODES[task.status]
        queue = cols.queues.codes.get(task.queue) or cols.queues.code(task.queue)
        func = cols.funcs.codes.get(task.func) or cols.funcs.code(task.func)
        self.func_counts[func] += 1
        started, finished = task.started_at, task.finished_at
        slot = cols.add(
            task_id,
            code,
            queue,
            func,
            task.priority,
            task.eta,
            opt_time(task.scheduled_at),
            _NO_TIME if started is None else started,
            _NO_TIME if finished is None else finished,
            task.attempts,
            task.lost_runs,
            order,
        )
        hold = self.payloads.hold
        cols.task_ref[slot] = hold(event, ref)
        if task.error is not None:
            cols.error_ref[slot] = hold(event, ref)
        if task.progress is not None:
            cols.progress_ref[slot] = hold(event, ref)
        if result is not None:
            cols.result_status[slot] = STATUS_CODES[result.status]
            cols.result_ref[slot] = hold(event, ref)
            meta = (result.attempts, result.started_at, result.finished_at)
            if meta != self._own_meta(slot) or code not in _FINISHED:
                self.run_meta[slot] = meta
        self._count_in(queue, code, 1)
        if task.unique_key is not None:
            self.unique[task.unique_key] = slot
            self.unique_of[slot] = task.unique_key
        if code in _CLAIMABLE:
            self.lanes.push(slot, event.queued, queue)
        elif code == _RUNNING and task.worker_id is not None:
            self.running[slot] = [task.worker_id, task.lease_until]
            self.held.setdefault(task.worker_id, set()).add(slot)
        elif code in _FINISHED and finished is not None:
            self._finished(slot, finished)

    def _apply_claimed(self, event: Claimed, ref: int) -> None:
        held = self.held.setdefault(event.worker_id, set())
        cols, lookup, qseq = self.cols, self.cols.lookup, self.cols.qseq
        started_at, progress_ref = cols.started_at, cols.progress_ref
        limited = bool(self.controls.queues)  # rate limits count the starts per queue
        per_queue: Counter[int] = Counter() if limited else _NO_COUNTER
        running, lease = [event.worker_id, event.lease_until], event.lease_until
        for task_id in event.ids:
            slot = lookup(task_id)
            qseq[slot] = 0  # out of its lane
            if limited:
                per_queue[cols.queue_of(slot)] += 1
            self._move(slot, _RUNNING)
            started_at[slot] = event.at
            self.running[slot] = [event.worker_id, lease] if len(event.ids) > 1 else running
            held.add(slot)
            if progress_ref[slot]:
                self._set_ref(progress_ref, slot, None)
        if limited:
            names = cols.queues.names
            self.controls.started(((names[q], n) for q, n in per_queue.items()), event.at)

    def _apply_renewed(self, event: Renewed, ref: int) -> None:
        running = self.running
        for slot in self.held.get(event.worker_id, ()):
            running[slot][1] = event.lease_until

    def _apply_outcome(self, outcome: Outcome, ref: int) -> None:
        cols = self.cols
        slot = cols.lookup(outcome.task_id)
        self._unhold(slot)
        attempts = cols.attempts[slot] + 1
        error = outcome.error
        self._set_ref(cols.error_ref, slot, None if error is None else outcome, ref)
        if outcome.kind is OutcomeKind.RETRY:
            assert outcome.eta is not None
            self._requeue(slot, outcome.eta, _RETRYING, attempts)
            return
        cols.result_status[slot] = _FAILED if error is not None else _SUCCESS
        self._set_ref(cols.result_ref, slot, outcome, ref)
        if outcome.kind is OutcomeKind.NEXT_RUN:
            assert outcome.eta is not None
            self.run_meta[slot] = (attempts, time_or_none(cols.started_at[slot]), outcome.at)
            cols.finished_at[slot] = outcome.at
            cols.scheduled_at[slot] = outcome.eta
            cols.lost_runs[slot] = 0
            self._requeue(slot, outcome.eta, _PENDING, 0)
        else:
            self.run_meta.pop(slot, None)
            self._finish(slot, _FAILED if error is not None else _SUCCESS, outcome.at, attempts)

    def _apply_released(self, event: Released, ref: int) -> None:
        cols = self.cols
        for task_id in event.ids:
            slot = cols.lookup(task_id)
            self._unhold(slot)
            self._requeue(slot, cols.eta[slot], _PENDING, cols.attempts[slot])

    def _apply_expired(self, event: Expired, ref: int) -> None:
        cols = self.cols
        failed = event.failed
        if failed is None:  # an old record: the errors are worked out as they were then
            errors = {}
            for task_id in event.ids:
                error = worker_lost_error(self.get(task_id), now=event.at)
                if error is not None:
                    errors[task_id] = error
            event, ref = Expired(event.ids, event.at, errors), 0
            failed = errors
        for task_id in event.ids:
            slot = cols.lookup(task_id)
            self._unhold(slot)
            cols.lost_runs[slot] += 1
            if task_id not in failed:
                self._requeue(slot, cols.eta[slot], _PENDING, cols.attempts[slot])
                continue
            cols.result_status[slot] = _FAILED
            self._set_ref(cols.result_ref, slot, event, ref)
            self._set_ref(cols.error_ref, slot, event, ref)
            self.run_meta.pop(slot, None)
            self._finish(slot, _FAILED, event.at, cols.attempts[slot])

    def _apply_cancelled(self, event: Cancelled, ref: int) -> None:
        cols = self.cols
        slot = cols.lookup(event.task_id)
        self._unhold(slot)
        self.lanes.unqueue(slot)
        cols.result_status[slot] = _CANCELLED
        self._set_ref(cols.result_ref, slot, None)
        self.run_meta.pop(slot, None)
        self._finish(slot, _CANCELLED, event.at, cols.attempts[slot])

    def _apply_retried(self, event: Retried, ref: int) -> None:
        cols = self.cols
        slot = cols.lookup(event.task_id)
        cols.result_status[slot] = 0
        self._set_ref(cols.result_ref, slot, None)
        self.run_meta.pop(slot, None)
        key = self.unique_of.get(slot)
        if key is not None:
            self.unique[key] = slot
        cols.finished_at[slot] = opt_time(None)
        cols.scheduled_at[slot] = event.at
        cols.lost_runs[slot] = 0
        self._requeue(slot, event.at, _PENDING, 0)

    def _apply_purged(self, event: Purged, ref: int) -> None:
        lookup = self.cols.lookup
        for task_id in event.ids:
            slot = lookup(task_id)
            if slot >= 0:
                self._drop(slot)
        self._drop_stale_finished()

    def _apply_progress(self, event: ProgressSet, ref: int) -> None:
        slot = self.cols.lookup(event.task_id)
        self._set_ref(self.cols.progress_ref, slot, event, ref)

    def _apply_queue_paused(self, event: QueuePaused, ref: int) -> None:
        self.controls.pause(event.name, event.paused)

    def _apply_queue_limited(self, event: QueueLimited, ref: int) -> None:
        self.controls.set_limit(event.name, event.limit, event.starts)

    def _apply_schedule_fired(self, event: ScheduleFired, ref: int) -> None:
        self.controls.fire(event.name, event.slot)

    def _apply_schedules(self, event: SchedulesRecorded, ref: int) -> None:
        self.controls.record_schedules(event.schedules)

    def _apply_worker_seen(self, event: WorkerSeen, ref: int) -> None:
        self.controls.workers[event.info.id] = event.info

    def _apply_worker_gone(self, event: WorkerGone, ref: int) -> None:
        self.controls.workers.pop(event.worker_id, None)

    _appliers: Final[dict[type[Any], Callable[[IndexState, Any, int], None]]] = {
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

    def _set_ref(self, column: array[int], slot: int, event: Event | None, ref: int = 0) -> None:
        old = column[slot]
        column[slot] = 0 if event is None else self.payloads.hold(event, ref)
        if old:
            self.payloads.release(old)

    def _count(self, slot: int, code: int, delta: int) -> None:
        self._count_in(self.cols.queue_of(slot), code, delta)

    def _count_in(self, queue: int, code: int, delta: int) -> None:
        self.counts[code] += delta
        counts = self.queue_counts.get(queue)
        if counts is None:
            counts = self.queue_counts[queue] = [0] * 7
        counts[code] += delta
        if delta < 0 and not any(counts):
            del self.queue_counts[queue]

    def _move(self, slot: int, code: int) -> None:
        old = self.cols.status[slot]
        if old != code:
            self.cols.status[slot] = code
            queue = self.cols.queue_of(slot)
            self._count_in(queue, old, -1)
            self._count_in(queue, code, 1)

    def _unhold(self, slot: int) -> None:
        running = self.running.pop(slot, None)
        if running is not None:
            held = self.held.get(running[0])
            if held is not None:
                held.discard(slot)
                if not held:
                    del self.held[running[0]]

    def _requeue(self, slot: int, eta: float, code: int, attempts: int) -> None:
        self.cols.eta[slot] = eta
        self.cols.attempts[slot] = attempts
        self._move(slot, code)
        self.lanes.push(slot)

    def _finish(self, slot: int, code: int, at: float, attempts: int) -> None:
        self.cols.finished_at[slot] = at
        self.cols.attempts[slot] = attempts
        self._move(slot, code)
        self._finished(slot, at)

    def _finished(self, slot: int, at: float) -> None:
        self.fin_slots.append(slot)
        self.fin_at.append(at)

    def _drop(self, slot: int) -> None:
        """Forget the task in ``slot``: its slot stays, empty, until the index is rebuilt."""
        cols = self.cols
        self._unhold(slot)
        self.lanes.unqueue(slot)
        self._count(slot, cols.status[slot], -1)
        func = cols.func_of(slot)
        self.func_counts[func] -= 1
        if not self.func_counts[func]:
            del self.func_counts[func]
        cols.status[slot] = 0
        cols.result_status[slot] = 0
        for column in (cols.task_ref, cols.error_ref, cols.result_ref, cols.progress_ref):
            self._set_ref(column, slot, None)
        key = self.unique_of.pop(slot, None)
        if key is not None and self.unique.get(key) == slot:
            del self.unique[key]
        self.run_meta.pop(slot, None)
        cols.forget_id(slot, cols.id_at(slot))

    def is_finished_entry(self, i: int) -> bool:
        """Whether entry ``i`` of the purge order is the slot's latest finish."""
        slot = self.fin_slots[i]
        return self.cols.status[slot] in _FINISHED and self.cols.finished_at[slot] == self.fin_at[i]

    def _drop_stale_finished(self) -> None:
        pos, end = self.fin_pos, len(self.fin_slots)
        while pos < end and not self.is_finished_entry(pos):
            pos += 1
        self.fin_pos = pos
        if pos >= _TRIM and pos * 2 >= end:
            del self.fin_slots[:pos]
            del self.fin_at[:pos]
            self.fin_pos = 0
