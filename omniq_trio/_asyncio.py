"""``AsyncioOmniQ``: the task queue for asyncio code (FastAPI, Starlette, aiohttp, ...).

::

    async with AsyncioOmniQ(Settings(base_dir=Path("./omniq_data"))) as omniq:
        task_id = await omniq.enqueue(send_email, "ada@example.com")
        result = await omniq.get_result(task_id, wait=True, timeout=10)

The store lives in a background thread running trio
(:class:`~omniq_trio._bridge.TrioThread`, as for :class:`OmniQ`). A method
hands its call to that thread and awaits an asyncio future that the thread
settles with ``loop.call_soon_threadsafe``, so the event loop never waits on
the store, not even while it opens.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, final

import attrs
import trio

from . import _transactional
from ._bridge import TrioThread
from ._call import Call, Seconds
from ._client import AsyncOmniQ
from ._codec import codec_for
from .config import Settings
from .models import Task, TaskResult, TaskStatus
from .store import StoreStats
from .worker import PoolStatistics, WorkerPool

if TYPE_CHECKING:
    import psycopg

__all__ = ["AsyncioOmniQ", "AsyncioWorkerPool"]

T = TypeVar("T")


async def _settled(future: concurrent.futures.Future[T]) -> T:
    """Await a future settled in another thread, without blocking the loop.

    Unlike ``asyncio.wrap_future``, cancelling the wait leaves ``future`` alone.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[T] = loop.create_future()

    def copy() -> None:  # in the loop
        if waiter.done():  # the awaiting task was cancelled
            return
        if future.cancelled():
            waiter.cancel()
        elif (exc := future.exception()) is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(future.result())

    def on_done(_: concurrent.futures.Future[T]) -> None:  # in the thread that settled it
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(copy)

    future.add_done_callback(on_done)
    return await waiter


async def _call_in(
    thread: TrioThread, async_fn: Callable[[], Awaitable[T]], *, shield: bool = False
) -> T:
    """Await ``async_fn()`` run in ``thread``; cancelling the wait cancels the call
    (unless it is shielded)."""
    ready = thread.start()
    if not ready.done():
        await _settled(ready)
    submitted = thread.submit(async_fn, shield=shield)
    try:
        return await _settled(submitted.future)
    except asyncio.CancelledError:
        submitted.cancel()
        raise


