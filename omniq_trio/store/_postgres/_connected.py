"""``ConnectedStore``: what ``PostgresStore`` stands on: opening (and upgrading) the
schema, the connections, the group commit, reads, and notifications from other
processes (LISTEN), including those of the results someone awaits."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence, Set
from typing import Final

import trio

from ..._clock import DEFAULT_CLOCK
from ...errors import ConfigError, StoreClosedError, StoreError, TaskNotFoundError
from .._base import Change, Store
from ._listener import Listener
from ._pool import ConnectionPool
from ._schema import migrate
from ._sql import CHANGE_CODES, Statements
from ._wire import Param, PgConnection, Row, Statement, array_literal, conninfo_with_defaults
from ._writer import GroupCommit

__all__ = ["ConnectedStore", "closed"]

logger = logging.getLogger("omniq_trio.store")

#: Seconds of difference between this machine's clock and the server's above
#: which opening the store logs a warning (see "Time" in the package docstring).
CLOCK_SKEW_WARNING: Final = 1.0

_CHANGES: Final = {
    CHANGE_CODES[change.value]: change for change in Change if change.value in CHANGE_CODES
}


class ConnectedStore(Store):
    """A store on the tables of one PostgreSQL schema; the verbs are ``PostgresStore``'s."""

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
            self._writer = GroupCommit(pool, self._sql.lock_unique_keys)
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

    async def _change(
        self, statement: Statement, params: Sequence[Param], *, locks: Sequence[str] = ()
    ) -> list[Row]:
        """Run a changing statement (through the group commit); ``locks``: the unique
        keys whose locks it takes."""
        if self._writer is None:
            raise closed()
        return (await self._writer.execute(statement, params, locks=locks)).rows

    async def _change_items(
        self, statement: Statement, columns: Sequence[Sequence[Param]], *, keys: Set[str]
    ) -> list[Row]:
        """Run a changing statement over items (``GroupCommit.execute_items``)."""
        if self._writer is None:
            raise closed()
        return (await self._writer.execute_items(statement, columns, keys=keys)).rows

    async def _read(self, statement: Statement, params: Sequence[Param] = ()) -> list[Row]:
        return (await self._open_pool().execute(statement, params)).rows

    def _open_pool(self) -> ConnectionPool:
        if self._pool is None:
            raise closed()
        return self._pool

    async def _nothing_to_do(self) -> None:
        """A verb with nothing to change still checkpoints, and refuses when closed."""
        await trio.lowlevel.checkpoint()
        self._open_pool()

    def _payload(self, letters: str, *, mine: bool = True) -> str:
        """A notification's payload; ``mine=False``: one this store reacts to as well
        (sent from a caller's connection, which this store does not see commit)."""
        return f"{letters}:{self._token if mine else ''}"

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


def closed() -> StoreClosedError:
    return StoreClosedError("the PostgreSQL store is closed; open it (async with store:) first")
