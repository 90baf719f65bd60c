"""``make_store`` for every store we ship, in the shape the contract checks take."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from omniq_trio.store import MemoryStore, Store

StoreMaker = Callable[[str], AbstractAsyncContextManager[Store]]


def memory_maker() -> StoreMaker:
    stores: dict[str, MemoryStore] = {}

    @asynccontextmanager
    async def make(name: str) -> AsyncIterator[Store]:
        store = stores.setdefault(name, MemoryStore())
        async with store:
            yield store

    return make


BACKENDS = ["memory"]


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    if request.param == "memory":
        return memory_maker()
    raise AssertionError(request.param)
