"""``Columns``: the state of every task as parallel arrays, one entry per *slot*.

A task's slot is its row: the position in enqueue order it was given when it
entered the index. The arrays hold what claiming, counting, listing, purging
and reclaiming need, in fixed-size entries (about 150 bytes a task); everything
else of a task (its arguments, result, error, headers, ...) stays where its
payload source keeps it (the journal's file, or the memory store's objects),
reached through the ``*_ref`` columns.

Strings that repeat (function paths, queue names) are stored once and
referred to by a small code. Ids are kept as bytes in one buffer; a lookup by
id goes through ``recent`` (a dict, for slots added since the index was
loaded) or ``hashed`` (a sorted array of ``crc32(id) << 32 | slot``, as a
checkpoint stores it), so that loading a million ids costs no Python objects.

A slot whose task was purged keeps its place (``status`` 0) until the index is
rebuilt (a compaction); slots are never reused.
"""

from __future__ import annotations

import bisect
import math
import struct
import zlib
from array import array
from collections.abc import Iterable, Iterator
from typing import Final

from ..models import TaskStatus

__all__ = [
    "NO_TIME",
    "STATUSES",
    "STATUS_CODES",
    "Columns",
    "Interned",
    "opt_time",
    "time_or_none",
]

#: The stored value of a time that is ``None``.
NO_TIME: Final = math.nan
#: Status codes in the ``status`` column; 0 is a purged slot.
STATUS_CODES: Final = {
    TaskStatus.PENDING: 1,
    TaskStatus.RUNNING: 2,
    TaskStatus.SUCCESS: 3,
    TaskStatus.FAILED: 4,
    TaskStatus.RETRYING: 5,
    TaskStatus.CANCELLED: 6,
}
#: code -> status (index 0 unused).
STATUSES: Final[tuple[TaskStatus | None, ...]] = (None, *STATUS_CODES)
_SLOT_MASK: Final = (1 << 32) - 1

#: Names of the arrays a checkpoint stores, with their type codes.
ARRAYS: Final = (
    ("priority", "q"),
    ("eta", "d"),
    ("scheduled_at", "d"),
    ("started_at", "d"),
    ("finished_at", "d"),
    ("attempts", "I"),
    ("lost_runs", "I"),
    ("qseq", "Q"),
    ("order", "Q"),
    ("task_ref", "Q"),
    ("error_ref", "Q"),
    ("result_ref", "Q"),
    ("progress_ref", "Q"),
    ("id_off", "Q"),
    ("hashed", "Q"),
)
#: Names of the byte columns a checkpoint stores.
BYTE_COLUMNS: Final = ("status", "result_status", "queue", "func", "id_blob")
_CODE: Final = struct.Struct("<I")


def opt_time(value: float | None) -> float:
    return NO_TIME if value is None else value


def time_or_none(value: float) -> float | None:
    return None if value != value else value  # NaN is the only value unequal to itself


def id_hash(task_id: bytes) -> int:
    return zlib.crc32(task_id)


def merge_hashed(hashed: array[int], recent: Iterable[tuple[str, int]]) -> array[int]:
    """``hashed`` with the entries of ``recent`` (id, slot) merged in, still sorted: each
    new entry is put in its place by a binary search and the rest copied in slices, so
    the cost follows the new entries, not the million old ones. (Entries of purged
    slots stay: lookups skip them; a compaction drops them.)"""
    entries = sorted(id_hash(task_id.encode()) << 32 | slot for task_id, slot in recent)
    if not entries:
        return hashed[:]
    merged = array("Q")
    start = 0
    for entry in entries:
        place = bisect.bisect_left(hashed, entry, start)
        merged.extend(hashed[start:place])
        merged.append(entry)
        start = place
    merged.extend(hashed[start:])
    return merged


class Interned:
    """Strings by code and codes by string; codes start at 1 (0: none)."""

    __slots__ = ("codes", "names")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: list[str] = ["", *names]
        self.codes: dict[str, int] = {name: i for i, name in enumerate(self.names) if i}

    def code(self, name: str) -> int:
        code = self.codes.get(name)
        if code is None:
            code = self.codes[name] = len(self.names)
            self.names.append(name)
        return code

    def find(self, name: str) -> int | None:
        return self.codes.get(name)


