"""``PgConnection``: one PostgreSQL connection, driven from trio through libpq's
non-blocking API (``psycopg.pq``), with the few types omniq_trio stores.

Parameters go out in text form with an explicit cast in the SQL (``$1::float8``):
Python's ``repr`` of a float is the shortest string that reads back as the same
double, and PostgreSQL parses it with correct rounding, so times round-trip
exactly. Results come back in binary form, so a ``double precision`` is the
same 8 bytes on both sides whatever ``extra_float_digits`` says.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, final

import attrs
import psycopg
import trio
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ...errors import StoreError

__all__ = [
    "Call",
    "ConnectionLostError",
    "Param",
    "PgConnection",
    "QueryError",
    "Reply",
    "Row",
    "Statement",
    "array_literal",
    "conninfo_with_defaults",
]

Param = str | int | float | bool | None
Row = tuple[Any, ...]

#: Connection parameters used unless the DSN (or the libpq environment
#: variable beside each) sets them: a dead server or a cut network is noticed
#: within about half a minute (keepalives, and ``tcp_user_timeout`` for data
#: that is never acknowledged), instead of the operating system's two hours,
#: so a round trip that has started always ends. The application name lets an
#: operator find omniq_trio's sessions in ``pg_stat_activity``.
CONNECTION_DEFAULTS: Final = {
    "connect_timeout": ("10", "PGCONNECT_TIMEOUT"),
    "keepalives": ("1", None),
    "keepalives_idle": ("10", None),
    "keepalives_interval": ("5", None),
    "keepalives_count": ("3", None),
    "tcp_user_timeout": ("30000", None),
    "application_name": ("omniq_trio", "PGAPPNAME"),
}

_DOUBLE: Final = struct.Struct(">d").unpack
_INT8: Final = struct.Struct(">q").unpack
_INT4: Final = struct.Struct(">i").unpack
_INT2: Final = struct.Struct(">h").unpack


def _text(data: bytes) -> str:
    return data.decode()


def _array_of(element: Callable[[bytes], Any]) -> Callable[[bytes], list[Any]]:
    """A decoder of one-dimensional arrays (binary form) of ``element``."""

    def decode(data: bytes) -> list[Any]:
        ndim = _INT4(data[:4])[0]
        if ndim == 0:
            return []
        if ndim != 1:
            raise StoreError(f"a {ndim}-dimensional array came back; expected one dimension")
        (size,) = _INT4(data[12:16])
        items: list[Any] = []
        at = 20
        for _ in range(size):
            (length,) = _INT4(data[at : at + 4])
            at += 4
            if length < 0:
                items.append(None)
            else:
                items.append(element(data[at : at + length]))
                at += length
        return items

    return decode


#: Binary decoders by type OID, for the types omniq_trio's statements return.
_DECODERS: Final[dict[int, Callable[[bytes], Any]]] = {
    16: lambda data: data == b"\x01",  # bool
    20: lambda data: _INT8(data)[0],  # int8
    21: lambda data: _INT2(data)[0],  # int2
    23: lambda data: _INT4(data)[0],  # int4
    25: _text,  # text
    114: _text,  # json: its binary form is its text
    701: lambda data: _DOUBLE(data)[0],  # float8
    1043: _text,  # varchar
    2278: lambda data: None,  # void (pg_notify)
    1009: _array_of(_text),  # text[]
    1022: _array_of(lambda data: _DOUBLE(data)[0]),  # float8[]
}


def conninfo_with_defaults(dsn: str) -> str:
    """``dsn`` plus those :data:`CONNECTION_DEFAULTS` that neither it nor the environment sets."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot parse the PostgreSQL dsn: {exc}") from None
    for key, (value, envvar) in CONNECTION_DEFAULTS.items():
        if key not in params and not (envvar and envvar in os.environ):
            params[key] = value
    return make_conninfo("", **params)


def _encode(value: Param) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


def _array_item(value: Param) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Sequence[Param]) -> str:
    """A one-dimensional array in its text form, ``{"a",NULL,1.5}``, for ``$1::text[]``."""
    return "{" + ",".join(map(_array_item, values)) + "}"


@final
@attrs.frozen
class Statement:
    """A named SQL statement, prepared on each connection when it opens."""

    name: bytes
    sql: bytes


#: One statement to run and its parameters.
Call = tuple[Statement, Sequence[Param]]


