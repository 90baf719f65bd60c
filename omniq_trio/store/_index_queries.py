"""Reading a :class:`TaskIndex`: listings with filters and cursors, counts, the next eta."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
from typing import Final

from ..errors import TaskOptionError
from ..models import QueueInfo, Task, TaskPage, TaskStatus
from ._base import StoreStats
from ._index import TaskIndex

__all__ = ["decode_cursor", "list_page", "next_due", "queue_infos", "stats", "status_filter"]

_NO_COUNTS: Final = dict.fromkeys(TaskStatus, 0)


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
    order = index.order
    tasks: Iterator[Task] = iter(
        reversed(index.tasks.values()) if newest_first else index.tasks.values()
    )
    if after is not None:
        if newest_first:
            tasks = itertools.dropwhile(lambda t: order[t.id] >= after, tasks)
        else:
            tasks = itertools.dropwhile(lambda t: order[t.id] <= after, tasks)
    matching = (
        t
        for t in tasks
        if (statuses is None or t.status in statuses)
        and (queue is None or t.queue == queue)
        and (func is None or t.func == func)
        and (id_prefix is None or t.id.startswith(id_prefix))
    )
    page = list(itertools.islice(matching, None if limit is None else limit + 1))
    if limit is not None and len(page) > limit:
        page = page[:limit]
        return TaskPage(page, str(order[page[-1].id]) if page else cursor)
    return TaskPage(page, None)


def stats(index: TaskIndex, now: float) -> StoreStats:
    """Counts by status and by queue, and the eta of the oldest due task."""
    oldest: float | None = None
    tasks = index.tasks
    for task_id in index.queued_ids():
        eta = tasks[task_id].eta
        if eta <= now and (oldest is None or eta < oldest):
            oldest = eta
    return StoreStats(
        {status: index.counts[status] for status in TaskStatus},
        {
            name: {**_NO_COUNTS, **counts}
            for name, counts in sorted(index.queue_counts.items())
            if any(counts.values())
        },
        oldest,
    )


def next_due(index: TaskIndex, now: float, queues: Collection[str] | None = None) -> float | None:
    """The earliest time a task of ``queues`` (or any queue) may be claimed: its eta,
    or later if its queue is paused (never) or rate-limited (when the window frees)."""
    best: float | None = None
    names = index.queue_names() if queues is None else queues
    for name in names:
        control = index.controls.queue(name)
        if control is not None and control.paused:
            continue
        eta = index.first_eta(name, now)
        if eta is None:
            continue
        if control is not None and (free_at := control.free_at()) is not None:
            eta = max(eta, free_at)
        if best is None or eta < best:
            best = eta
    return best


def queue_infos(index: TaskIndex) -> list[QueueInfo]:
    """Every queue with tasks or controls, by name."""
    names = sorted(index.queue_counts.keys() | index.controls.queues.keys())
    infos = []
    for name in names:
        counts: Mapping[TaskStatus, int] = index.queue_counts.get(name, {})
        control = index.controls.queue(name)
        infos.append(
            QueueInfo(
                name,
                {status: counts.get(status, 0) for status in TaskStatus},
                paused=control is not None and control.paused,
                limit=None if control is None else control.limit,
            )
        )
    return infos
