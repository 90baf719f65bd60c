"""``make_store`` for every store we ship, in the shape the contract checks take."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from omniq_trio.store import MemoryStore, Store
from omniq_trio.store._journal import JournalStore

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


BACKENDS = ["memory", "journal"]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    if request.param == "memory":
        return memory_maker()
    if request.param == "journal":
        return journal_maker(tmp_path)
    raise AssertionError(request.param)
