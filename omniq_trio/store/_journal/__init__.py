"""The file journal: the default store, durable and shared by the processes of one machine."""

from ._store import JournalStore as JournalStore

__all__ = ["JournalStore"]
