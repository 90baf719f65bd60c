"""Enqueue inside the caller's database transaction: the seam between clients and stores.

A store that can write tasks inside a transaction its caller holds (the
PostgreSQL store) says so with ``capabilities.transactional_enqueue`` and
implements :class:`TransactionalEnqueue`: given the tasks, it returns the
statement that writes them (:class:`EnqueueStatement`). The *client* runs
that statement on the caller's connection, in the caller's thread or asyncio
loop (never in the background trio thread, which cannot use the caller's
connection): the tasks then exist if and only if the caller's transaction
commits, and the wake-up it sends (``NOTIFY``) is delivered at commit.

Making the statement does no I/O and touches no trio object, so a client
may call it from any thread.

The caller's connection may be (``OmniQ``) a ``psycopg.Connection``, or a
SQLAlchemy ``Connection`` or ORM ``Session`` whose engine uses the psycopg
driver (``postgresql+psycopg://``): the statement runs through
``exec_driver_sql``, in the transaction SQLAlchemy has open (or begins, as it
does for any statement); (``AsyncioOmniQ``) a ``psycopg.AsyncConnection``. A
connection in autocommit mode commits the enqueue at once, as it would any
statement. Anything else is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ._call import Call, build_task
from ._codec import Codec
from ._registry import prepare_call
from .config import Settings
from .errors import TaskOptionError, TransactionalEnqueueError
from .models import Enqueued, Task

if TYPE_CHECKING:
    import psycopg

    from .store import Store

__all__ = [
    "EnqueueStatement",
    "TransactionalEnqueue",
    "build_tasks",
    "check_connection",
    "enqueue_statement",
    "run_statement",
    "run_statement_async",
]


@attrs.frozen
class EnqueueStatement:
    """SQL that writes tasks in the caller's transaction, for its psycopg connection.

    ``sql`` uses psycopg placeholders (``%s`` / ``%(name)s``); run with
    ``params``, it returns one row ``(task_id, created)`` per task enqueued,
    in order (``created`` false: a unique key named a task that exists, and
    ``task_id`` is that task's).
    """

    sql: str
    params: Sequence[Any] | Mapping[str, Any]


@runtime_checkable
class TransactionalEnqueue(Protocol):
    """What a store with ``capabilities.transactional_enqueue`` provides."""

    def enqueue_statement(self, tasks: Sequence[Task]) -> EnqueueStatement:
        """The statement that enqueues ``tasks`` (all or none) when run in a transaction.

        No I/O; callable from any thread. The statement enforces what
        ``Store.enqueue`` does (duplicate ids, unique keys) and wakes idle
        workers at commit.
        """
        ...


def build_tasks(
    calls: Sequence[Call], *, settings: Settings, codec: Codec, now: float
) -> list[Task]:
    """Check ``calls`` and make them new PENDING tasks, in the caller's thread
    (as ``AsyncOmniQ`` does before it stores them)."""
    tasks = []
    for call in calls:
        if not isinstance(call, Call):
            raise TaskOptionError(f"enqueue_many takes Call objects, got {call!r}")
        call = prepare_call(call)  # registers a function object, applies @task defaults
        tasks.append(build_task(call, settings=settings, codec=codec, now=now))
    return tasks


def _supports(store: Store) -> bool:
    return store.capabilities.transactional_enqueue and isinstance(store, TransactionalEnqueue)


def enqueue_statement(store: Store, tasks: Sequence[Task]) -> EnqueueStatement:
    """The statement that enqueues ``tasks`` on ``store``, or a named error if it cannot."""
    if not _supports(store):
        raise TransactionalEnqueueError(
            f"connection= writes tasks inside your database transaction, which needs a store "
            f"that keeps its tasks in that database (backend='postgres'); "
            f"{type(store).__name__} cannot join it. Enqueue after your transaction has "
            "committed instead, without connection= (a task argument named 'connection' "
            "goes in task_kwargs={'connection': ...})"
        )
    assert isinstance(store, TransactionalEnqueue)
    return store.enqueue_statement(tasks)


def _enqueued(rows: Sequence[Sequence[Any]], expected: int) -> list[Enqueued]:
    if len(rows) != expected:  # a store's statement broke its promise
        raise TransactionalEnqueueError(
            f"the enqueue statement returned {len(rows)} rows for {expected} tasks"
        )
    return [Enqueued(str(task_id), bool(created)) for task_id, created in rows]


def run_statement(connection: Any, statement: EnqueueStatement, expected: int) -> list[Enqueued]:
    """Run ``statement`` on the caller's sync connection (psycopg, or SQLAlchemy's
    ``Connection``/``Session`` on psycopg); what it did per task, in order."""
    sqlalchemy_connection = _sqlalchemy_connection(connection)
    if sqlalchemy_connection is not None:
        result = sqlalchemy_connection.exec_driver_sql(statement.sql, tuple(statement.params))
        return _enqueued(result.fetchall(), expected)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        return _enqueued(cursor.fetchall(), expected)


def _sqlalchemy_connection(connection: object) -> Any:
    """The SQLAlchemy ``Connection`` to run on, for a SQLAlchemy ``Connection`` or
    ``Session`` (``None`` for anything else); a named error unless it runs on psycopg."""
    module = type(connection).__module__
    if not module.startswith("sqlalchemy."):
        return None
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    if isinstance(connection, Session):
        # the session's connection, in the transaction the session has begun
        connection = connection.connection()
    if not isinstance(connection, Connection):
        raise TransactionalEnqueueError(
            "OmniQ enqueue(connection=...) takes a SQLAlchemy Connection or Session, got "
            f"{type(connection).__name__}"
        )
    driver = connection.dialect.driver
    if connection.dialect.name != "postgresql" or driver != "psycopg":
        raise TransactionalEnqueueError(
            "enqueue(connection=...) runs on PostgreSQL through psycopg 3: use an engine "
            f"made with 'postgresql+psycopg://...', not {connection.dialect.name}+{driver}"
        )
    return connection


async def run_statement_async(
    connection: psycopg.AsyncConnection[Any], statement: EnqueueStatement, expected: int
) -> list[Enqueued]:
    """Run ``statement`` on the caller's asyncio connection; what it did per task, in order."""
    async with connection.cursor() as cursor:
        await cursor.execute(statement.sql, statement.params)
        return _enqueued(await cursor.fetchall(), expected)


def check_connection(connection: object, *, asyncio: bool) -> None:
    """Refuse a connection of the wrong kind before anything runs on it."""
    if not asyncio and _sqlalchemy_connection(connection) is not None:
        return
    try:
        import psycopg
    except ImportError:
        raise TransactionalEnqueueError(
            "connection= takes a psycopg 3 connection; install omniq-trio[postgres]"
        ) from None
    wanted = psycopg.AsyncConnection if asyncio else psycopg.Connection
    if not isinstance(connection, wanted):
        client = "AsyncioOmniQ" if asyncio else "OmniQ"
        also = "" if asyncio else " or a SQLAlchemy Connection or Session on psycopg"
        raise TransactionalEnqueueError(
            f"{client} enqueue(connection=...) takes a {wanted.__module__}.{wanted.__name__}"
            f"{also} (the caller's open transaction), got {type(connection).__name__}"
            + (
                "; for a sync psycopg.Connection use OmniQ"
                if asyncio and isinstance(connection, psycopg.Connection)
                else ""
            )
            + (
                "; for a psycopg.AsyncConnection use AsyncioOmniQ"
                if not asyncio and isinstance(connection, psycopg.AsyncConnection)
                else ""
            )
        )
