"""``make_store`` for every store we ship, in the shape the contract checks take."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from omniq_trio.store import MemoryStore, Store
from omniq_trio.store._journal import JournalStore

from ..conftest import POSTGRES_DSN, requires_postgres

StoreMaker = Callable[[str], AbstractAsyncContextManager[Store]]


def memory_maker() -> StoreMaker:
    stores: dict[str, MemoryStore] = {}

    @asynccontextmanager
    async def make(name: str) -> AsyncIterator[Store]:
        store = stores.setdefault(name, MemoryStore())
        async with store:
            yield store

    return make


def journal_maker(base: Path, **options: Any) -> StoreMaker:
    @asynccontextmanager
    async def make(name: str) -> AsyncIterator[Store]:
        async with JournalStore(base / name, **options) as store:
            yield store

    return make


def postgres_maker(schemas: list[str]) -> StoreMaker:
    """Each name is a schema of its own (recorded in ``schemas`` for dropping)."""
    from omniq_trio.store._postgres import PostgresStore

    prefix = f"t{uuid.uuid4().hex[:8]}"
    names: dict[str, str] = {}

    @asynccontextmanager
    async def make(name: str) -> AsyncIterator[Store]:
        schema = names.get(name)
        if schema is None:
            schema = names[name] = f"{prefix}_{len(names)}"
            schemas.append(schema)
        assert POSTGRES_DSN
        async with PostgresStore(POSTGRES_DSN, schema=schema) as store:
            yield store

    return make


def drop_schemas(schemas: list[str]) -> None:
    if not schemas:
        return
    import psycopg

    assert POSTGRES_DSN
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


BACKENDS = ["memory", "journal", pytest.param("postgres", marks=requires_postgres)]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    if request.param == "memory":
        yield memory_maker()
    elif request.param == "journal":
        # compacting and checkpointing after a few records: every check also runs
        # through snapshots and checkpoints
        yield journal_maker(
            tmp_path, compact_min_records=8, compact_threshold=0.5, checkpoint_records=6
        )
    elif request.param == "postgres":
        schemas: list[str] = []
        try:
            yield postgres_maker(schemas)
        finally:
            drop_schemas(schemas)
    else:
        raise AssertionError(request.param)
