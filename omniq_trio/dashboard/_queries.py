"""Every question the dashboard asks of the queue, through the public client only.

This module is the one place that knows which query API ``AsyncOmniQ`` has:
pages, actions and the JSON API call :class:`Queries` and read the small
values below. Every read is one indexed call of the client: counts come from
``stats()``, a page of tasks from ``query_tasks()`` (filtered and paged by the
store, newest first), never from a listing of everything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, final

import attrs

from .._client import AsyncOmniQ
from ..errors import (
    FunctionImportError,
    InvalidTransitionError,
    TaskNotFoundError,
    TaskOptionError,
    UniqueConflictError,
)
from ..models import (
    FINISHED_STATUSES,
    Progress,
    RateLimit,
    Task,
    TaskResult,
    TaskStatus,
    WorkerInfo,
)

__all__ = [
    "ActionRefused",
    "BadQuery",
    "Overview",
    "Queries",
    "QueueView",
    "TaskDetail",
    "TaskFilter",
    "TaskRows",
    "WorkerView",
]

#: Rows on one page of the task list.
PAGE_SIZE: Final = 50
#: Running tasks read to find their holders when no worker is registered.
_HOLDERS_READ: Final = 1_000


class ActionRefused(Exception):
    """An action the task's state does not allow (cancel a finished task, retry a running one).

    ``code`` names the notice the page shows (see ``_context.NOTICES``).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BadQuery(Exception):
    """A filter or cursor the store does not accept (the message says why)."""


@attrs.frozen
class TaskFilter:
    """What the task list shows: every field left ``None`` matches every task."""

    status: TaskStatus | None = None
    queue: str | None = None
    func: str | None = None
    #: the start of a task id (or a whole id)
    id_prefix: str | None = None


@attrs.frozen
class TaskRows:
    """One page of the task list."""

    tasks: Sequence[Task]
    #: where the next page starts; ``None`` on the last page
    next_cursor: str | None


@attrs.frozen
class WorkerView:
    """A live worker pool; ``None`` fields are not known (a pool that is not in the
    store's registry, seen only through the leases of the tasks it runs)."""

    id: str
    running: tuple[str, ...]
    hostname: str | None = None
    pid: int | None = None
    concurrency: int | None = None
    #: ``None``: every queue (or not known, when ``registered`` is false)
    queues: tuple[str, ...] | None = None
    started_at: float | None = None
    last_seen: float | None = None
    succeeded: int | None = None
    failed: int | None = None
    registered: bool = True

    @classmethod
    def of(cls, info: WorkerInfo) -> WorkerView:
        return cls(
            id=info.id,
            running=tuple(info.running),
            hostname=info.hostname,
            pid=info.pid,
            concurrency=info.concurrency,
            queues=info.queues,
            started_at=info.started_at,
            last_seen=info.last_seen,
            succeeded=info.succeeded,
            failed=info.failed,
        )


@attrs.frozen
class QueueView:
    """A named queue: its tasks by status and its controls."""

    name: str
    counts: Mapping[TaskStatus, int]
    paused: bool = False
    limit: RateLimit | None = None


@attrs.frozen
class Overview:
    """The numbers on the overview page, read at ``at`` (wall clock)."""

    at: float
    #: tasks per status, every status present
    counts: Mapping[TaskStatus, int]
    #: every queue with tasks or controls, by name
    queues: Sequence[QueueView]
    #: since when the longest-waiting due task has waited (``None``: nothing waits)
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
    """One task and the result of its last finished run (``None`` until it has one)."""

    task: Task
    result: TaskResult | None
    queue: str | None = None
    lost_runs: int | None = None
    max_lost_runs: int | None = None
    progress: Progress | None = None


