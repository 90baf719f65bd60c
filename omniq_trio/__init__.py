"""omniq_trio: a background task queue built on trio's structured concurrency.

::

    omniq = AsyncOmniQ(Settings(backend="file", base_dir=Path("./omniq_data")))
    task_id = await omniq.enqueue(send_email, "ada@example.com")
    async with trio.open_nursery() as nursery:
        workers = omniq.worker(concurrency=4)
        await nursery.start(workers.run)
        result = await omniq.get_result(task_id, wait=True)
        await workers.stop()

``OmniQ`` has the same methods, blocking, for code that does not run trio;
``AsyncioOmniQ`` as coroutines for asyncio code.
"""

from omniq_trio._reexport import publish

from ._asyncio import AsyncioOmniQ as AsyncioOmniQ
from ._asyncio_pool import AsyncioWorkerPool as AsyncioWorkerPool
from ._call import RESERVED_OPTIONS as RESERVED_OPTIONS
from ._call import Call as Call
from ._client import AsyncOmniQ as AsyncOmniQ
from ._context import TaskContext as TaskContext
from ._context import current_task as current_task
from ._registry import task as task
from ._schedule import Schedule as Schedule
from ._serve import serve as serve
from ._sync import OmniQ as OmniQ
from ._sync import SyncWorkerPool as SyncWorkerPool
from .config import Settings as Settings
from .errors import ConfigError as ConfigError
from .errors import DuplicateTaskError as DuplicateTaskError
from .errors import FunctionImportError as FunctionImportError
from .errors import InvalidTransitionError as InvalidTransitionError
from .errors import JournalCorruptError as JournalCorruptError
from .errors import LeaseLostError as LeaseLostError
from .errors import NoTaskContextError as NoTaskContextError
from .errors import OmniQError as OmniQError
from .errors import ProgressError as ProgressError
from .errors import ResultTooLargeError as ResultTooLargeError
from .errors import ScheduleError as ScheduleError
from .errors import SerializationError as SerializationError
from .errors import StoreError as StoreError
from .errors import StoreUnavailableError as StoreUnavailableError
from .errors import TaskContextError as TaskContextError
from .errors import TaskModuleImportError as TaskModuleImportError
from .errors import TaskNotFoundError as TaskNotFoundError
from .errors import TaskOptionError as TaskOptionError
from .errors import TaskTimeoutError as TaskTimeoutError
from .errors import TaskTooLargeError as TaskTooLargeError
from .errors import TransactionalEnqueueError as TransactionalEnqueueError
from .errors import UniqueConflictError as UniqueConflictError
from .errors import UnregisteredTaskError as UnregisteredTaskError
from .errors import UnsupportedPlatformError as UnsupportedPlatformError
from .errors import WorkerLostError as WorkerLostError
from .models import Enqueued as Enqueued
from .models import Progress as Progress
from .models import QueueInfo as QueueInfo
from .models import RateLimit as RateLimit
from .models import ScheduleInfo as ScheduleInfo
from .models import Task as Task
from .models import TaskError as TaskError
from .models import TaskPage as TaskPage
from .models import TaskResult as TaskResult
from .models import TaskStatus as TaskStatus
from .models import WorkerInfo as WorkerInfo
from .store import Store as Store
from .worker import PoolStatistics as PoolStatistics
from .worker import WorkerPool as WorkerPool

#: The one place the version is written; pyproject.toml reads it from here.
__version__ = "0.1.0"

__all__ = [
    "RESERVED_OPTIONS",
    "AsyncOmniQ",
    "AsyncioOmniQ",
    "AsyncioWorkerPool",
    "Call",
    "ConfigError",
    "DuplicateTaskError",
    "Enqueued",
    "FunctionImportError",
    "InvalidTransitionError",
    "JournalCorruptError",
    "LeaseLostError",
    "NoTaskContextError",
    "OmniQ",
    "OmniQError",
    "PoolStatistics",
    "Progress",
    "ProgressError",
    "QueueInfo",
    "RateLimit",
    "ResultTooLargeError",
    "Schedule",
    "ScheduleError",
    "ScheduleInfo",
    "SerializationError",
    "Settings",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "SyncWorkerPool",
    "Task",
    "TaskContext",
    "TaskContextError",
    "TaskError",
    "TaskModuleImportError",
    "TaskNotFoundError",
    "TaskOptionError",
    "TaskPage",
    "TaskResult",
    "TaskStatus",
    "TaskTimeoutError",
    "TaskTooLargeError",
    "TransactionalEnqueueError",
    "UniqueConflictError",
    "UnregisteredTaskError",
    "UnsupportedPlatformError",
    "WorkerInfo",
    "WorkerLostError",
    "WorkerPool",
    "current_task",
    "serve",
    "task",
]

publish(globals(), __all__)
