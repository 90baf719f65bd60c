"""``ConnectionPool``: a few connections, each lent to one round trip at a time.

A round trip that has started runs shielded from cancellation to its end, so
a cancelled caller never leaves a statement half-sent or a reply unread on a
connection that the next caller would then get. Each statement omniq_trio
runs is a transaction of its own (autocommit), so a connection between round
trips is never inside a transaction; one that is (or that failed) is closed,
never lent again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar, final

import attrs
import trio

from ...errors import StoreClosedError
from ._wire import Param, PgConnection, Row, Statement

__all__ = ["ConnectionPool"]

R = TypeVar("R")

#: Connections a store opens at most. They are opened on demand, so a process
#: holds as many as it has had round trips in flight at once; eight covers a
#: poller, a lease keeper and several executors, and a bound keeps many worker
#: processes within the server's ``max_connections`` (100 by default).
MAX_CONNECTIONS: Final = 8


@final
@attrs.define(eq=False)
class ConnectionPool:
    """Lends connections to ``conninfo``, opening them on demand."""

    _conninfo: str
    _slots: trio.Semaphore = attrs.field(factory=lambda: trio.Semaphore(MAX_CONNECTIONS))
    _idle: list[PgConnection] = attrs.field(factory=list)
    _closed: bool = False

    async def execute(self, statement: Statement, params: Sequence[Param] = ()) -> list[Row]:
        """Run ``statement`` (atomically: see the module docstring) and return its rows."""
        return await self.run(lambda conn: conn.execute(statement, params))

    async def execute_count(self, statement: Statement, params: Sequence[Param] = ()) -> int:
        """Run ``statement`` and return how many rows it changed."""
        return await self.run(lambda conn: conn.execute_count(statement, params))

    async def run(self, round_trip: Callable[[PgConnection], Awaitable[R]]) -> R:
        """Run ``round_trip`` on a connection of the pool, shielded once it has one.

        Waiting for a free connection, or for a new one to open, can be
        cancelled (nothing has been sent yet).
        """
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            if conn is None:
                self._check_open()
                conn = await PgConnection.connect(self._conninfo)
            try:
                with trio.CancelScope(shield=True):
                    result = await round_trip(conn)
            finally:
                # A refused statement (QueryError) leaves the connection idle
                # and usable; a lost one, or one caught mid-reply, is not.
                if conn.idle and not self._closed:
                    self._idle.append(conn)
                else:
                    conn.close()
        return result

    def close(self) -> None:
        """Close idle connections now, busy ones when their round trip ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(
                "the PostgreSQL store is closed; open it (async with store:) first"
            )
