"""``enqueue(connection=...)``: refused where no transaction can hold the task; where a
store offers the statement, run on the caller's connection, in the caller's
transaction, on the caller's loop or thread.

The PostgreSQL store's own statement is tested with the store; here a stand-in
store's statement writes to a table of the test's schema, so commit and
rollback show where the statement ran.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from omniq_trio import (
    AsyncioOmniQ,
    Call,
    OmniQ,
    Settings,
    Task,
    TransactionalEnqueueError,
)
from omniq_trio._transactional import EnqueueStatement
from omniq_trio.store import MemoryStore, StoreCapabilities
from tests.aio.aio_tasks import add
from tests.conftest import POSTGRES_DSN, requires_postgres


@pytest.mark.parametrize("backend", ["memory", "file"])
def test_stores_without_transactions_refuse_connection_and_write_nothing(
    backend: str, tmp_path: Path
) -> None:
    settings = Settings(backend=backend, base_dir=tmp_path)  # type: ignore[arg-type]
    store_name = {"memory": "MemoryStore", "file": "JournalStore"}[backend]
    fake_connection = object()  # the store is asked first: the connection is never touched

    async def main() -> int:
        async with AsyncioOmniQ(settings) as omniq:
            with pytest.raises(TransactionalEnqueueError, match=f"{store_name} cannot join"):
                await omniq.enqueue(add, 1, 2, connection=fake_connection)  # type: ignore[arg-type]
            with pytest.raises(TransactionalEnqueueError, match="backend='postgres'"):
                await omniq.enqueue_many([Call(add, (1, 2))], connection=fake_connection)  # type: ignore[arg-type]
            return (await omniq.stats()).total

    assert asyncio.run(main()) == 0
    with OmniQ(settings) as omniq:
        with pytest.raises(TransactionalEnqueueError, match="task_kwargs=\\{'connection'"):
            omniq.enqueue(add, 1, 2, connection=fake_connection)  # type: ignore[arg-type]
        # a task argument named "connection" still has a way in
        task_id = omniq.enqueue("tests.aio.aio_tasks:add", task_kwargs={"connection": 1, "b": 2})
        assert omniq.get_task(task_id).kwargs == {"connection": 1, "b": 2}


class StandInStore(MemoryStore):  # type: ignore[misc]  # final for users; a stand-in here
    """A memory store that says it can enqueue in a transaction, into ``schema.tasks``."""

    capabilities = StoreCapabilities(shared=True, transactional_enqueue=True)
    schema = ""

    def enqueue_statement(self, tasks: Sequence[Task]) -> EnqueueStatement:
        return EnqueueStatement(
            f'INSERT INTO "{self.schema}".tasks (id) SELECT unnest(%s::text[]) RETURNING id, true',
            [[task.id for task in tasks]],
        )


@pytest.fixture
def schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import psycopg

    assert POSTGRES_DSN
    name = f"aio_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        conn.execute(f'CREATE TABLE "{name}".tasks (id text PRIMARY KEY)')
    monkeypatch.setattr(StandInStore, "schema", name)
    monkeypatch.setattr("omniq_trio._client.store_for", lambda settings: StandInStore())
    yield name
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def _stored(schema: str) -> set[str]:
    import psycopg

    assert POSTGRES_DSN
    with psycopg.connect(POSTGRES_DSN) as conn:
        return {row[0] for row in conn.execute(f'SELECT id FROM "{schema}".tasks')}


@requires_postgres
def test_asyncio_enqueue_runs_on_the_callers_async_connection(schema: str) -> None:
    import psycopg

    class Rollback(Exception):
        pass

    async def main() -> tuple[list[str], list[str]]:
        assert POSTGRES_DSN
        async with (
            AsyncioOmniQ(Settings(backend="memory")) as omniq,
            await psycopg.AsyncConnection.connect(POSTGRES_DSN) as conn,
        ):
            async with conn.transaction():
                kept = await omniq.enqueue_many(
                    [Call(add, (1, 2)), Call(add, (3, 4))], connection=conn
                )
            with pytest.raises(Rollback):
                async with conn.transaction():
                    dropped = [await omniq.enqueue(add, 5, 6, connection=conn)]
                    raise Rollback
            with (
                pytest.raises(TransactionalEnqueueError, match=r"for a sync psycopg\.Connection"),
                psycopg.connect(POSTGRES_DSN) as sync_conn,
            ):
                await omniq.enqueue(add, 1, 2, connection=sync_conn)  # type: ignore[arg-type]
            assert (await omniq.stats()).total == 0  # the trio thread's store saw none of it
        return kept, dropped

    kept, dropped = asyncio.run(main())
    assert len(kept) == 2 and len(dropped) == 1
    assert _stored(schema) == set(kept)


@requires_postgres
def test_sync_enqueue_runs_on_the_callers_connection(schema: str) -> None:
    import psycopg

    assert POSTGRES_DSN
    with OmniQ(Settings(backend="memory")) as omniq, psycopg.connect(POSTGRES_DSN) as conn:
        with conn.transaction():
            kept = omniq.enqueue(add, 1, 2, connection=conn)
        with conn.transaction(force_rollback=True):
            omniq.enqueue_many([Call(add, (1, 2))], connection=conn)

        async def wrong_kind() -> Any:
            assert POSTGRES_DSN
            async with await psycopg.AsyncConnection.connect(POSTGRES_DSN) as aconn:
                with pytest.raises(TransactionalEnqueueError, match="use AsyncioOmniQ"):
                    omniq.enqueue(add, 1, 2, connection=aconn)  # type: ignore[arg-type]

        asyncio.run(wrong_kind())
    assert _stored(schema) == {kept}
