"""``MemoryStore``: tasks in this process's memory, for tests and embedding.

Everything the other stores guarantee except surviving the process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, final

import trio

from ..errors import StoreClosedError
from ._base import StoreCapabilities
from ._index import TaskIndex
from ._indexed import IndexedStore, Plan

__all__ = ["MemoryStore"]

R = TypeVar("R")
#: Slots of purged tasks kept before the index is rebuilt without them.
_REBUILD_AT = 10_000
#: Everything that changes it happens in this process.
_CAPABILITIES = StoreCapabilities(shared=False)


@final
class MemoryStore(IndexedStore):
    """A store that lives as long as the object.

    Closing it keeps its tasks; open it again to use them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._open = False

    @property
    def capabilities(self) -> StoreCapabilities:
        return _CAPABILITIES

    async def open(self) -> None:
        await trio.lowlevel.checkpoint()
        self._open = True

    async def aclose(self) -> None:
        self._open = False
        await trio.lowlevel.checkpoint()

    async def _commit(self, plan: Callable[[TaskIndex], Plan[R]]) -> R:
        # The checkpoint comes first, so a cancelled call has changed nothing;
        # everything after it runs without yielding, so the change is atomic.
        await trio.lowlevel.checkpoint()
        self._check_open()
        index = self._index
        events, answer = plan(index)
        index.apply_all(events)
        self._applied(events)
        result = answer()
        if index.dead > max(_REBUILD_AT, index.live):
            # purged tasks leave their slots behind: start over from the live ones
            self._index = TaskIndex()
            self._index.apply_all(index.snapshot())
        return result

    async def _read(self, query: Callable[[TaskIndex], R]) -> R:
        await trio.lowlevel.checkpoint()
        self._check_open()
        return query(self._index)

    def _check_open(self) -> None:
        if not self._open:
            raise StoreClosedError("the memory store is closed; open it (async with store:) first")
