"""The worker pool: a poller, executors and a lease keeper under one supervisor."""

from ._pool import WorkerPool as WorkerPool
from ._stats import PoolStatistics as PoolStatistics

__all__ = ["PoolStatistics", "WorkerPool"]
