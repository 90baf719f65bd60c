"""``AsyncioWorkerPool``: a worker pool run and stopped from asyncio code."""

from __future__ import annotations

import functools
from typing import final

import attrs
import trio

from ._bridge import TrioThread, call_from_asyncio, settled
from .config import Settings
from .worker import PoolStatistics, WorkerPool

__all__ = ["AsyncioWorkerPool"]


@final
@attrs.define(eq=False)
class AsyncioWorkerPool:
    """A :class:`WorkerPool` for asyncio code: ``await workers.run()`` runs it.

    Its tasks run in the client's background trio thread (sync tasks in
    threads of their own), never in the event loop. ``await workers.stop()``
    stops it gracefully; cancelling the task awaiting ``run()`` stops it at
    once (running tasks go back to the queue, uncharged).
    """

    _thread: TrioThread
    _pool: WorkerPool

    @property
    def concurrency(self) -> int:
        """How many tasks run at once at most."""
        return self._pool.concurrency

    @property
    def poll_interval(self) -> float:
        """Longest wait between looks for due tasks."""
        return self._pool.poll_interval

    @property
    def settings(self) -> Settings:
        """The settings this pool runs with."""
        return self._pool.settings

    @property
    def worker_id(self) -> str:
        """The id this pool's leases are held under."""
        return self._pool.worker_id

    async def statistics(self) -> PoolStatistics:
        """A snapshot of the pool's counters, taken in the background thread."""
        if self._thread.closed:  # the pool has stopped: its figures no longer move
            return self._pool.statistics()
        return await call_from_asyncio(self._thread, self._snapshot)

    async def _snapshot(self) -> PoolStatistics:
        await trio.lowlevel.checkpoint()
        return self._pool.statistics()

    async def run(self) -> None:
        """Run the pool until it is stopped. A pool runs once."""
        await call_from_asyncio(self._thread, self._run_in_trio, wait_on_cancel=True)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully and return once the pool has stopped.

        As :meth:`SyncWorkerPool.stop`: running tasks get ``timeout`` seconds
        (default ``Settings.shutdown_timeout``) to finish.
        """
        if self._thread.closed:  # closing stops every running pool
            await settled(self._thread.finished)
            return
        await call_from_asyncio(
            self._thread, functools.partial(self._pool.stop, timeout), shield=True
        )

    async def _run_in_trio(self) -> None:
        with self._thread.stop_at_close(self._pool.stop):
            await self._pool.run()