class Columns:
    """Per-slot arrays of task state, and the id of each slot."""

    def __init__(self) -> None:
        self.status = bytearray()
        #: the status of the slot's stored result (0: none)
        self.result_status = bytearray()
        #: queue and function codes, 4 bytes (little-endian) a slot, searchable as bytes
        self.queue = bytearray()
        self.func = bytearray()
        self.priority = array("q")
        self.eta = array("d")
        self.scheduled_at = array("d")
        self.started_at = array("d")
        self.finished_at = array("d")
        self.attempts = array("I")
        self.lost_runs = array("I")
        #: the sequence number of the slot's entry in the claim lanes (0: not queued)
        self.qseq = array("Q")
        #: enqueue position, kept across compactions: listing cursors point at it
        self.order = array("Q")
        # where the payload source keeps what the columns do not hold (0: nothing)
        self.task_ref = array("Q")
        self.error_ref = array("Q")
        self.result_ref = array("Q")
        self.progress_ref = array("Q")
        self.id_blob = bytearray()
        self.id_off = array("Q", [0])
        #: sorted ``crc32(id) << 32 | slot`` for the slots below ``len(hashed)``'s cover
        self.hashed = array("Q")
        #: id -> slot for live slots not in ``hashed``
        self.recent: dict[str, int] = {}
        self.queues = Interned()
        self.funcs = Interned()

    def __len__(self) -> int:
        return len(self.status)

    # ---------------------------------------------------------------- ids

    def id_at(self, slot: int) -> str:
        off = self.id_off
        return self.id_blob[off[slot] : off[slot + 1]].decode()

    def lookup(self, task_id: str) -> int:
        """The live slot holding ``task_id``, or -1."""
        slot = self.recent.get(task_id)
        if slot is not None:
            return slot
        hashed = self.hashed
        if not hashed:
            return -1
        key = task_id.encode()
        h = id_hash(key)
        i = bisect.bisect_left(hashed, h << 32)
        status, blob, off = self.status, self.id_blob, self.id_off
        while i < len(hashed):
            entry = hashed[i]
            if entry >> 32 != h:
                break
            slot = entry & _SLOT_MASK
            if status[slot] and blob[off[slot] : off[slot + 1]] == key:
                return slot
            i += 1
        return -1

    def forget_id(self, slot: int, task_id: str) -> None:
        """A purged slot's id no longer finds it (``hashed`` entries check the status)."""
        if self.recent.get(task_id) == slot:
            del self.recent[task_id]

    # ---------------------------------------------------------------- slots

    def add(
        self,
        task_id: str,
        status: int,
        queue: int,
        func: int,
        priority: int,
        eta: float,
        scheduled_at: float,
        started_at: float,
        finished_at: float,
        attempts: int,
        lost_runs: int,
        order: int,
        /,
    ) -> int:
        """A new slot at the end; its refs and queue entry start empty."""
        slot = len(self.status)
        self.status.append(status)
        self.result_status.append(0)
        self.queue += _CODE.pack(queue)
        self.func += _CODE.pack(func)
        self.priority.append(priority)
        self.eta.append(eta)
        self.scheduled_at.append(scheduled_at)
        self.started_at.append(started_at)
        self.finished_at.append(finished_at)
        self.attempts.append(attempts)
        self.lost_runs.append(lost_runs)
        self.qseq.append(0)
        self.order.append(order)
        self.task_ref.append(0)
        self.error_ref.append(0)
        self.result_ref.append(0)
        self.progress_ref.append(0)
        self.id_blob += task_id.encode()
        self.id_off.append(len(self.id_blob))
        self.recent[task_id] = slot
        return slot

    def queue_of(self, slot: int) -> int:
        return _CODE.unpack_from(self.queue, slot * 4)[0]  # type: ignore[no-any-return]

    def func_of(self, slot: int) -> int:
        return _CODE.unpack_from(self.func, slot * 4)[0]  # type: ignore[no-any-return]

    def status_of(self, slot: int) -> TaskStatus:
        status = STATUSES[self.status[slot]]
        assert status is not None, f"slot {slot} was purged"
        return status

    # -------------------------------------------------------------- searching

    def slots_with_code(
        self, data: bytearray, code: int, start: int, forward: bool
    ) -> Iterator[int]:
        """Slots from ``start`` on (or from it back, backwards) whose code in ``data`` (the
        ``queue`` or ``func`` column) is ``code``."""
        pattern = _CODE.pack(code)
        if forward:
            pos = start * 4
            while (pos := data.find(pattern, pos)) >= 0:
                if pos % 4:
                    pos += 1
                    continue
                yield pos // 4
                pos += 4
        else:
            end = (start + 1) * 4
            while (pos := data.rfind(pattern, 0, end)) >= 0:
                if pos % 4:
                    end = pos + 3
                    continue
                yield pos // 4
                end = pos

    def slots_with_prefix(self, prefix: str, start: int, forward: bool) -> Iterator[int]:
        """Slots from ``start`` on (or from it back, backwards) whose id starts with ``prefix``."""
        blob, off, count = self.id_blob, self.id_off, len(self)
        pattern = prefix.encode()
        size = len(pattern)
        if forward:
            pos = off[start] if start < count else len(blob)
            while (pos := blob.find(pattern, pos)) >= 0:
                slot = bisect.bisect_left(off, pos)
                if slot < count and off[slot] == pos and off[slot + 1] - pos >= size:
                    yield slot
                pos += 1
        elif start >= 0:
            end = off[start] + size
            while (pos := blob.rfind(pattern, 0, end)) >= 0:
                slot = bisect.bisect_left(off, pos)
                if off[slot] == pos and off[slot + 1] - pos >= size:
                    yield slot
                end = pos + size - 1