@final
@attrs.frozen
class Reply:
    """What one statement returned."""

    rows: list[Row]
    #: rows the statement returned or changed
    count: int


class ConnectionLostError(StoreError):
    """The connection to PostgreSQL failed; it has been closed, the next call opens another."""


class QueryError(StoreError):
    """PostgreSQL refused a statement (its transaction rolled back); the connection is usable."""

    def __init__(self, sqlstate: str, message: str, detail: str | None) -> None:
        super().__init__(
            f"PostgreSQL error {sqlstate}: {message}" + (f" ({detail})" if detail else "")
        )
        self.sqlstate = sqlstate
        self.detail = detail


@final
@attrs.define(eq=False)
class PgConnection:
    """A libpq connection in non-blocking mode. One caller at a time, and that
    caller must not be cancelled during a round trip (the pool shields it).

    Every method that talks to the server raises :class:`ConnectionLostError`
    (after closing the connection) when the connection fails, and
    :class:`QueryError` when the server refuses a statement.
    """

    _pgconn: pq.abc.PGconn

    @classmethod
    async def connect(cls, conninfo: str, statements: Sequence[Statement] = ()) -> PgConnection:
        """Open a connection and prepare ``statements`` on it.

        libpq connects blocking (name resolution, TLS), so that part runs in a
        thread; cancelling the wait closes whatever it opened.
        """
        abandoned = False
        lock = threading.Lock()

        def connect() -> pq.abc.PGconn:
            pgconn = pq.PGconn.connect(conninfo.encode())
            with lock:
                if abandoned:
                    pgconn.finish()
            return pgconn

        try:
            pgconn = await trio.to_thread.run_sync(connect, abandon_on_cancel=True)
        except BaseException:
            with lock:
                abandoned = True
            raise
        if pgconn.status != pq.ConnStatus.OK:
            message = pgconn.get_error_message()
            pgconn.finish()
            raise ConnectionLostError(f"cannot connect to PostgreSQL: {message}")
        pgconn.nonblocking = 1
        conn = cls(pgconn)
        if statements:
            try:
                with trio.CancelScope(shield=True):
                    await conn._prepare(statements)
            except BaseException:
                conn.close()
                raise
        return conn

    @property
    def open(self) -> bool:
        """Whether the connection is still up (as far as libpq knows)."""
        return self._pgconn.status == pq.ConnStatus.OK

    @property
    def idle(self) -> bool:
        """Open and outside any transaction: safe to hand to the next caller."""
        return (
            self._pgconn.status == pq.ConnStatus.OK
            and self._pgconn.transaction_status == pq.TransactionStatus.IDLE
        )

    @property
    def backend_pid(self) -> int:
        return self._pgconn.backend_pid

    def close(self) -> None:
        """Close the connection; a task waiting on its socket gets ``trio.ClosedResourceError``."""
        pgconn = self._pgconn
        if pgconn.status == pq.ConnStatus.OK:
            with contextlib.suppress(RuntimeError):  # outside trio: nobody can be waiting
                trio.lowlevel.notify_closing(pgconn.socket)
        pgconn.finish()

    async def run(self, calls: Sequence[Call]) -> list[Reply]:
        """Run prepared statements in one transaction and one round trip.

        One statement runs alone (autocommit); several run pipelined, in the
        implicit transaction that lasts until the pipeline's sync: all commit
        or, if one fails, none.
        """
        pgconn = self._pgconn
        try:
            if len(calls) == 1:
                ((statement, params),) = calls
                pgconn.send_query_prepared(statement.name, _encode_all(params), result_format=1)
                results = await self._results()
            else:
                pgconn.enter_pipeline_mode()
                for statement, params in calls:
                    pgconn.send_query_prepared(statement.name, _encode_all(params), result_format=1)
                pgconn.pipeline_sync()
                results = await self._pipeline_results()
                pgconn.exit_pipeline_mode()
        except psycopg.Error as exc:
            self.close()
            raise ConnectionLostError(f"lost the connection to PostgreSQL: {exc}") from None
        return [_reply(result) for result in self._check(results)]

    async def run_script(self, sql: str) -> None:
        """Run one or more statements without parameters (DDL, LISTEN)."""
        try:
            self._pgconn.send_query(sql.encode())
            self._check(await self._results())
        except psycopg.Error as exc:
            self.close()
            raise ConnectionLostError(f"lost the connection to PostgreSQL: {exc}") from None

    def notifies(self) -> list[pq.PGnotify]:
        """Notifications that have arrived, without waiting (reads what the socket holds)."""
        pgconn = self._pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error as exc:
            self.close()
            raise ConnectionLostError(f"lost the listening connection: {exc}") from None
        received = []
        while (notify := pgconn.notifies()) is not None:
            received.append(notify)
        return received

    async def wait_readable(self) -> None:
        await trio.lowlevel.wait_readable(self._pgconn.socket)

    async def _prepare(self, statements: Sequence[Statement]) -> None:
        pgconn = self._pgconn
        try:
            pgconn.enter_pipeline_mode()
            # Plan each statement once, for any parameters: they are written
            # so that the generic plan is a good one, and PostgreSQL would
            # otherwise re-plan those whose parameters are arrays on every
            # run (0.4 ms of a 1.6 ms round trip for a batch of outcomes).
            pgconn.send_query_params(b"SET plan_cache_mode = force_generic_plan", None)
            for statement in statements:
                pgconn.send_prepare(statement.name, statement.sql)
            pgconn.pipeline_sync()
            results = await self._pipeline_results()
            pgconn.exit_pipeline_mode()
        except psycopg.Error as exc:
            self.close()
            raise ConnectionLostError(f"lost the connection to PostgreSQL: {exc}") from None
        self._check(results)

    async def _flush(self) -> None:
        pgconn = self._pgconn
        while pgconn.flush():
            # The server may be sending results while it waits for the rest
            # of a long pipeline: read as well as write, or both sides block.
            async with trio.open_nursery() as nursery:

                async def readable() -> None:
                    await trio.lowlevel.wait_readable(pgconn.socket)
                    pgconn.consume_input()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(readable)
                await trio.lowlevel.wait_writable(pgconn.socket)
                nursery.cancel_scope.cancel()

    async def _next_result(self) -> pq.abc.PGresult | None:
        pgconn = self._pgconn
        while True:
            pgconn.consume_input()
            if not pgconn.is_busy():
                return pgconn.get_result()
            await trio.lowlevel.wait_readable(pgconn.socket)

    async def _results(self) -> list[pq.abc.PGresult]:
        """The results of one statement (or script), up to libpq's end marker."""
        await self._flush()
        results: list[pq.abc.PGresult] = []
        while (result := await self._next_result()) is not None:
            results.append(result)
        return results

    async def _pipeline_results(self) -> list[pq.abc.PGresult]:
        """The results of every statement in a pipeline, up to its sync."""
        await self._flush()
        results: list[pq.abc.PGresult] = []
        while True:
            result = await self._next_result()
            if result is None:
                continue  # the end of one statement's results
            if result.status == pq.ExecStatus.PIPELINE_SYNC:
                return results
            results.append(result)

    def _check(self, results: list[pq.abc.PGresult]) -> list[pq.abc.PGresult]:
        """``results``, or the first error among them raised."""
        if self._pgconn.status != pq.ConnStatus.OK:
            # the server ended the session ("terminating connection due to
            # administrator command", a shutdown) in the middle of the round trip
            reason = next(
                (r.get_error_message() for r in results if r.status == pq.ExecStatus.FATAL_ERROR),
                self._pgconn.get_error_message(),
            )
            self.close()
            raise ConnectionLostError(f"lost the connection to PostgreSQL: {reason.strip()}")
        for result in results:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                field = result.error_field
                detail = field(pq.DiagnosticField.MESSAGE_DETAIL)
                raise QueryError(
                    (field(pq.DiagnosticField.SQLSTATE) or b"").decode(),
                    (field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode(),
                    detail.decode() if detail else None,
                )
        return results


def _encode_all(params: Sequence[Param]) -> list[bytes | None]:
    return [_encode(param) for param in params]


def _reply(result: pq.abc.PGresult) -> Reply:
    if result.status != pq.ExecStatus.TUPLES_OK:
        return Reply([], result.command_tuples or 0)
    nfields = result.nfields
    decoders = [_DECODERS[result.ftype(col)] for col in range(nfields)]
    value = result.get_value
    rows = []
    for row in range(result.ntuples):
        cells = []
        for col in range(nfields):
            data = value(row, col)
            cells.append(None if data is None else decoders[col](data))
        rows.append(tuple(cells))
    return Reply(rows, result.command_tuples or len(rows))
