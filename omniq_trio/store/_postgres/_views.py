"""Parameters for, and values from, the statements about queues, schedules, workers,
listings and counts (the task rows themselves are ``_rows``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Sequence
from typing import Final

from ...errors import TaskOptionError
from ...models import QueueInfo, RateLimit, ScheduleInfo, TaskStatus, WorkerInfo
from .._controls import QueueControl
from .._index_queries import decode_cursor, status_filter
from ._wire import Param, Row, array_literal

__all__ = [
    "MAX_BIGINT",
    "count_maps",
    "earliest_due",
    "listing",
    "merge_pages",
    "queue_control",
    "queue_infos",
    "schedule_from_row",
    "schedule_params",
    "worker_from_row",
    "worker_params",
]

MAX_BIGINT: Final = 2**63 - 1


def listing(
    *,
    status: TaskStatus | frozenset[TaskStatus] | None,
    queue: str | None,
    func: str | None,
    id_prefix: str | None,
    limit: int | None,
    cursor: str | None,
    newest_first: bool,
) -> list[list[Param]]:
    """The parameters of each run of the ``list`` statement these filters take (one per
    status, or one for any status), each asking for one row more than ``limit``,
    which says whether a next page exists. ``[]``: no task can match."""
    statuses = status_filter(status)
    after = decode_cursor(cursor)
    if after is not None and not 0 <= after <= MAX_BIGINT:
        raise TaskOptionError(f"{cursor!r} is not a cursor from a page of this store")
    if after is None:
        after = MAX_BIGINT if newest_first else 0
    prefix = id_prefix or None
    if statuses is None and (prefix, queue, func) != (None, None, None):
        # their indexes hold one status at a time (and no running task)
        statuses = frozenset(TaskStatus)
    rows = MAX_BIGINT if limit is None else min(limit + 1, MAX_BIGINT)
    above = None if prefix is None else _above_prefix(prefix)
    runs: list[str | None] = [None]
    if statuses is not None:
        runs = [s.value for s in sorted(statuses)]
    return [[after, s, queue, func, prefix, above, rows] for s in runs]


def merge_pages(
    pages: Iterable[Sequence[Row]], *, limit: int | None, cursor: str | None, newest_first: bool
) -> tuple[list[Row], str | None]:
    """The rows of one listing page from the runs of ``list`` (each in seq order, seq
    last), and the cursor of the next page (``None``: the last page)."""
    rows = sorted((row for page in pages for row in page), key=_seq, reverse=newest_first)
    if limit is None or len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (str(rows[-1][-1]) if rows else cursor)


def _seq(row: Row) -> int:
    seq: int = row[-1]
    return seq


def _above_prefix(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix``, in code
    point (UTF-8 byte) order; ``None`` if there is none."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates are not text
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None


def count_maps(
    rows: Iterable[Row],
) -> tuple[dict[TaskStatus, int], dict[str, dict[TaskStatus, int]]]:
    """Counts by status, and by queue and status, from ``counts`` rows (every status
    present, zeros included; only queues with tasks)."""
    totals = dict.fromkeys(TaskStatus, 0)
    queues: dict[str, dict[TaskStatus, int]] = {}
    for queue, status, n in rows:
        totals[TaskStatus(status)] += n
        queues.setdefault(queue, dict.fromkeys(TaskStatus, 0))[TaskStatus(status)] += n
    return totals, dict(sorted(queues.items()))


def queue_control(
    paused: bool | None, max_starts: int | None, per: float | None, starts: Sequence[float] | None
) -> QueueControl:
    """A queue's controls as the index keeps them, from its ``queues`` row (all ``None``:
    no row)."""
    limit = None if max_starts is None or per is None else RateLimit(max_starts, per)
    return QueueControl(bool(paused), limit, deque(starts or ()))


def queue_infos(count_rows: Iterable[Row], control_rows: Iterable[Row]) -> list[QueueInfo]:
    """Every queue with tasks or controls, by name."""
    _, counts = count_maps(count_rows)
    controls = {name: queue_control(*rest) for name, *rest in control_rows}
    infos = []
    for name in sorted(counts.keys() | controls.keys()):
        control = controls.get(name)
        infos.append(
            QueueInfo(
                name,
                counts.get(name, dict.fromkeys(TaskStatus, 0)),
                paused=control is not None and control.paused,
                limit=None if control is None else control.limit,
            )
        )
    return infos


def earliest_due(eta_rows: Iterable[Row], queues: Collection[str] | None) -> float | None:
    """``next_due`` from ``queue_etas`` rows: the earliest eta of a queue that is not
    paused, no earlier than its rate limit frees a start."""
    best: float | None = None
    for name, eta, *control_row in eta_rows:
        if queues is not None and name not in queues:
            continue
        control = queue_control(*control_row)
        if control.paused:
            continue
        free_at = control.free_at()
        if free_at is not None:
            eta = max(eta, free_at)
        if best is None or eta < best:
            best = eta
    return best


def schedule_params(schedules: Sequence[ScheduleInfo]) -> list[Param]:
    """``register_schedules`` parameters: names made distinct (the last definition of a
    name wins, with the latest slot any of them gave)."""
    by_name: dict[str, ScheduleInfo] = {}
    for info in schedules:
        earlier = by_name.get(info.name)
        if (
            earlier is not None
            and earlier.last_slot is not None
            and (info.last_slot is None or info.last_slot < earlier.last_slot)
        ):
            info = _with_last_slot(info, earlier.last_slot)
        by_name[info.name] = info
    infos = list(by_name.values())
    return [
        array_literal([i.name for i in infos]),
        array_literal([i.func for i in infos]),
        array_literal([i.cron for i in infos]),
        array_literal([i.timezone for i in infos]),
        array_literal([i.queue for i in infos]),
        array_literal([i.last_slot for i in infos]),
        array_literal([i.next_slot for i in infos]),
        array_literal([i.updated_at for i in infos]),
    ]


def _with_last_slot(info: ScheduleInfo, slot: float) -> ScheduleInfo:
    return ScheduleInfo(
        info.name,
        info.func,
        info.cron,
        info.timezone,
        info.queue,
        slot,
        info.next_slot,
        info.updated_at,
    )


def schedule_from_row(row: Row) -> ScheduleInfo:
    name, func, cron, timezone, queue, last_slot, next_slot, updated_at = row
    return ScheduleInfo(name, func, cron, timezone, queue, last_slot, next_slot, updated_at)


def worker_params(info: WorkerInfo) -> list[Param]:
    return [
        info.id,
        info.hostname,
        info.pid,
        info.concurrency,
        None if info.queues is None else array_literal(list(info.queues)),
        info.started_at,
        info.last_seen,
        info.expires_at,
        array_literal(list(info.running)),
        info.succeeded,
        info.failed,
    ]


def worker_from_row(row: Row) -> WorkerInfo:
    (
        id_,
        hostname,
        pid,
        concurrency,
        queues,
        started_at,
        last_seen,
        expires_at,
        running,
        succeeded,
        failed,
    ) = row
    return WorkerInfo(
        id=id_,
        hostname=hostname,
        pid=pid,
        concurrency=concurrency,
        queues=None if queues is None else tuple(queues),
        started_at=started_at,
        last_seen=last_seen,
        expires_at=expires_at,
        running=tuple(running),
        succeeded=succeeded,
        failed=failed,
    )
