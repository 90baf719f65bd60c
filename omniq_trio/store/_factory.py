"""The store a ``Settings`` asks for."""

from __future__ import annotations

from ..config import Settings
from ._base import Store
from ._memory import MemoryStore

__all__ = ["store_for"]


def store_for(settings: Settings) -> Store:
    """A new, unopened store for ``settings.backend``."""
    if settings.backend == "memory":
        return MemoryStore()
    if settings.backend == "file":
        from ._journal import JournalStore

        return JournalStore.from_settings(settings)
    from ._postgres import PostgresStore

    return PostgresStore.from_settings(settings)
