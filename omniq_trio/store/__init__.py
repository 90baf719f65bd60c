"""Stores: where tasks live. One contract (:class:`Store`), several homes."""

from ._base import Change as Change
from ._base import Outcome as Outcome
from ._base import Store as Store
from ._base import StoreStats as StoreStats
from ._index import DuplicateTaskError as DuplicateTaskError
from ._journal import JournalStore as JournalStore
from ._journal import RepairReport as RepairReport
from ._journal import repair_journal as repair_journal
from ._memory import MemoryStore as MemoryStore

__all__ = [
    "Change",
    "DuplicateTaskError",
    "JournalStore",
    "MemoryStore",
    "Outcome",
    "RepairReport",
    "Store",
    "StoreStats",
    "repair_journal",
]
