"""``PostgresStore``: the Store contract on PostgreSQL, for workers on many machines."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from typing import Final, final

import trio

from ..._clock import DEFAULT_CLOCK
from ...config import Settings
from ...errors import (
    ConfigError,
    DuplicateTaskError,
    InvalidTransitionError,
    StoreClosedError,
    StoreError,
    TaskNotFoundError,
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
from .._base import Change, Outcome, OutcomeKind, Reclaimed, Store, StoreCapabilities, StoreStats
from .._rules import check_new_tasks, duplicate_outcomes, lease_lost
from ._listener import Listener
from ._pool import ConnectionPool
from ._rows import enqueue_params, record_params, result_from_row, task_from_row
from ._schema import migrate
from ._sql import CHANGE_CODES, Statements
from ._wire import (
    ConnectionLostError,
    Param,
    PgConnection,
    QueryError,
    Row,
    Statement,
    array_literal,
    conninfo_with_defaults,
)
from ._writer import GroupCommit

__all__ = ["PostgresStore"]

logger = logging.getLogger("omniq_trio.store")

#: Rows one purge statement deletes at most: each batch is a short
#: transaction, so purging a backlog never holds many row locks for long.
PURGE_BATCH: Final = 1_000
#: Seconds of difference between this machine's clock and the server's above
#: which opening the store logs a warning (see "Time" in the package docstring).
CLOCK_SKEW_WARNING: Final = 1.0
#: Ids of tasks whose result was asked for before they finished, remembered
#: until a wait marks them awaited; older ones are forgotten beyond this many.
MAX_AWAITING: Final = 1_000

_UNIQUE_VIOLATION: Final = "23505"
_DUPLICATE_KEY: Final = re.compile(r"Key \(id\)=\((.*)\) already exists")
_MAX_LIMIT: Final = 2**31 - 1
_CHANGES: Final = {
    CHANGE_CODES[change.value]: change for change in Change if change.value in CHANGE_CODES
}
#: Shared by every process that opens the schema; NOTIFY wakes them.
_CAPABILITIES: Final = StoreCapabilities(shared=True, wakes_other_processes=True)


def _not_yet(what: str) -> NotImplementedError:
    return NotImplementedError(f"the PostgreSQL store does not support {what} yet")


@final
class PostgresStore(Store):
    """Tasks in PostgreSQL tables, shared by every process that opens the same schema.

    ``PostgresStore(dsn, schema="omniq")``; usually made for you from
    ``Settings(backend="postgres", dsn=..., postgres_schema=...)``. Opening it
    creates or upgrades the schema. Closing it closes its connections; it can
    be opened again.
    """

    def __init__(self, dsn: str, *, schema: str = "omniq") -> None:
        super().__init__()
        if not (isinstance(schema, str) and schema.isidentifier() and schema.lower() == schema):
            raise ConfigError(
                f"postgres_schema must be a lower-case identifier (letters, digits, _), "
                f"got {schema!r}"
            )
        self._dsn = dsn
        self._schema = schema
        # LISTEN channels are identifiers: at most 63 bytes
        channel = f"omniq_trio:{schema}"[:63]
        self._channel = channel
        self._token = secrets.token_hex(4)
        self._sql = Statements.build(schema, channel, self._token)
        self._pool: ConnectionPool | None = None
        self._writer: GroupCommit | None = None
        self._listener: Listener | None = None
        # ids whose get_result found no result, to mark awaited when waited for
        self._awaiting: dict[str, None] = {}
        self._open_lock = trio.Lock()
        self._clock_skew: float | None = None
        # Claims whose reply was lost: (worker_id, now). Whatever they took is
        # released before the next claim (see `claim`).
        self._unsettled_claims: list[tuple[str, float]] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresStore:
        """The store ``settings`` describe (``dsn``, ``postgres_schema``)."""
        if not settings.dsn:
            raise ConfigError("backend='postgres' needs a dsn (Settings.dsn or OMNIQ_DSN)")
        return cls(settings.dsn, schema=settings.postgres_schema)

    @property
    def capabilities(self) -> StoreCapabilities:
        return _CAPABILITIES

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's tables."""
        return self._schema

    @property
    def clock_skew(self) -> float | None:
        """Seconds the server's clock was ahead of this machine's when the store opened."""
        return self._clock_skew

    # ----------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        async with self._open_lock:
            if self._pool is not None:
                return
            conninfo = conninfo_with_defaults(self._dsn)
            conn = await PgConnection.connect(conninfo)
            try:
                with trio.CancelScope(shield=True):
                    await migrate(conn, self._schema)
            finally:
                conn.close()
            pool = ConnectionPool(conninfo, self._sql.all())
            try:
                await self._measure_clock_skew(pool)
            except BaseException:
                pool.close()
                raise
            self._pool = pool
            self._writer = GroupCommit(pool)
            self._listener = Listener(
                conninfo, self._channel, self._token, self._on_remote_change, "".join(_CHANGES)
            )

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        listener, self._listener = self._listener, None
        self._writer = None
        if pool is not None:
            pool.close()
        if listener is not None:
            listener.close()
        await trio.lowlevel.checkpoint()

    async def _measure_clock_skew(self, pool: ConnectionPool) -> None:
        before = DEFAULT_CLOCK.now()
        ((server_time,),) = (await pool.execute(self._sql.server_time)).rows
        here = (before + DEFAULT_CLOCK.now()) / 2
        self._clock_skew = skew = server_time - here
        if abs(skew) > CLOCK_SKEW_WARNING:
            logger.warning(
                "this machine's clock is %.1fs %s the PostgreSQL server's; etas and leases "
                "compare times from different machines, so keep their clocks in sync (NTP)",
                abs(skew),
                "behind" if skew > 0 else "ahead of",
            )

    async def _change(self, statement: Statement, params: Sequence[Param]) -> list[Row]:
        """Run a changing statement (through the group commit)."""
        if self._writer is None:
            raise _closed()
        return (await self._writer.execute(statement, params)).rows

    async def _read(self, statement: Statement, params: Sequence[Param] = ()) -> list[Row]:
        if self._pool is None:
            raise _closed()
        return (await self._pool.execute(statement, params)).rows

    # ---------------------------------------------------------------- producing

    async def enqueue(self, tasks: Sequence[Task]) -> list[Enqueued]:
        check_new_tasks(tasks)
        if not tasks:
            await trio.lowlevel.checkpoint()
            return []
        try:
            await self._change(self._sql.enqueue, enqueue_params(tasks))
        except QueryError as exc:
            if exc.sqlstate != _UNIQUE_VIOLATION:
                raise
            match = _DUPLICATE_KEY.search(exc.detail or "")
            raise DuplicateTaskError(match.group(1) if match else tasks[0].id) from None
        self._notify(Change.WORK)
        return [Enqueued(task.id, True) for task in tasks]

    async def cancel(self, task_id: str, *, at: float) -> bool:
        if await self._change(self._sql.cancel, [task_id, at]):
            self._notify(Change.FINISHED)
            return True
        await self._task_state(task_id)  # raises TaskNotFoundError
        return False  # it had finished already

    async def retry(self, task_id: str, *, at: float) -> None:
        if not await self._change(self._sql.retry, [task_id, at]):
            status, _ = await self._task_state(task_id)
            raise InvalidTransitionError(task_id, TaskStatus(status), TaskStatus.PENDING)
        self._notify(Change.WORK)

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
        if queues is not None:
            raise _not_yet("claiming from named queues")
        if self._unsettled_claims:
            await self._settle_claims()
        try:
            rows = await self._change(
                self._sql.claim, [now, min(limit, _MAX_LIMIT), worker_id, lease_until]
            )
        except ConnectionLostError:
            # The claim may have committed with its reply lost: the tasks it
            # took would be held by a live worker that does not know them, and
            # renewed forever. They are identified by (worker_id, started_at),
            # as a worker does not claim twice at the same instant.
            self._unsettled_claims.append((worker_id, now))
            raise
        # RETURNING gives no order: put them in claim order (the last column
        # is queue_seq, the tie-breaker after priority and eta)
        claimed = sorted(((task_from_row(row), row[-1]) for row in rows), key=_claim_order)
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
                self._notify(Change.WORK)
            self._unsettled_claims.pop(0)

    async def record(self, outcomes: Sequence[Outcome]) -> list[Exception | None]:
        """Record outcomes in one statement; see :meth:`Store.record`."""
        errors: list[Exception | None] = list(duplicate_outcomes(outcomes))
        if not outcomes:
            await trio.lowlevel.checkpoint()
            return errors
        sent = [i for i in range(len(outcomes)) if errors[i] is None]
        params = record_params([outcomes[i] for i in sent])
        recorded = {sent[ord_ - 1] for (ord_,) in await self._change(self._sql.record, params)}
        done = [outcomes[i] for i in recorded]
        if any(o.kind is not OutcomeKind.RETRY for o in done):
            self._notify(Change.FINISHED)
        if any(o.kind in (OutcomeKind.RETRY, OutcomeKind.NEXT_RUN) for o in done):
            self._notify(Change.WORK)
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
            await trio.lowlevel.checkpoint()
            return []
        rows = await self._change(self._sql.release, [array_literal(ids), worker_id])
        if rows:
            self._notify(Change.WORK)
        return [row[0] for row in rows]

    async def renew(self, worker_id: str, *, lease_until: float) -> frozenset[str]:
        await self._change(self._sql.renew, [worker_id, lease_until])
        return frozenset(row[0] for row in await self._read(self._sql.held, [worker_id]))

    async def reclaim_expired(self, *, now: float) -> Reclaimed:
        rows = await self._change(self._sql.reclaim_expired, [now])
        if rows:
            self._notify(Change.WORK)
        return Reclaimed(tuple(row[0] for row in rows))

    async def purge(
        self, *, finished_before: float, failed_before: float, limit: int | None = None
    ) -> int:
        """Forget finished tasks, in batches of :data:`PURGE_BATCH`.

        Each batch is its own transaction; cancelled between batches, it
        raises having forgotten whole batches, as a purge with a lower
        ``limit`` would have.
        """
        if self._pool is None:
            raise _closed()
        purged = 0
        while limit is None or purged < limit:
            batch = PURGE_BATCH if limit is None else min(PURGE_BATCH, limit - purged)
            # not through the group commit: a long delete would hold up the changes behind it
            # until the store knows failed_ttl: nothing younger than either horizon goes
            before = min(finished_before, failed_before)
            count = (await self._pool.execute(self._sql.purge, [before, batch])).count
            purged += count
            if count < batch:
                break
        return purged

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
        if isinstance(status, frozenset):
            (status,) = status if len(status) == 1 else (None,)
        if (queue, func, id_prefix, cursor) != (None,) * 4 or newest_first:
            raise _not_yet("filtered or paginated listings")
        if status is None:
            rows = await self._read(self._sql.list_all, [limit])
        else:
            rows = await self._read(self._sql.list_status, [status.value, limit])
        return TaskPage([task_from_row(row) for row in rows])

    async def stats(self, *, now: float) -> StoreStats:
        counts = dict.fromkeys(TaskStatus, 0)
        for status, count, _ in await self._read(self._sql.stats):
            counts[TaskStatus(status)] = count
        return StoreStats(counts)

    async def next_due(self, *, now: float, queues: Collection[str] | None = None) -> float | None:
        if queues is not None:
            raise _not_yet("named queues")
        ((eta,),) = await self._read(self._sql.next_due)
        return eta  # type: ignore[no-any-return]

    # ------------------------------------------------- not yet on PostgreSQL

    async def set_progress(self, task_id: str, *, worker_id: str, progress: Progress) -> None:
        raise _not_yet("progress")

    async def pause_queue(self, name: str, *, paused: bool) -> None:
        raise _not_yet("pausing queues")

    async def set_queue_limit(self, name: str, limit: RateLimit | None) -> None:
        raise _not_yet("queue rate limits")

    async def list_queues(self) -> list[QueueInfo]:
        raise _not_yet("listing queues")

    async def fire_schedule(self, name: str, *, slot: float, task: Task) -> Enqueued | None:
        raise _not_yet("schedules")

    async def register_schedules(self, schedules: Sequence[ScheduleInfo]) -> None:
        raise _not_yet("schedules")

    async def list_schedules(self) -> list[ScheduleInfo]:
        raise _not_yet("schedules")

    async def register_worker(self, info: WorkerInfo) -> None:
        raise _not_yet("the worker registry")

    async def unregister_worker(self, worker_id: str) -> None:
        raise _not_yet("the worker registry")

    async def list_workers(self, *, now: float) -> list[WorkerInfo]:
        raise _not_yet("the worker registry")

    # ---------------------------------------------------------- notifications

    def change_version(self, change: Change) -> int:
        # catch up with what other processes announced, so that a change made
        # before this read is not waited for afterwards
        if self._listener is not None:
            self._listener.drain()
        return super().change_version(change)

    async def wait_for_change(self, change: Change, seen: int, deadline: float) -> None:
        """Like :meth:`Store.wait_for_change`, also woken by other processes' changes
        (LISTEN/NOTIFY). Never raises for a connection problem: it waits until
        ``deadline`` instead, and listens again later."""
        listener = self._listener
        if listener is None or self.change_version(change) != seen:
            await super().wait_for_change(change, seen, deadline)
            return
        with trio.move_on_at(deadline):
            if change is Change.FINISHED and self._awaiting:
                await self._mark_awaited()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listener.pump)
                await super().wait_for_change(change, seen, deadline)
                nursery.cancel_scope.cancel()

    async def _task_state(self, task_id: str) -> tuple[str, str | None]:
        """(status, worker_id) of a task; raises TaskNotFoundError."""
        rows = await self._read(self._sql.task_state, [task_id])
        if not rows:
            raise TaskNotFoundError(task_id)
        status, holder = rows[0]
        return status, holder

    async def _mark_awaited(self) -> None:
        """Have the tasks whose results are about to be waited for announce their finish."""
        ids, self._awaiting = list(self._awaiting), {}
        try:
            finished = await self._change(self._sql.await_results, [array_literal(ids)])
        except StoreError as exc:
            logger.debug("could not mark results as awaited (%s); polling for them", exc)
            return
        if finished:  # finished before they were marked: no notification will come
            self._notify(Change.FINISHED)

    def _on_remote_change(self, letter: str) -> None:
        change = _CHANGES.get(letter)
        if change is not None:
            self._notify(change)


def _closed() -> StoreClosedError:
    return StoreClosedError("the PostgreSQL store is closed; open it (async with store:) first")


def _claim_order(claimed: tuple[Task, int]) -> tuple[int, float, int]:
    task, queue_seq = claimed
    return -task.priority, task.eta, queue_seq
