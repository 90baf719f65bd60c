"""The file journal: the default store, durable and shared by the processes of one machine."""

from ._files import journal_exists as journal_exists
from ._repair import RepairReport as RepairReport
from ._repair import repair_journal as repair_journal
from ._store import JournalStore as JournalStore

__all__ = ["JournalStore", "RepairReport", "journal_exists", "repair_journal"]