@final
class Queries:
    """The dashboard's reads and actions over one open :class:`AsyncOmniQ`."""

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

    @property
    def failed_ttl(self) -> float:
        """How long FAILED tasks are kept by a purge that does not include them."""
        return self._omniq.settings.failed_ttl

    async def overview(self) -> Overview:
        stats = await self._omniq.stats()
        try:
            queues = [
                QueueView(q.name, dict(q.counts), q.paused, q.limit)
                for q in await self._omniq.list_queues()
            ]
        except NotImplementedError:  # a store without queue controls: counts only
            queues = [QueueView(name, dict(counts)) for name, counts in stats.queues.items()]
        return Overview(
            at=self.now(),
            counts=dict(stats.counts),
            queues=queues,
            oldest_waiting_since=stats.oldest_due_eta,
            workers=await self.workers(running=stats.counts[TaskStatus.RUNNING]),
        )

    async def counts(self) -> Mapping[TaskStatus, int]:
        """Tasks per status (what the throughput sampler reads)."""
        return (await self._omniq.stats()).counts

    async def tasks(
        self, where: TaskFilter, *, cursor: str | None = None, limit: int = PAGE_SIZE
    ) -> TaskRows:
        """Tasks matching ``where``, newest first, ``limit`` after ``cursor``.

        Raises :class:`BadQuery` for a filter or cursor the store refuses.
        """
        try:
            page = await self._omniq.query_tasks(
                where.status,
                queue=where.queue,
                func=where.func,
                id_prefix=where.id_prefix,
                limit=limit,
                cursor=cursor,
                newest_first=True,
            )
        except (TaskOptionError, FunctionImportError) as exc:
            raise BadQuery(str(exc)) from None
        return TaskRows(page.tasks, page.next_cursor)

    async def count(self, where: TaskFilter) -> int | None:
        """How many tasks match ``where``, when the counts say it without a scan."""
        if where.func is not None or where.id_prefix is not None:
            return None
        stats = await self._omniq.stats()
        counts = stats.counts if where.queue is None else stats.queues.get(where.queue, {})
        if where.status is None:
            return sum(counts.values())
        return counts.get(where.status, 0)

    async def task(self, task_id: str) -> TaskDetail | None:
        """The task and its result, ``None`` for an unknown id."""
        try:
            task = await self._omniq.get_task(task_id)
        except TaskNotFoundError:
            return None
        result = await self._omniq.get_result(task_id) if task.status in FINISHED_STATUSES else None
        return TaskDetail(
            task,
            result,
            queue=task.queue,
            lost_runs=task.lost_runs,
            max_lost_runs=task.max_lost_runs,
            progress=task.progress,
        )

    async def workers(self, *, running: int | None = None) -> list[WorkerView]:
        """Live workers: the store's registry; while it is empty, the holders of the
        leases of running tasks (pools that do not record themselves). ``running``:
        how many tasks run, when the caller knows (0 spares the listing)."""
        try:
            registered = [WorkerView.of(info) for info in await self._omniq.list_workers()]
        except NotImplementedError:  # a store without a registry yet
            registered = []
        if registered or running == 0:
            return registered
        page = await self._omniq.query_tasks(TaskStatus.RUNNING, limit=_HOLDERS_READ)
        holders: dict[str, list[str]] = {}
        for task in page.tasks:
            if task.worker_id is not None:
                holders.setdefault(task.worker_id, []).append(task.id)
        return [
            WorkerView(worker_id, tuple(ids), registered=False)
            for worker_id, ids in sorted(holders.items())
        ]

    # ---------------------------------------------------------------- actions

    async def cancel(self, task_id: str) -> None:
        """Cancel a task that has not finished; :class:`ActionRefused` if it has."""
        if not await self._omniq.cancel(task_id):
            raise ActionRefused("not-cancelled", f"task {task_id} had already finished")

    async def retry(self, task_id: str) -> None:
        """Run a FAILED task again; :class:`ActionRefused` for any other state."""
        try:
            await self._omniq.retry(task_id)
        except InvalidTransitionError as exc:
            raise ActionRefused(
                "not-retried", f"only failed tasks can be retried ({exc})"
            ) from None
        except UniqueConflictError as exc:
            raise ActionRefused("retry-held", str(exc)) from None

    async def purge(self, older_than: float, *, include_failed: bool) -> int:
        """Forget tasks that finished more than ``older_than`` seconds ago; how many.
        FAILED ones younger than ``failed_ttl`` stay unless ``include_failed``."""
        return await self._omniq.purge(older_than, include_failed=include_failed)
