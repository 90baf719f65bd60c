"""``PostgresStore``: the Store contract on PostgreSQL, for workers on many machines."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Final, final

import trio

from ...config import Settings
from ...errors import (
    ConfigError,
    DuplicateTaskError,
    InvalidTransitionError,
    StoreError,
    TaskNotFoundError,
    UniqueConflictError,
)
from ...models import (
    Enqueued,
    Progress,
    QueueInfo,
    RateLimit,
    ScheduleInfo,
    Task,
    TaskPage,
    TaskResult,
    TaskStatus,
    WorkerInfo,
)
from .._base import EnqueueStatement, Outcome, Reclaimed, StoreCapabilities, StoreStats
from .._rules import (
    ENQUEUE_CHANGES,
    WORK_CHANGES,
    cancel_changes,
    check_new_tasks,
    duplicate_outcomes,
    lease_lost,
    outcome_changes,
    reclaim_changes,
    worker_lost_error,
)
from ._connected import ConnectedStore
from ._rows import (
    enqueue_params,
    error_json,
    progress_json,
    record_columns,
    result_from_row,
    task_from_row,
)
from ._sql import psycopg_sql
from ._views import (
    count_maps,
    earliest_due,
    listing,
    merge_pages,
    queue_infos,
    schedule_from_row,
    schedule_params,
    worker_from_row,
    worker_params,
)
from ._wire import (
    ConnectionLostError,
    Param,
    QueryError,
    Row,
    Statement,
    array_literal,
)

__all__ = ["PostgresStore"]

logger = logging.getLogger("omniq_trio.store")

#: Rows one purge statement deletes at most: each batch is a short
#: transaction, so purging a backlog never holds many row locks for long.
PURGE_BATCH: Final = 1_000
#: Ids of tasks whose result was asked for before they finished, remembered
#: until a wait marks them awaited; older ones are forgotten beyond this many.
MAX_AWAITING: Final = 1_000

_UNIQUE_VIOLATION: Final = "23505"
_DUPLICATE_KEY: Final = re.compile(r"Key \(id\)=\((.*)\) already exists")
_MAX_LIMIT: Final = 2**31 - 1
#: Shared by every process that opens the schema; NOTIFY wakes them; a caller's
#: transaction can enqueue (``enqueue_statement``).
_CAPABILITIES: Final = StoreCapabilities(
    shared=True, wakes_other_processes=True, transactional_enqueue=True
)
#: Times a retry looks again when the holder of its unique key changes under it.
_RETRY_ATTEMPTS: Final = 3


@final
class PostgresStore(ConnectedStore):
    """Tasks in PostgreSQL tables, shared by every process that opens the same schema.

    ``PostgresStore(dsn, schema="omniq")``; usually made for you from
    ``Settings(backend="postgres", dsn=..., postgres_schema=...)``. Opening it
    creates or upgrades the schema. Closing it closes its connections; it can
    be opened again.
    """

    def __init__(self, dsn: str, *, schema: str = "omniq") -> None:
        super().__init__(dsn, schema=schema)
        # Claims whose reply was lost: (worker_id, now). Whatever they took is
        # released before the next claim (see `claim`).
        self._unsettled_claims: list[tuple[str, float]] = []
        # Whether the last claim saw a paused or rate-limited queue: claims of
        # every queue then run `claim` at once, else `claim_plain` first.
        self._queues_controlled = False

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStore:
        """The store ``settings`` describe (``dsn``, ``postgres_schema``)."""
        if not settings.dsn:
            raise ConfigError("backend='postgres' needs a dsn (Settings.dsn or OMNIQ_DSN)")
        return cls(settings.dsn, schema=settings.postgres_schema)

    @property
    def capabilities(self) -> StoreCapabilities:
        return _CAPABILITIES

    # ---------------------------------------------------------------- producing

    async def enqueue(self, tasks: Sequence[Task]) -> list[Enqueued]:
        check_new_tasks(tasks)
        if not tasks:
            await self._nothing_to_do()
            return []
        statement, params = self._enqueue_call(tasks, self._payload("w"))
        rows = await self._enqueue_rows(statement, params, tasks)
        answers = [Enqueued(task_id, created) for task_id, created in rows]
        if any(answer.created for answer in answers):
            self._notify_changes(ENQUEUE_CHANGES)
        return answers

    def enqueue_statement(self, tasks: Sequence[Task]) -> EnqueueStatement:
        """The statement that enqueues ``tasks`` inside a transaction the caller holds
        (``enqueue(..., connection=conn)``), for its psycopg connection.

        It does what :meth:`enqueue` does (all or none, ``DuplicateTaskError`` as a
        unique violation, unique keys), returning one row ``(task_id, created)`` per
        task; the tasks exist, and idle workers everywhere are woken (NOTIFY), when
        the caller commits. No I/O; callable from any thread.
        """
        check_new_tasks(tasks)
        statement, params = self._enqueue_call(tasks, self._payload("w", mine=False))
        return EnqueueStatement(psycopg_sql(statement.sql.decode()), params)

    def _enqueue_call(self, tasks: Sequence[Task], payload: str) -> tuple[Statement, list[Param]]:
        """The statement that enqueues ``tasks`` and its parameters: a plain insert
        unless a task names a unique key."""
        *columns, firsts = enqueue_params(tasks)
        if all(task.unique_key is None for task in tasks):
            return self._sql.enqueue_keyless, [*columns, payload]
        return self._sql.enqueue, [*columns, firsts, payload]

    async def fire_schedule(self, name: str, *, slot: float, task: Task) -> Enqueued | None:
        check_new_tasks([task])
        params = [name, slot, *enqueue_params([task]), self._payload("w")]
        rows = await self._enqueue_rows(self._sql.fire_schedule, params, [task])
        if not rows:
            return None
        ((task_id, created),) = rows
        if created:
            self._notify_changes(ENQUEUE_CHANGES)
        return Enqueued(task_id, created)

    async def _enqueue_rows(
        self, statement: Statement, params: Sequence[Param], tasks: Sequence[Task]
    ) -> list[Row]:
        keys = sorted({task.unique_key for task in tasks if task.unique_key is not None})
        try:
            return await self._change(statement, params, locks=keys)
        except QueryError as exc:
            if exc.sqlstate != _UNIQUE_VIOLATION:
                raise
            match = _DUPLICATE_KEY.search(exc.detail or "")
            raise DuplicateTaskError(match.group(1) if match else tasks[0].id) from None

    async def cancel(self, task_id: str, *, at: float) -> bool:
        rows = await self._change(self._sql.cancel, [task_id, at])
        if rows:
            ((old_status, _),) = rows
            self._notify_changes(cancel_changes(was_running=old_status == TaskStatus.RUNNING))
            return True
        await self._task_state(task_id)  # raises TaskNotFoundError
        return False  # it had finished already

    async def retry(self, task_id: str, *, at: float) -> None:
        for _ in range(_RETRY_ATTEMPTS):
            try:
                if await self._change(self._sql.retry, [task_id, at]):
                    self._notify_changes(WORK_CHANGES)
                    return
            except QueryError as exc:
                if exc.sqlstate != _UNIQUE_VIOLATION:  # a holder became live meanwhile
                    raise
            status, _ = await self._task_state(task_id)
            if status != TaskStatus.FAILED:
                raise InvalidTransitionError(task_id, TaskStatus(status), TaskStatus.PENDING)
            holders = await self._read(self._sql.unique_holder, [task_id])
            if holders:
                ((key, holder),) = holders
                raise UniqueConflictError(task_id, key, holder)
            # its holder finished between the two looks: try again
        raise StoreError(f"task {task_id} could not be retried: its unique key keeps changing")

    # ----------------------------------------------------------------- working

    async def claim(
        self,
        worker_id: str,
        *,
        now: float,
        limit: int,
        lease_until: float,
        queues: Mapping[str, int] | None = None,
    ) -> list[Task]:
        if self._unsettled_claims:
            await self._settle_claims()
        names = budgets = None
        if queues is not None:
            names = array_literal(list(queues))
            budgets = array_literal([min(max(b, 0), _MAX_LIMIT) for b in queues.values()])
        params: list[Param] = [now, min(limit, _MAX_LIMIT), worker_id, lease_until]
        try:
            rows = None
            if queues is None and not self._queues_controlled:
                rows = await self._change(self._sql.claim_plain, params)
                if rows and rows[0][0] is None:  # a queue has controls; nothing was taken
                    rows = None
            if rows is None:
                rows = await self._change(self._sql.claim, [*params, names, budgets])
            if rows:
                self._queues_controlled = rows[0][-1]
        except ConnectionLostError:
            # The claim may have committed with its reply lost: the tasks it
            # took would be held by a live worker that does not know them, and
            # renewed forever. They are identified by (worker_id, started_at),
            # as a worker does not claim twice at the same instant.
            self._unsettled_claims.append((worker_id, now))
            raise
        # RETURNING gives no order: put them in claim order (the column after
        # the task's is queue_seq, the tie-breaker after priority and eta)
        claimed = sorted(((task_from_row(row), row[-2]) for row in rows), key=_claim_order)
        return [task for task, _ in claimed]

    async def _settle_claims(self) -> None:
        while self._unsettled_claims:
            worker_id, started_at = self._unsettled_claims[0]
            rows = await self._change(self._sql.release_claim, [worker_id, started_at])
            if rows:
                logger.warning(
                    "released %d task(s) claimed by %s whose claim's reply was lost",
                    len(rows),
                    worker_id,
                )
                self._notify_changes(WORK_CHANGES)
            self._unsettled_claims.pop(0)

    async def record(self, outcomes: Sequence[Outcome]) -> list[Exception | None]:
        """Record outcomes in one statement; see :meth:`Store.record`."""
        errors: list[Exception | None] = list(duplicate_outcomes(outcomes))
        if not outcomes:
            await self._nothing_to_do()
            return errors
        sent = [i for i in range(len(outcomes)) if errors[i] is None]
        # merged with the outcomes other calls record in the same round trip
        columns = record_columns([outcomes[i] for i in sent])
        rows = await self._change_items(
            self._sql.record, columns, keys={outcomes[i].task_id for i in sent}
        )
        recorded = {sent[ord_ - 1] for (ord_,) in rows}
        for i in recorded:
            self._notify_changes(outcome_changes(outcomes[i]))
        if refused := [i for i in sent if i not in recorded]:
            # say why, without letting a cancellation hide that the rest was recorded
            with trio.CancelScope(shield=True):
                rows = await self._read(
                    self._sql.task_states, [array_literal([outcomes[i].task_id for i in refused])]
                )
            states = {task_id: (status, holder) for task_id, status, holder in rows}
            for i in refused:
                outcome = outcomes[i]
                state = states.get(outcome.task_id)
                errors[i] = (
                    TaskNotFoundError(outcome.task_id)
                    if state is None
                    else lease_lost(outcome.task_id, outcome.worker_id, *state)
                )
        return errors

    async def release(self, task_ids: Sequence[str], *, worker_id: str) -> list[str]:
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            await self._nothing_to_do()
            return []
        rows = await self._change(self._sql.release, [array_literal(ids), worker_id])
        if rows:
            self._notify_changes(WORK_CHANGES)
        return [row[0] for row in rows]

    async def renew(self, worker_id: str, *, lease_until: float) -> frozenset[str]:
        await self._change(self._sql.renew, [worker_id, lease_until])
        return frozenset(row[0] for row in await self._read(self._sql.held, [worker_id]))

    async def reclaim_expired(self, *, now: float) -> Reclaimed:
        expired = [task_from_row(row) for row in await self._read(self._sql.expired, [now])]
        if not expired:
            return Reclaimed()
        errors = [error_json(worker_lost_error(task, now=now)) for task in expired]
        params: list[Param] = [
            array_literal([task.id for task in expired]),
            array_literal([task.worker_id for task in expired]),
            array_literal([task.lost_runs for task in expired]),
            array_literal(errors),
            now,
        ]
        rows = await self._change(self._sql.reclaim, params)
        requeued = tuple(task_id for task_id, failed in rows if not failed)
        failed = tuple(task_id for task_id, failed in rows if failed)
        self._notify_changes(reclaim_changes(requeued=bool(requeued), failed=bool(failed)))
        return Reclaimed(requeued, failed)

    async def purge(
        self, *, finished_before: float, failed_before: float, limit: int | None = None
    ) -> int:
        """Forget finished tasks, in batches of :data:`PURGE_BATCH`, then fold the
        count changes appended since the last purge (see ``task_counts``).

        Each batch is its own transaction; cancelled between batches, it
        raises having forgotten whole batches, as a purge with a lower
        ``limit`` would have.
        """
        pool = self._open_pool()
        purged = 0
        while limit is None or purged < limit:
            batch = PURGE_BATCH if limit is None else min(PURGE_BATCH, limit - purged)
            # not through the group commit: a long delete would hold up the changes behind it
            params = [finished_before, failed_before, batch]
            count = (await pool.execute(self._sql.purge, params)).count
            purged += count
            if count < batch:
                break
        await self._fold_counts()
        return purged

    async def _fold_counts(self) -> None:
        await self._open_pool().run([(self._sql.fold_counts, []), (self._sql.drop_zero_counts, [])])

    async def set_progress(self, task_id: str, *, worker_id: str, progress: Progress) -> None:
        params = [task_id, worker_id, progress_json(progress)]
        if not await self._change(self._sql.set_progress, params):
            status, holder = await self._task_state(task_id)  # raises TaskNotFoundError
            raise lease_lost(task_id, worker_id, status, holder)

    # ------------------------------------------------------------ queues, schedules

    async def pause_queue(self, name: str, *, paused: bool) -> None:
        await self._admin(self._sql.pause_queue, [name, paused], name)
        if not paused:
            self._notify_changes(WORK_CHANGES)

    async def set_queue_limit(self, name: str, limit: RateLimit | None) -> None:
        if limit is None:
            await self._admin(self._sql.clear_queue_limit, [name], name)
        else:
            await self._admin(self._sql.set_queue_limit, [name, limit.max_starts, limit.per], name)
        self._notify_changes(WORK_CHANGES)

    async def _admin(self, statement: Statement, params: Sequence[Param], queue: str) -> None:
        """A change to a queue's controls, then its row dropped if it controls nothing:
        one transaction of its own (operators' changes are rare)."""
        await self._open_pool().run([(statement, params), (self._sql.drop_idle_queue, [queue])])

    async def list_queues(self) -> list[QueueInfo]:
        counts, controls = await self._open_pool().run(
            [(self._sql.counts, []), (self._sql.queue_controls, [])]
        )
        return queue_infos(counts.rows, controls.rows)

    async def register_schedules(self, schedules: Sequence[ScheduleInfo]) -> None:
        if not schedules:
            await self._nothing_to_do()
            return
        await self._change(self._sql.register_schedules, schedule_params(schedules))

    async def list_schedules(self) -> list[ScheduleInfo]:
        return [schedule_from_row(row) for row in await self._read(self._sql.list_schedules)]

    async def register_worker(self, info: WorkerInfo) -> None:
        await self._change(self._sql.register_worker, worker_params(info))

    async def unregister_worker(self, worker_id: str) -> None:
        await self._change(self._sql.unregister_worker, [worker_id])

    async def list_workers(self, *, now: float) -> list[WorkerInfo]:
        return [worker_from_row(row) for row in await self._read(self._sql.list_workers, [now])]

    # ---------------------------------------------------------------- reading

    async def get_task(self, task_id: str) -> Task:
        rows = await self._read(self._sql.get_task, [task_id])
        if not rows:
            raise TaskNotFoundError(task_id)
        return task_from_row(rows[0])

    async def get_result(self, task_id: str) -> TaskResult | None:
        rows = await self._read(self._sql.get_result, [task_id])
        if not rows:
            raise TaskNotFoundError(task_id)
        result = result_from_row(task_id, rows[0])
        if result is None:
            self._awaiting[task_id] = None
            if len(self._awaiting) > MAX_AWAITING:
                del self._awaiting[next(iter(self._awaiting))]
        return result

    async def list_tasks(
        self,
        *,
        status: TaskStatus | frozenset[TaskStatus] | None = None,
        queue: str | None = None,
        func: str | None = None,
        id_prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> TaskPage:
        runs = listing(
            status=status,
            queue=queue,
            func=func,
            id_prefix=id_prefix,
            limit=limit,
            cursor=cursor,
            newest_first=newest_first,
        )
        if not runs:
            await self._nothing_to_do()
            return TaskPage([])
        statement = self._sql.list_newest if newest_first else self._sql.list
        replies = await self._open_pool().run(
            [
                (self._sql.custom_plans, []),
                *((statement, params) for params in runs),
                (self._sql.generic_plans, []),
            ]
        )
        rows, next_cursor = merge_pages(
            (reply.rows for reply in replies[1:-1]),
            limit=limit,
            cursor=cursor,
            newest_first=newest_first,
        )
        return TaskPage([task_from_row(row) for row in rows], next_cursor)

    async def stats(self, *, now: float) -> StoreStats:
        with contextlib.suppress(QueryError):  # a role that may not fold reads the changes
            await self._fold_counts()
        counts, etas = await self._open_pool().run(
            [(self._sql.counts, []), (self._sql.queue_etas, [None])]
        )
        totals, queues = count_maps(counts.rows)
        earliest = min((eta for _, eta, *_ in etas.rows), default=None)
        due = earliest if earliest is not None and earliest <= now else None
        return StoreStats(totals, queues, due)

    async def next_due(self, *, now: float, queues: Collection[str] | None = None) -> float | None:
        names = None if queues is None else array_literal(list(queues))
        return earliest_due(await self._read(self._sql.queue_etas, [names]), queues)


def _claim_order(claimed: tuple[Task, int]) -> tuple[int, float, int]:
    task, queue_seq = claimed
    return -task.priority, task.eta, queue_seq
