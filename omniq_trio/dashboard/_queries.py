"""Every question the dashboard asks of the queue, through the public client only.

This module is the one place that knows which query API ``AsyncOmniQ`` has:
pages, actions and the JSON API call :class:`Queries` and read the small
values below, so a richer client API changes this module and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, final

import attrs

from .._client import AsyncOmniQ
from ..errors import InvalidTransitionError, TaskNotFoundError
from ..models import FINISHED_STATUSES, Task, TaskResult, TaskStatus

__all__ = [
    "ActionRefused",
    "Overview",
    "Progress",
    "Queries",
    "TaskDetail",
    "TaskFilter",
    "TaskRows",
    "WorkerView",
]

#: Rows on one page of the task list.
PAGE_SIZE: Final = 50


class ActionRefused(Exception):
    """An action the task's state does not allow (cancel a finished task, retry a running one)."""


@attrs.frozen
class TaskFilter:
    """What the task list shows: every field left ``None`` matches every task."""

    status: TaskStatus | None = None
    queue: str | None = None
    func: str | None = None
    #: the start of a task id (or a whole id)
    id_prefix: str | None = None

    def matches(self, task: Task) -> bool:
        return (
            (self.status is None or task.status is self.status)
            and (self.func is None or task.func == self.func)
            and (self.id_prefix is None or task.id.startswith(self.id_prefix))
        )


@attrs.frozen
class TaskRows:
    """One page of the task list."""

    tasks: Sequence[Task]
    #: where the next page starts; ``None`` on the last page
    next_cursor: str | None


@attrs.frozen
class WorkerView:
    """A live worker, with what is known of it (``None``: the store does not say)."""

    id: str
    running: tuple[str, ...]
    hostname: str | None = None
    pid: int | None = None
    concurrency: int | None = None
    queues: tuple[str, ...] | None = None
    started_at: float | None = None
    last_seen: float | None = None
    succeeded: int | None = None
    failed: int | None = None


@attrs.frozen
class Overview:
    """The numbers on the overview page, read at ``at`` (wall clock)."""

    at: float
    #: tasks per status, every status present
    counts: Mapping[TaskStatus, int]
    #: tasks per status in each named queue; empty when the store keeps no queues
    queues: Mapping[str, Mapping[TaskStatus, int]]
    #: since when the longest-waiting task has waited (``None``: nothing waits)
    oldest_waiting_since: float | None
    #: live workers, and what each runs
    workers: Sequence[WorkerView]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(self.counts[s] for s in FINISHED_STATUSES)


@attrs.frozen
class TaskDetail:
    """One task and the result of its last finished run (``None`` until it has one).

    The other fields are ``None`` when the store does not keep them.
    """

    task: Task
    result: TaskResult | None
    queue: str | None = None
    lost_runs: int | None = None
    max_lost_runs: int | None = None
    progress: Progress | None = None


@attrs.frozen
class Progress:
    """What a running task last said of its progress."""

    fraction: float
    message: str | None
    updated_at: float


@final
class Queries:
    """The dashboard's reads and actions over one open :class:`AsyncOmniQ`."""

    #: whether tasks have named queues (the task filter offers one)
    has_queues: bool = False
    #: whether the store keeps a worker registry (hostnames, pids, counters)
    has_registry: bool = False

    def __init__(self, omniq: AsyncOmniQ) -> None:
        self._omniq = omniq

    def now(self) -> float:
        """The client's wall-clock time (virtual under trio's MockClock)."""
        return self._omniq.clock.now()

    def describe_store(self) -> str:
        """Where the tasks live, for the page header (never a password)."""
        settings = self._omniq.settings
        if settings.backend == "file":
            return f"file journal {settings.base_dir}"
        if settings.backend == "postgres":
            return f"PostgreSQL, schema {settings.postgres_schema}"
        return f"{settings.backend} store"

    async def overview(self) -> Overview:
        stats = await self._omniq.stats()
        workers = await self.workers()
        return Overview(
            at=self.now(),
            counts=dict(stats.counts),
            queues={},
            oldest_waiting_since=stats.oldest_pending_created_at,
            workers=workers,
        )

    async def tasks(
        self, where: TaskFilter, *, cursor: str | None = None, limit: int = PAGE_SIZE
    ) -> TaskRows:
        """Tasks matching ``where``, newest first, ``limit`` from ``cursor`` on."""
        # The client lists by status only, oldest first: read them all and
        # page here. (Replaced by the store's filtered, cursor-paged listing.)
        everything = await self._omniq.list_tasks(status=where.status)
        matching = [t for t in reversed(everything) if where.matches(t)]
        start = _offset(cursor)
        page = matching[start : start + limit]
        more = start + limit < len(matching)
        return TaskRows(page, str(start + limit) if more else None)

    async def count(self, where: TaskFilter) -> int | None:
        """How many tasks match ``where``, when the store can say without a scan."""
        if where.queue is not None or where.func is not None or where.id_prefix is not None:
            return None
        stats = await self._omniq.stats()
        return stats.total if where.status is None else stats.counts[where.status]

    async def task(self, task_id: str) -> TaskDetail | None:
        """The task and its result, ``None`` for an unknown id."""
        try:
            task = await self._omniq.get_task(task_id)
        except TaskNotFoundError:
            return None
        result = await self._omniq.get_result(task_id) if task.status in FINISHED_STATUSES else None
        return TaskDetail(task, result)

    async def workers(self) -> list[WorkerView]:
        """Live workers: here, the holders of the leases of running tasks."""
        running = await self._omniq.list_tasks(status=TaskStatus.RUNNING)
        holders: dict[str, list[str]] = {}
        for task in running:
            if task.worker_id is not None:
                holders.setdefault(task.worker_id, []).append(task.id)
        return [WorkerView(worker_id, tuple(ids)) for worker_id, ids in sorted(holders.items())]

    # ---------------------------------------------------------------- actions

    async def cancel(self, task_id: str) -> None:
        """Cancel a task that has not finished; :class:`ActionRefused` if it has."""
        if not await self._omniq.cancel(task_id):
            raise ActionRefused(f"task {task_id} had already finished")

    async def retry(self, task_id: str) -> None:
        """Run a FAILED task again; :class:`ActionRefused` for any other state."""
        try:
            await self._omniq.retry(task_id)
        except InvalidTransitionError as exc:
            raise ActionRefused(f"only failed tasks can be retried ({exc})") from None

    async def purge(self, older_than: float) -> int:
        """Forget tasks that finished more than ``older_than`` seconds ago; how many."""
        return await self._omniq.purge(older_than)


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        offset = int(cursor)
    except ValueError:
        return 0
    return max(offset, 0)
