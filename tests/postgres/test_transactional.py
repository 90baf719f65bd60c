"""``enqueue(..., connection=conn)`` on PostgreSQL: the task is written in the caller's
transaction, on the caller's connection (psycopg, SQLAlchemy), and exists if and
only if it commits; idle workers hear of it at the commit.

What exists is read on connections of the test's own, so that nothing the store
caches can answer for the database.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import psycopg
import pytest

from omniq_trio import AsyncioOmniQ, Call, Enqueued, OmniQ, Settings, TransactionalEnqueueError
from tests.aio.aio_tasks import add

from ..conftest import requires_postgres

pytestmark = requires_postgres


class Rollback(Exception):
    """Raised inside a transaction block to leave it by an exception."""


@pytest.fixture
def settings(dsn: str, schema: str) -> Settings:
    return Settings(backend="postgres", dsn=dsn, postgres_schema=schema)


@pytest.fixture
def omniq(settings: Settings) -> Iterator[OmniQ]:
    with OmniQ(settings) as omniq:
        yield omniq


def stored(dsn: str, schema: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute(f'SELECT id FROM "{schema}".tasks')}


def test_a_committed_enqueue_exists_and_wakes_listeners_at_the_commit(
    omniq: OmniQ, dsn: str, schema: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f'LISTEN "omniq_trio:{schema}"')
        with psycopg.connect(dsn) as conn:
            with conn.transaction():
                task_id = omniq.enqueue(add, 1, 2, connection=conn)
                (other,) = omniq.enqueue_many([Call(add, (3, 4))], connection=conn)
                assert stored(dsn, schema) == set(), "not before the commit"
                assert list(listener.notifies(timeout=0)) == []
            assert stored(dsn, schema) == {task_id, other}
            # every store listening hears it: the payload names no store
            letters = [n.payload for n in listener.notifies(timeout=10, stop_after=1)]
            assert letters == ["w:"]
    assert omniq.get_task(task_id).args == (1, 2)


def test_a_rolled_back_enqueue_leaves_nothing(omniq: OmniQ, dsn: str, schema: str) -> None:
    with psycopg.connect(dsn) as conn:
        with conn.transaction(force_rollback=True):
            omniq.enqueue(add, 1, 2, connection=conn)
        omniq.enqueue(add, 1, 2, connection=conn)  # psycopg began a transaction ...
        conn.rollback()  # ... which the caller ends
    assert stored(dsn, schema) == set()


def test_an_exception_in_the_transaction_block_leaves_nothing(
    omniq: OmniQ, dsn: str, schema: str
) -> None:
    with psycopg.connect(dsn) as conn:
        with pytest.raises(Rollback), conn.transaction():
            conn.execute("SELECT 1")
            omniq.enqueue_many([Call(add, (1, 2)), Call(add, (3, 4))], connection=conn)
            raise Rollback
        # the connection goes on: the next transaction commits its own
        with conn.transaction():
            kept = omniq.enqueue(add, 5, 6, connection=conn)
    assert stored(dsn, schema) == {kept}


def test_an_autocommit_connection_commits_the_enqueue_at_once(
    omniq: OmniQ, dsn: str, schema: str
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        task_id = omniq.enqueue(add, 1, 2, connection=conn)
        assert stored(dsn, schema) == {task_id}


def test_unique_keys_wait_for_an_uncommitted_enqueue_of_the_same_key(
    omniq: OmniQ, dsn: str, schema: str
) -> None:
    with psycopg.connect(dsn) as first, psycopg.connect(dsn, autocommit=True) as second:
        answers: list[Enqueued] = []

        def enqueue_again(key: str) -> None:
            call = Call(add, (1, 2), unique_key=key)
            answers.extend(omniq.enqueue_calls([call], connection=second))

        for outcome in ("commit", "rollback"):
            answers.clear()
            key = f"report:{outcome}"
            with first.transaction(force_rollback=outcome == "rollback"):
                call = Call(add, (1, 2), unique_key=key)
                held, again = omniq.enqueue_calls([call, call], connection=first)
                assert held.created and again == Enqueued(held.id, False)
                thread = threading.Thread(target=enqueue_again, args=(key,))
                thread.start()
                _wait_until_blocked(dsn, second.info.backend_pid)
                assert not answers, "it waits for the first transaction"
            thread.join(timeout=30)
            if outcome == "commit":
                # the key was taken when it could look: the first task answers
                assert answers == [Enqueued(held.id, False)]
            else:
                # the first task never existed: the second one is created
                (answer,) = answers
                assert answer.created and answer.id != held.id
                assert stored(dsn, schema) >= {answer.id}


def _wait_until_blocked(dsn: str, pid: int) -> None:
    """Return once session ``pid`` waits for a lock (a readiness signal, not a guess)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(3_000):
            (waiting,) = conn.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone() or (False,)
            if waiting:
                return
            conn.execute("SELECT pg_sleep(0.01)")
    raise AssertionError(f"session {pid} never waited for the lock")


def test_sqlalchemy_connections_and_sessions_on_psycopg(
    omniq: OmniQ, dsn: str, schema: str
) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    engine = sqlalchemy.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            committed = omniq.enqueue(add, 1, 2, connection=conn)
        with pytest.raises(Rollback), engine.begin() as conn:
            omniq.enqueue(add, 1, 2, connection=conn)
            raise Rollback
        with Session(engine) as session, session.begin():
            in_session = omniq.enqueue(add, 3, 4, connection=session)
        with Session(engine) as session:
            omniq.enqueue(add, 5, 6, connection=session)
            session.rollback()
    finally:
        engine.dispose()
    assert stored(dsn, schema) == {committed, in_session}
    lite = sqlalchemy.create_engine("sqlite://")
    with lite.connect() as conn, pytest.raises(TransactionalEnqueueError, match="psycopg"):
        omniq.enqueue(add, 1, 2, connection=conn)


def test_asyncio_enqueue_on_an_async_connection(settings: Settings, dsn: str, schema: str) -> None:
    async def main() -> tuple[str, list[str]]:
        async with (
            AsyncioOmniQ(settings) as omniq,
            await psycopg.AsyncConnection.connect(dsn) as conn,
        ):
            async with conn.transaction():
                kept = await omniq.enqueue(add, 1, 2, connection=conn)
            with pytest.raises(Rollback):
                async with conn.transaction():
                    await omniq.enqueue_many([Call(add, (3, 4))], connection=conn)
                    raise Rollback
            task = await omniq.get_task(kept)
            return kept, [task.id]

    kept, seen = asyncio.run(main())
    assert seen == [kept]
    assert stored(dsn, schema) == {kept}
