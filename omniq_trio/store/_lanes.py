"""``Lanes``: the claimable tasks, in the order claims take them, without a Python object each.

A claim takes due tasks by priority (higher first), then eta, then the order
they were queued in. Tasks of one queue and one priority form a *lane* kept in
(eta, sequence) order; within a lane the due tasks are a prefix, so a claim
looks at the head of each lane of its queues: the highest priority with a due
head wins, then the earliest head. No task moves when it becomes due.

A lane has two parts:

* a *run*: slots in lane order, as a checkpoint stored them (4 bytes a task,
  loaded with no per-task work); consumed from the front;
* a heap of keys packed into one int (``eta | sequence | slot``), for tasks
  queued since.

Entries are removed lazily. Every time a slot is queued it gets a new
sequence number (``Columns.qseq``; 0 when it is not queued): a heap entry is
live while the slot's number is the entry's, a run entry while the slot's
number is at most the run's last one (any newer number went to the heap).
"""

from __future__ import annotations

import heapq
import struct
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from ._columns import Columns

__all__ = ["Lane", "Lanes", "eta_key", "key_eta", "live_slots", "pack"]

_SLOT_BITS: Final = 32
_SEQ_BITS: Final = 40
_ETA_SHIFT: Final = _SLOT_BITS + _SEQ_BITS
_SLOT_MASK: Final = (1 << _SLOT_BITS) - 1
_SEQ_MASK: Final = (1 << _SEQ_BITS) - 1
_SIGN: Final = 1 << 63
_ALL: Final = (1 << 64) - 1
_DOUBLE: Final = struct.Struct("<d")
_BITS: Final = struct.Struct("<Q")


def eta_key(eta: float) -> int:
    """A float as an unsigned 64-bit int of the same order."""
    (bits,) = _BITS.unpack(_DOUBLE.pack(eta))
    return bits ^ _ALL if bits & _SIGN else bits | _SIGN  # type: ignore[no-any-return]


def key_eta(key: int) -> float:
    """The eta a packed lane key was made with."""
    bits = key >> _ETA_SHIFT
    bits = bits ^ _SIGN if bits & _SIGN else bits ^ _ALL
    return _DOUBLE.unpack(_BITS.pack(bits))[0]  # type: ignore[no-any-return]


def pack(eta: float, seq: int, slot: int) -> int:
    return (eta_key(eta) << _ETA_SHIFT) | (seq << _SLOT_BITS) | slot


class Lane:
    """Claimable slots of one queue and one priority, in (eta, sequence) order."""

    __slots__ = ("heap", "pos", "run", "run_seq")

    def __init__(self, run: array[int] | None = None, run_seq: int = 0) -> None:
        self.heap: list[int] = []
        self.run: array[int] = array("I") if run is None else run
        self.pos = 0
        #: the highest sequence number a run entry may have
        self.run_seq = run_seq

    def head(self, cols: Columns) -> int | None:
        """The packed key of the first live entry, after dropping dead ones before it."""
        qseq, eta = cols.qseq, cols.eta
        run, pos, run_seq = self.run, self.pos, self.run_seq
        run_key = None
        while pos < len(run):
            slot = run[pos]
            seq = qseq[slot]
            if 0 < seq <= run_seq:
                run_key = pack(eta[slot], seq, slot)
                break
            pos += 1
        self.pos = pos
        if pos and pos >= len(run):
            self.run, self.pos = array("I"), 0
        heap = self.heap
        while heap:
            key = heap[0]
            if qseq[key & _SLOT_MASK] == (key >> _SLOT_BITS) & _SEQ_MASK:
                break
            heapq.heappop(heap)
        if heap and (run_key is None or heap[0] < run_key):
            return heap[0]
        return run_key

    def take(self, key: int) -> None:
        """Remove the head, whose key :meth:`head` returned."""
        if self.heap and self.heap[0] == key:
            heapq.heappop(self.heap)
        else:
            self.pos += 1

    @property
    def empty(self) -> bool:
        return not self.heap and self.pos >= len(self.run)