@final
class AsyncioOmniQ:
    """The task queue, for asyncio code: the methods of :class:`AsyncOmniQ`, as coroutines.

    ``AsyncioOmniQ(settings)`` does no I/O and starts no thread;
    ``async with`` (or the first call) starts its background trio thread and
    opens the store there, and leaving the block (``await omniq.aclose()``)
    stops its running worker pools, closes the store and ends the thread.
    One left open is closed when the interpreter exits. One instance may be
    used from any number of tasks, and from more than one event loop.

    **Cancellation.** Cancelling a task awaiting a method (``task.cancel()``,
    ``asyncio.timeout``, a client that hung up) stops the wait at once.
    A change (``enqueue``, ``enqueue_many``, ``cancel``, ``retry``,
    ``purge``) that was already handed over still completes, all or none, in
    the background thread: a cancelled ``enqueue`` may have happened. A read
    (``get_result(wait=True)`` included) is cancelled with its wait.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._async = AsyncOmniQ(settings)  # checks the settings; does no I/O
        self._codec = codec_for(self._async.settings.serializer)
        self._thread = TrioThread(owner="AsyncioOmniQ", cleanup=self._async.aclose)
        # its thread is a daemon, so that a forgotten client cannot keep the
        # interpreter alive; atexit still closes it properly
        atexit.register(self._thread.close)

    @property
    def settings(self) -> Settings:
        """The settings this queue was made with."""
        return self._async.settings

    async def _call(self, async_fn: Callable[[], Awaitable[T]], *, shield: bool = False) -> T:
        return await _call_in(self._thread, async_fn, shield=shield)

    # ---------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Start the background thread and open the store, if not done yet
        (every method does this for you)."""
        await self._call(self._async.open, shield=True)

    async def aclose(self) -> None:
        """Stop running worker pools (gracefully, as ``workers.stop()``), close the
        store and end the background thread. Calling it again is fine.

        Calls still waiting (``get_result(wait=True)``) raise
        ``StoreClosedError``; changes under way finish first. Cancelling
        ``aclose`` stops the wait, not the closing.
        """
        first, finished = self._thread.request_close()
        if first:
            atexit.unregister(self._thread.close)
        await _settled(finished)
        self._thread.join()  # trio's run has returned: the thread is ending

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -------------------------------------------------------------- producing

    async def enqueue(
        self,
        func: Callable[..., Any] | str,
        /,
        *args: Any,
        eta: Any = None,
        delay: Seconds | None = None,
        interval: Seconds | None = None,
        max_retries: int | None = None,
        timeout: Seconds | None = None,
        priority: int = 0,
        retry_on_timeout: bool = False,
        connection: psycopg.AsyncConnection[Any] | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Enqueue ``func(*args, **kwargs)``; returns the task id once it is stored.

        Options as :meth:`AsyncOmniQ.enqueue`. With ``connection=`` (a
        psycopg ``AsyncConnection``), the task is written inside that
        connection's transaction, on this event loop: it exists once you
        commit, and not if you roll back (PostgreSQL store only; on the other
        stores ``TransactionalEnqueueError``). Cancelled while waiting: see
        the class docstring.
        """
        if task_kwargs is not None:
            kwargs = {**kwargs, **task_kwargs}
        call = Call(
            func,
            args,
            kwargs,
            eta=eta,
            delay=delay,
            interval=interval,
            max_retries=max_retries,
            timeout=timeout,
            priority=priority,
            retry_on_timeout=retry_on_timeout,
        )
        (task_id,) = await self.enqueue_many([call], connection=connection)
        return task_id

    async def enqueue_many(
        self,
        calls: Iterable[Call],
        *,
        connection: psycopg.AsyncConnection[Any] | None = None,
    ) -> list[str]:
        """Enqueue several tasks in one write, all or none; returns their ids in order.

        ``connection=``: in that transaction, as for :meth:`enqueue`.
        """
        calls = list(calls)  # an iterator is consumed here, not in the other thread
        if connection is None:
            return await self._call(functools.partial(self._async.enqueue_many, calls), shield=True)
        now = self._async.clock.now()
        tasks = _transactional.build_tasks(
            calls, settings=self.settings, codec=self._codec, now=now
        )
        statement = _transactional.enqueue_statement(self._async.store, tasks)
        _transactional.check_connection(connection, asyncio=True)
        return await _transactional.run_statement_async(connection, statement, len(tasks))

    async def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not finished; ``False`` if it already had."""
        return await self._call(functools.partial(self._async.cancel, task_id), shield=True)

    async def retry(self, task_id: str) -> None:
        """Run a FAILED task again now, with a fresh retry budget."""
        await self._call(functools.partial(self._async.retry, task_id), shield=True)

    # ---------------------------------------------------------------- reading

    async def get_result(
        self, task_id: str, wait: bool = False, timeout: float | None = None
    ) -> TaskResult | None:
        """The task's result, or ``None`` while it has not finished.

        With ``wait=True``, wait until it has; after ``timeout`` seconds,
        raise ``TimeoutError`` (the built-in, which ``asyncio.TimeoutError``
        is). Cancelling the awaiting task cancels the wait.
        """
        call = functools.partial(self._async.get_result, task_id, wait=wait, timeout=timeout)
        try:
            return await self._call(call)
        except trio.TooSlowError:
            raise TimeoutError(f"task {task_id} has not finished after {timeout} s") from None

    async def get_task(self, task_id: str) -> Task:
        """The task's current state; raises ``TaskNotFoundError``."""
        return await self._call(functools.partial(self._async.get_task, task_id))

    async def list_tasks(
        self, status: TaskStatus | str | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks in enqueue order, optionally of one status, at most ``limit``."""
        return await self._call(functools.partial(self._async.list_tasks, status, limit))

    async def stats(self) -> StoreStats:
        """Counts of tasks by status and the oldest waiting task's enqueue time."""
        return await self._call(self._async.stats)

    async def purge(self, older_than: float) -> int:
        """Forget finished tasks that finished more than ``older_than`` seconds ago."""
        return await self._call(functools.partial(self._async.purge, older_than), shield=True)

    # ---------------------------------------------------------------- working

    def worker(
        self, concurrency: int | None = None, poll_interval: float | None = None
    ) -> AsyncioWorkerPool:
        """A worker pool on this queue (not yet running); see :class:`AsyncioWorkerPool`."""
        return AsyncioWorkerPool(self._thread, self._async.worker(concurrency, poll_interval))


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
        return await _call_in(self._thread, self._snapshot)

    async def _snapshot(self) -> PoolStatistics:
        await trio.lowlevel.checkpoint()
        return self._pool.statistics()

    async def run(self) -> None:
        """Run the pool until it is stopped. A pool runs once."""
        await _call_in(self._thread, self._run_in_trio)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully and return once the pool has stopped.

        As :meth:`SyncWorkerPool.stop`: running tasks get ``timeout`` seconds
        (default ``Settings.shutdown_timeout``) to finish.
        """
        if self._thread.closed:  # closing stops every running pool
            await _settled(self._thread.finished)
            return
        await _call_in(self._thread, functools.partial(self._pool.stop, timeout), shield=True)

    async def _run_in_trio(self) -> None:
        with self._thread.stop_at_close(self._pool.stop):
            await self._pool.run()
