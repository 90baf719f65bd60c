"""Reading a :class:`TaskIndex`: listings with filters and cursors, counts, the next eta.

A listing walks the slots in enqueue order (or back from the newest) over the
most selective of its filters, searched in C over the byte columns (status,
queue and function codes, ids), so that a page of a million tasks costs about
what it returns; only the tasks on the page are rebuilt from their payloads.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Iterator
from functools import lru_cache
from typing import Final

from ..errors import TaskOptionError
from ..models import QueueInfo, TaskPage, TaskStatus
from ._base import StoreStats
from ._columns import STATUS_CODES, Columns
from ._index import TaskIndex

__all__ = ["decode_cursor", "list_page", "next_due", "queue_infos", "stats", "status_filter"]

_NO_COUNTS: Final = dict.fromkeys(TaskStatus, 0)
_ANY_STATUS: Final = frozenset(STATUS_CODES.values())
#: Status bytes searched backwards per step at first; the step grows to _MAX_STEP.
_FIRST_STEP: Final = 256
_MAX_STEP: Final = 1 << 16


def status_filter(
    status: TaskStatus | frozenset[TaskStatus] | None,
) -> frozenset[TaskStatus] | None:
    """A listing's status filter as a set (``None``: any status)."""
    if status is None or isinstance(status, frozenset):
        return status
    return frozenset({TaskStatus(status)})


def decode_cursor(cursor: str | None) -> int | None:
    """A listing cursor is the enqueue position of the last task of a page."""
    if cursor is None:
        return None
    try:
        return int(cursor)
    except ValueError:
        raise TaskOptionError(f"{cursor!r} is not a cursor from a page of this store") from None


@lru_cache(maxsize=64)
def _status_pattern(codes: frozenset[int]) -> re.Pattern[bytes]:
    return re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(codes)) + b"]")


def _slots_with_status(
    cols: Columns, codes: frozenset[int], start: int, forward: bool
) -> Iterator[int]:
    pattern, status = _status_pattern(codes), cols.status
    if forward:
        for match in pattern.finditer(status, start):
            yield match.start()
        return
    end, step = start + 1, _FIRST_STEP
    while end > 0:
        begin = max(0, end - step)
        found = [match.start() for match in pattern.finditer(status, begin, end)]
        yield from reversed(found)
        end, step = begin, min(step * 4, _MAX_STEP)


def list_page(
    index: TaskIndex,
    *,
    status: TaskStatus | frozenset[TaskStatus] | None = None,
    queue: str | None = None,
    func: str | None = None,
    id_prefix: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    newest_first: bool = False,
) -> TaskPage:
    """One page of tasks matching every filter, in enqueue order (or newest first)."""
    statuses = status_filter(status)
    after = decode_cursor(cursor)
    cols = index.cols
    codes = _ANY_STATUS if statuses is None else frozenset(STATUS_CODES[s] for s in statuses)
    queue_code = None if queue is None else cols.queues.find(queue)
    func_code = None if func is None else cols.funcs.find(func)
    if (
        not codes
        or (queue is not None and queue_code is None)
        or (func is not None and func_code is None)
    ):
        return TaskPage([], None)
    forward = not newest_first
    if after is None:
        start = 0 if forward else len(cols) - 1
    elif forward:
        start = bisect.bisect_right(cols.order, after)
    else:
        start = bisect.bisect_left(cols.order, after) - 1
    # walk the most selective filter; check the others on each slot it yields
    candidates: list[tuple[int, Iterator[int]]] = [
        (sum(index.counts[c] for c in codes), _slots_with_status(cols, codes, start, forward))
    ]
    if queue_code is not None:
        count = sum(index.queue_counts.get(queue_code, ()))
        candidates.append((count, cols.slots_with_code(cols.queue, queue_code, start, forward)))
    if func_code is not None:
        count = index.func_counts.get(func_code, 0)
        candidates.append((count, cols.slots_with_code(cols.func, func_code, start, forward)))
    if id_prefix:
        candidates.append((-1, cols.slots_with_prefix(id_prefix, start, forward)))
    estimate, slots = min(candidates, key=lambda c: c[0])
    if estimate == 0:
        return TaskPage([], None)
    prefix = id_prefix.encode() if id_prefix else None
    status_col, off, blob = cols.status, cols.id_off, cols.id_blob
    wanted = None if limit is None else limit + 1
    found: list[int] = []
    for slot in slots:
        if status_col[slot] not in codes:
            continue
        if queue_code is not None and cols.queue_of(slot) != queue_code:
            continue
        if func_code is not None and cols.func_of(slot) != func_code:
            continue
        if prefix is not None and not (
            blob.startswith(prefix, off[slot]) and off[slot + 1] - off[slot] >= len(prefix)
        ):
            continue
        found.append(slot)
        if wanted is not None and len(found) >= wanted:
            break
    next_cursor = None
    if limit is not None and len(found) > limit:
        found = found[:limit]
        next_cursor = str(cols.order[found[-1]]) if found else cursor
    return TaskPage([index.task(slot) for slot in found], next_cursor)


def stats(index: TaskIndex, now: float) -> StoreStats:
    """Counts by status and by queue, and the eta of the oldest due task."""
    names = index.cols.queues.names
    return StoreStats(
        {status: index.counts[code] for status, code in STATUS_CODES.items()},
        {
            names[code]: {status: counts[c] for status, c in STATUS_CODES.items()}
            for code, counts in sorted(index.queue_counts.items(), key=lambda q: names[q[0]])
            if any(counts)
        },
        index.lanes.oldest_due(now),
    )


def next_due(index: TaskIndex, now: float, queues: Collection[str] | None = None) -> float | None:
    """The earliest time a task of ``queues`` (or any queue) may be claimed: its eta,
    or later if its queue is paused (never) or rate-limited (when the window frees)."""
    best: float | None = None
    interned = index.cols.queues
    if queues is None:
        codes = index.lanes.queues()
    else:
        codes = [code for name in queues if (code := interned.find(name))]
    for code in codes:
        control = index.controls.queue(interned.names[code])
        if control is not None and control.paused:
            continue
        eta = index.lanes.first_eta(code)
        if eta is None:
            continue
        if control is not None and (free_at := control.free_at()) is not None:
            eta = max(eta, free_at)
        if best is None or eta < best:
            best = eta
    return best


def queue_infos(index: TaskIndex) -> list[QueueInfo]:
    """Every queue with tasks or controls, by name."""
    interned = index.cols.queues
    counted = {interned.names[code]: counts for code, counts in index.queue_counts.items()}
    infos = []
    for name in sorted(counted.keys() | index.controls.queues.keys()):
        counts = counted.get(name)
        control = index.controls.queue(name)
        infos.append(
            QueueInfo(
                name,
                {status: (counts[code] if counts else 0) for status, code in STATUS_CODES.items()},
                paused=control is not None and control.paused,
                limit=None if control is None else control.limit,
            )
        )
    return infos
