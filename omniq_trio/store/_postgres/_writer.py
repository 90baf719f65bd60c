"""``GroupCommit``: changes made at the same time share one transaction.

Each change a store makes is one statement, and the cost of a statement on
this class of machine is mostly its commit (a WAL flush) and the round trip.
Executors finishing together, a poller claiming, producers enqueueing one at
a time: their statements are queued, and whoever finds fewer than
:data:`MAX_IN_FLIGHT` round trips in flight sends everything queued as one
pipeline in one transaction (one commit, one round trip); the others wait
for their replies. Nobody waits for a timer: a lone change goes at once.

If the shared transaction fails on a statement (a duplicate id, or a
deadlock PostgreSQL broke), it rolled back whole, and each statement runs
again alone, so one caller's error is never another's. A lost connection
fails them all with :class:`ConnectionLostError`: their outcome is unknown.

Enqueues that name unique keys take a transaction-level lock per key. A
shared transaction takes every key lock its statements need first, in one
statement (``lock_statement``), in the order every transaction takes them,
while it holds no other lock: two transactions never wait for each other's
keys.

Outcomes recorded together also share one statement: a caller that gives
its parameters as items (:meth:`GroupCommit.execute_items`, one array per
column) has them run with those of every call of the same statement in the
round trip, unless the two name the same key (the same task): one statement
over all their items, costing the server less than one per call, whose rows
are handed back to each caller by item. Calls that were queued together were
concurrent, so the order they run in is any.

Cancellation: a queued statement is withdrawn if its caller is cancelled
before it is sent; once sent, its caller waits for the reply, shielded.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence, Set
from typing import Final, final

import attrs
import trio

from ...errors import StoreError
from ._pool import ConnectionPool
from ._wire import (
    Call,
    ConnectionLostError,
    Param,
    PgConnection,
    QueryError,
    Reply,
    Row,
    Statement,
    array_literal,
)

__all__ = ["GroupCommit"]


#: Round trips (transactions) in flight at once; changes that come while they
#: are wait and go together in the next one. One makes the fewest commits. On
#: the 2-core test machine, where the server and the workers share the CPU,
#: allowing two (so that a claim and a batch of outcomes could overlap) made
#: more commits and was no faster; a server with cores to spare may differ.
MAX_IN_FLIGHT: Final = 1


@final
@attrs.define(eq=False)
class _Request:
    statement: Statement
    params: Sequence[Param]
    #: unique keys whose locks the statement takes
    locks: Sequence[str]
    #: the items ``params`` holds as arrays, one list per column (execute_items)
    columns: Sequence[Sequence[Param]] | None = None
    #: what its items change; calls that share one are never merged
    keys: Set[str] = frozenset()
    #: the caller's wait, shielded once the request is sent
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    sent: bool = False
    done: trio.Event = attrs.field(factory=trio.Event)
    reply: Reply | None = None
    error: StoreError | None = None


@final
@attrs.define(eq=False)
class GroupCommit:
    """Runs statements through ``pool``, those queued together in one transaction."""

    _pool: ConnectionPool
    #: takes the locks of the unique keys in its one parameter (a text array)
    _lock_statement: Statement
    _queue: list[_Request] = attrs.field(factory=list)
    _in_flight: int = 0
    #: set (and replaced) whenever a round trip ends
    _ended: trio.Event = attrs.field(factory=trio.Event)

    async def execute(
        self, statement: Statement, params: Sequence[Param] = (), *, locks: Sequence[str] = ()
    ) -> Reply:
        """Run ``statement``, in a transaction shared with statements queued alongside;
        ``locks``: the unique keys it locks."""
        return await self._submit(_Request(statement, params, locks))

    async def execute_items(
        self, statement: Statement, columns: Sequence[Sequence[Param]], *, keys: Set[str]
    ) -> Reply:
        """Run ``statement`` with one array parameter per column of ``columns`` (each
        holding one value per item), merged with calls of the same statement queued
        alongside whose ``keys`` are not its own into one run over all their items.

        The statement must answer rows whose first column is the 1-based index of
        an item; the reply holds this call's rows, numbered by its own items.
        """
        params = [array_literal(column) for column in columns]
        return await self._submit(_Request(statement, params, (), columns, keys))

    async def _submit(self, request: _Request) -> Reply:
        self._queue.append(request)
        try:
            with request.scope:
                while not request.sent:
                    if self._in_flight < MAX_IN_FLIGHT:
                        await self._send_queued()
                    else:
                        await self._ended.wait()
                await request.done.wait()
        finally:
            if not request.sent:  # cancelled (or failed to connect) while queued
                self._queue.remove(request)
        if request.error is not None:
            raise request.error
        assert request.reply is not None  # set with `done`, or `error` is
        return request.reply

    async def _send_queued(self) -> None:
        self._in_flight += 1
        batch: list[_Request] = []
        try:
            async with self._pool.lend() as conn:
                batch, self._queue = self._queue, []
                if not batch:
                    return  # taken by another round trip while we got a connection
                for request in batch:
                    request.sent = True
                    request.scope.shield = True
                if await self._run(conn, batch):
                    return
            # The shared transaction rolled back on one statement's error: run
            # each alone (on a connection of their own), so the error is its own.
            for request in batch:
                try:
                    request.reply = await self._pool.execute(request.statement, request.params)
                except StoreError as alone:
                    request.error = alone
        finally:
            self._in_flight -= 1
            self._ended.set()
            self._ended = trio.Event()
            for request in batch:
                if request.reply is None and request.error is None:  # we raised: a bug
                    request.error = StoreError("the round trip failed; see the log")
                request.done.set()

    async def _run(self, conn: PgConnection, batch: list[_Request]) -> bool:
        """Run ``batch`` in one transaction; False if it must be run again one by one."""
        groups = _merged(batch)
        ordered = [request for group in groups for request in group]
        calls: list[Call] = [_call(group) for group in groups]
        locks = sorted({key for r in batch for key in r.locks})
        prelude = len(batch) > 1 and bool(locks)
        if prelude:
            calls.insert(0, (self._lock_statement, [array_literal(locks)]))
        try:
            with trio.CancelScope(shield=True):
                replies = await conn.run(calls)
                if prelude:
                    del replies[0]
                replies = [
                    reply
                    for group, merged in zip(groups, replies, strict=True)
                    for reply in _split(group, merged)
                ]
        except QueryError as exc:
            if len(batch) > 1:
                return False
            batch[0].error = exc
        except StoreError as exc:
            for request in batch:
                request.error = (
                    ConnectionLostError(str(exc))
                    if isinstance(exc, ConnectionLostError)
                    else StoreError(str(exc))
                )
        else:
            for request, reply in zip(ordered, replies, strict=True):
                request.reply = reply
        return True


def _merged(batch: Sequence[_Request]) -> list[list[_Request]]:
    """``batch`` in groups to run as one statement each: the calls of one statement
    given as items, while their keys are distinct; every other call alone."""
    groups: list[list[_Request]] = []
    merging: dict[bytes, tuple[list[_Request], set[str]]] = {}
    for request in batch:
        if request.columns is not None:
            group = merging.get(request.statement.name)
            if group is None:
                merging[request.statement.name] = ([request], set(request.keys))
                groups.append(merging[request.statement.name][0])
                continue
            members, keys = group
            if keys.isdisjoint(request.keys):
                members.append(request)
                keys.update(request.keys)
                continue
        groups.append([request])
    return groups


def _call(group: Sequence[_Request]) -> Call:
    first = group[0]
    if len(group) == 1:
        return first.statement, first.params
    columns = [_columns(request) for request in group]
    return first.statement, [
        array_literal([value for call in columns for value in call[i]])
        for i in range(len(columns[0]))
    ]


def _columns(request: _Request) -> Sequence[Sequence[Param]]:
    assert request.columns is not None  # only calls given as items are merged
    return request.columns


def _split(group: Sequence[_Request], reply: Reply) -> list[Reply]:
    """The replies of each call of ``group`` in the merged statement's ``reply``."""
    if len(group) == 1:
        return [reply]
    starts = []  # each call's first item, 0-based, in the merged run
    at = 0
    for request in group:
        starts.append(at)
        at += len(_columns(request)[0])
    rows: list[list[Row]] = [[] for _ in group]
    for row in reply.rows:
        member = bisect.bisect_right(starts, row[0] - 1) - 1
        rows[member].append((row[0] - starts[member], *row[1:]))
    return [Reply(member_rows, len(member_rows)) for member_rows in rows]
