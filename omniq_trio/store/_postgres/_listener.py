"""``Listener``: the connection that LISTENs for changes other processes make.

Every changing statement ends with ``pg_notify(channel, '<letters>:<token>')``,
committed with it: ``w`` when a task may have become claimable, ``f`` when one
someone awaits finished, ``c`` when a running task was cancelled. The listener
turns notifications from other stores into calls of ``on_change``; a store
ignores its own (its changes were announced locally when they returned).

It connects on first use (a process that only enqueues never listens, so no
notifications pile up for it) and reads only when asked: while someone waits
(:meth:`pump`), and whenever a waiter reads a change version (:meth:`drain`),
which keeps a busy worker's backlog small. A lost connection is logged and
tried again after :data:`RETRY_AFTER`; meanwhile waiters fall back to polling.
A (re)connection reports every kind of change, since any may have been
missed while nobody listened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, final

import attrs
import trio

from ...errors import StoreError
from ._wire import PgConnection

__all__ = ["Listener"]

logger = logging.getLogger("omniq_trio.store")

#: Seconds (trio time) between attempts to restore a lost listening connection.
RETRY_AFTER: Final = 5.0


@final
@attrs.define(eq=False)
class Listener:
    """Reads notifications on ``channel`` and reports each change letter to ``on_change``."""

    _conninfo: str
    _channel: str
    _token: str
    #: called with a change letter (``"w"``, ``"f"``, ``"c"``) for each change another store made
    _on_change: Callable[[str], None]
    _all_letters: str
    _conn: PgConnection | None = None
    _lock: trio.Lock = attrs.field(factory=trio.Lock)
    _retry_at: float = -float("inf")
    _closed: bool = False

    def drain(self) -> None:
        """Report the notifications that have already arrived, without waiting."""
        conn = self._conn
        if conn is None or self._lock.locked():
            return  # not listening, or a pump is reading right now
        try:
            self._report(conn)
        except StoreError as exc:
            self._lost(exc)

    async def pump(self) -> None:
        """Report notifications as they arrive, until cancelled.

        One pump reads at a time; others wait their turn. Never raises for a
        connection problem: it logs it and waits to be cancelled.
        """
        async with self._lock:
            while True:
                conn = self._conn
                if conn is None:
                    conn = await self._connect()
                    if conn is None:
                        await trio.sleep_forever()
                try:
                    await conn.wait_readable()
                    self._report(conn)
                except StoreError as exc:
                    self._lost(exc)
                except trio.ClosedResourceError:
                    pass  # the store closed it: the loop finds it gone

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _connect(self) -> PgConnection | None:
        if self._closed or trio.current_time() < self._retry_at:
            return None
        try:
            conn = await PgConnection.connect(self._conninfo)
            try:
                with trio.CancelScope(shield=True):
                    await conn.run_script(f'LISTEN "{self._channel}"')
            except BaseException:
                conn.close()
                raise
        except StoreError as exc:
            self._lost(exc)
            return None
        if self._closed:  # the store closed while we connected
            conn.close()
            return None
        self._conn = conn
        for letter in self._all_letters:
            self._on_change(letter)
        return conn

    def _report(self, conn: PgConnection) -> None:
        suffix = ":" + self._token
        for notify in conn.notifies():
            payload = notify.extra.decode()
            if not payload.endswith(suffix):
                for letter in payload.partition(":")[0]:
                    self._on_change(letter)

    def _lost(self, exc: StoreError) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._retry_at = trio.current_time() + RETRY_AFTER
        logger.warning(
            "not listening for changes from other processes (%s); polling until "
            "the connection is back",
            exc,
        )
