"""Stores: where tasks live. One contract (:class:`Store`), several homes.

``PostgresStore`` is imported on first use (``from omniq_trio.store import
PostgresStore``): it needs psycopg, which only the ``postgres`` extra installs.
"""

from typing import TYPE_CHECKING, Any

from ..errors import DuplicateTaskError as DuplicateTaskError
from ._base import Change as Change
from ._base import Outcome as Outcome
from ._base import OutcomeKind as OutcomeKind
from ._base import Reclaimed as Reclaimed
from ._base import Store as Store
from ._base import StoreCapabilities as StoreCapabilities
from ._base import StoreStats as StoreStats
from ._journal import JournalStore as JournalStore
from ._journal import RepairReport as RepairReport
from ._journal import journal_exists as journal_exists
from ._journal import repair_journal as repair_journal
from ._memory import MemoryStore as MemoryStore

if TYPE_CHECKING:
    from ._postgres import PostgresStore as PostgresStore

__all__ = [
    "Change",
    "DuplicateTaskError",
    "JournalStore",
    "MemoryStore",
    "Outcome",
    "OutcomeKind",
    "Reclaimed",
    "RepairReport",
    "Store",
    "StoreCapabilities",
    "StoreStats",
    "journal_exists",
    "repair_journal",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from ._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
