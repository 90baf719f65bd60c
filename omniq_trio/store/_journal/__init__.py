"""The file journal: the default store, durable and shared by the processes of one machine."""

from ._repair import RepairReport as RepairReport
from ._repair import repair_journal as repair_journal
from ._store import JournalStore as JournalStore

__all__ = ["JournalStore", "RepairReport", "repair_journal"]