def live_slots(
    heap: list[int], run: array[int], run_seq: int, qseq: array[int], eta: array[float]
) -> array[int]:
    """The live slots of a lane's heap and run, in lane order (what a checkpoint stores).

    The run is in order already: only the heap's keys are sorted, and each is put in
    its place in the run by a binary search (keys of run entries are made only for
    the entries that search looks at)."""
    slots = array("I", (slot for slot in run if 0 < qseq[slot] <= run_seq))
    keys = sorted(k for k in heap if qseq[k & _SLOT_MASK] == (k >> _SLOT_BITS) & _SEQ_MASK)
    if not keys:
        return slots
    merged = array("I")
    start = 0
    for key in keys:
        low, high = start, len(slots)
        while low < high:
            middle = (low + high) // 2
            slot = slots[middle]
            if pack(eta[slot], qseq[slot], slot) < key:
                low = middle + 1
            else:
                high = middle
        merged.extend(slots[start:low])
        merged.append(key & _SLOT_MASK)
        start = low
    merged.extend(slots[start:])
    return merged


class Lanes:
    """Every lane, by queue code and priority."""

    def __init__(self, cols: Columns) -> None:
        self.cols = cols
        self.by_queue: dict[int, dict[int, Lane]] = {}
        #: the last sequence number given out
        self.seq = 0

    def push(self, slot: int, seq: int | None = None, queue: int | None = None) -> None:
        """Queue ``slot`` at its eta (a new entry; an older one of the slot dies), after
        every slot queued before (or as ``seq``, a place kept by a snapshot, says).
        ``queue``: its queue's code, if the caller has it at hand."""
        cols = self.cols
        if seq is None:
            self.seq = seq = self.seq + 1
        elif seq > self.seq:
            self.seq = seq
        cols.qseq[slot] = seq
        if queue is None:
            queue = cols.queue_of(slot)
        lanes = self.by_queue.get(queue)
        if lanes is None:
            lanes = self.by_queue[queue] = {}
        priority = cols.priority[slot]
        lane = lanes.get(priority)
        if lane is None:
            lane = lanes[priority] = Lane()
        heapq.heappush(lane.heap, pack(cols.eta[slot], seq, slot))

    def unqueue(self, slot: int) -> None:
        self.cols.qseq[slot] = 0

    def _heads(self, queues: Iterable[int]) -> Iterator[tuple[int, int, int, Lane]]:
        """(priority, head key, queue, lane) of each lane of ``queues`` that has a live entry;
        drops the empty lanes it meets."""
        cols = self.cols
        for queue in queues:
            lanes = self.by_queue.get(queue)
            if not lanes:
                continue
            for priority, lane in list(lanes.items()):
                key = lane.head(cols)
                if key is None:
                    del lanes[priority]
                    continue
                yield priority, key, queue, lane
            if not lanes:
                del self.by_queue[queue]

    def take(self, budgets: Mapping[int, int | None], now: float, limit: int) -> list[int]:
        """Up to ``limit`` due slots, in claim order, at most ``budgets[queue]`` from each
        queue (``None``: no bound); they are no longer queued."""
        due = eta_key(now) << _ETA_SHIFT | ((1 << _ETA_SHIFT) - 1)
        heads = [
            (-priority, key, queue, lane)
            for priority, key, queue, lane in self._heads(budgets)
            if key <= due
        ]
        heapq.heapify(heads)
        left = dict(budgets)
        taken: list[int] = []
        qseq = self.cols.qseq
        while heads and len(taken) < limit:
            negative, key, queue, lane = heads[0]
            lane.take(key)
            slot = key & _SLOT_MASK
            qseq[slot] = 0
            taken.append(slot)
            budget = left[queue]
            if budget is not None:
                left[queue] = budget = budget - 1
            after = None if budget == 0 else lane.head(self.cols)
            if after is not None and after <= due:
                heapq.heapreplace(heads, (negative, after, queue, lane))
            else:
                heapq.heappop(heads)
            if budget == 0:  # the queue's other lanes are done for this claim too
                heads = [head for head in heads if head[2] != queue]
                heapq.heapify(heads)
        return taken

    def first_eta(self, queue: int) -> float | None:
        """The earliest eta among the claimable slots of ``queue``."""
        keys = [key for _, key, _, _ in self._heads([queue])]
        return key_eta(min(keys)) if keys else None

    def oldest_due(self, now: float) -> float | None:
        """The earliest eta among the claimable slots due at ``now``."""
        keys = [key for _, key, _, _ in self._heads(list(self.by_queue))]
        if not keys:
            return None
        eta = key_eta(min(keys))
        return eta if eta <= now else None

    def queues(self) -> list[int]:
        """Codes of the queues with claimable slots (or lanes not cleaned up yet)."""
        return list(self.by_queue)
