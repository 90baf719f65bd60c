"""Stores: where tasks live. One contract (:class:`Store`), several homes."""

from ._base import Change as Change
from ._base import Outcome as Outcome
from ._base import Store as Store
from ._base import StoreStats as StoreStats
from ._index import DuplicateTaskError as DuplicateTaskError
from ._memory import MemoryStore as MemoryStore

__all__ = ["Change", "DuplicateTaskError", "MemoryStore", "Outcome", "Store", "StoreStats"]
