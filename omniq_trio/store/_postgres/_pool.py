"""``ConnectionPool``: a few connections, each lent to one round trip at a time.

A round trip that has started runs shielded from cancellation to its end, so
a cancelled caller never leaves a statement half-sent or a reply unread on a
connection that the next caller would then get. Every round trip is a whole
transaction (autocommit, or a pipeline ending in a sync), so a connection
between round trips is never inside a transaction; one that is, or that
failed, is closed and never lent again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final, final

import attrs
import trio

from ...errors import StoreClosedError
from ._wire import Call, Param, PgConnection, Reply, Statement

__all__ = ["ConnectionPool"]

#: Connections a store opens at most. They are opened on demand, so a process
#: holds as many as it has had round trips in flight at once; eight covers the
#: writer, a poller's reads, a lease keeper and some readers, and a bound keeps
#: many worker processes within the server's ``max_connections`` (100 by default).
MAX_CONNECTIONS: Final = 8


@final
@attrs.define(eq=False)
class ConnectionPool:
    """Lends connections to ``conninfo`` with ``statements`` prepared, opening them on demand."""

    _conninfo: str
    _statements: Sequence[Statement]
    _slots: trio.Semaphore = attrs.field(factory=lambda: trio.Semaphore(MAX_CONNECTIONS))
    _idle: list[PgConnection] = attrs.field(factory=list)
    _closed: bool = False

    async def execute(self, statement: Statement, params: Sequence[Param] = ()) -> Reply:
        """Run ``statement`` in a transaction of its own."""
        (reply,) = await self.run([(statement, params)])
        return reply

    async def run(self, calls: Sequence[Call]) -> list[Reply]:
        """Run ``calls`` in one transaction, in one round trip, shielded once it starts."""
        async with self.lend() as conn:
            with trio.CancelScope(shield=True):
                replies = await conn.run(calls)
        return replies

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[PgConnection]:
        """A connection of the pool, for the block; run round trips on it shielded.

        Waiting for a free connection, or for a new one to open, can be
        cancelled: nothing has been sent yet.
        """
        async with self._slots:
            self._check_open()
            conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = await PgConnection.connect(self._conninfo, self._statements)
            try:
                yield conn
            finally:
                # A refused statement (QueryError) leaves the connection idle
                # and usable; a lost one, or one caught mid-reply, is not.
                if conn.idle and not self._closed:
                    self._idle.append(conn)
                else:
                    lost = not conn.open
                    conn.close()
                    if lost:
                        # What broke it (a server restart, an administrator
                        # terminating sessions) most likely broke the idle
                        # ones too: open fresh ones rather than fail on each.
                        self._close_idle()

    def close(self) -> None:
        """Close idle connections now, busy ones when their round trip ends."""
        self._closed = True
        self._close_idle()

    def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(
                "the PostgreSQL store is closed; open it (async with store:) first"
            )
