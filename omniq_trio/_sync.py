"""``OmniQ``: the task queue for code that does not run trio (threads, scripts, web apps).

::

    omniq = OmniQ(Settings(base_dir=Path("./omniq_data")))
    task_id = omniq.enqueue(send_email, "ada@example.com")
    workers = omniq.worker(concurrency=2)
    threading.Thread(target=workers.start, daemon=True).start()
    ...
    workers.stop(timeout=5.0)
    omniq.close()

Each ``OmniQ`` owns one background thread running ``trio.run``, in which its
:class:`AsyncOmniQ` lives. A blocking method sends its call there with
``trio.from_thread.run`` and waits for the answer, so any number of threads
can call at once; exceptions arrive in the caller's thread unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Self, TypeVar, final

import attrs
import trio

from ._call import Call, Seconds
from ._client import AsyncOmniQ
from .config import Settings
from .errors import StoreClosedError
from .models import Task, TaskResult, TaskStatus
from .store import StoreStats
from .worker import PoolStatistics, WorkerPool

__all__ = ["OmniQ", "SyncWorkerPool"]

T = TypeVar("T")

#: Name of the background thread, so that it is easy to tell apart in a dump.
THREAD_NAME: Final = "omniq-trio"


def _not_from_trio(what: str) -> None:
    # trio.from_thread would refuse too, with a message that does not say what to do
    if trio.lowlevel.in_trio_run():
        raise RuntimeError(
            f"OmniQ.{what}() blocks, so it cannot be called from trio code (it would stall "
            "the event loop, or deadlock inside OmniQ's own thread); use AsyncOmniQ there, "
            "or trio.to_thread.run_sync"
        )


@final
class OmniQ:
    """The task queue, blocking: the methods of :class:`AsyncOmniQ`, callable from any thread.

    Creating one starts its background thread; ``close()`` (or leaving a
    ``with`` block) stops its running worker pools, closes the store and ends
    the thread. One left open is closed when the interpreter exits.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._async = AsyncOmniQ(settings)  # checks the settings; does no I/O
        self._lock = threading.Lock()
        self._closed = False
        self._loop_error: Exception | None = None
        # Touched only in the background thread:
        self._closing = False
        self._close_requested = trio.Event()
        self._calls: set[trio.CancelScope] = set()
        self._calls_done = trio.Event()
        self._running_pools: set[SyncWorkerPool] = set()

        started: queue.SimpleQueue[trio.lowlevel.TrioToken | Exception] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._thread_main, args=(started,), name=THREAD_NAME, daemon=True
        )
        self._thread.start()
        token = started.get()
        if isinstance(token, Exception):
            self._thread.join()
            raise token
        self._token = token
        # The thread is a daemon so that a forgotten OmniQ cannot keep the
        # interpreter alive; atexit still closes it properly.
        atexit.register(self.close)

    @property
    def settings(self) -> Settings:
        """The settings this queue was made with."""
        return self._async.settings

    # ------------------------------------------------------- the background thread

    def _thread_main(self, started: queue.SimpleQueue[trio.lowlevel.TrioToken | Exception]) -> None:
        try:
            trio.run(self._loop, started)
        except Exception as exc:  # handed to the constructor or close(), which raise it
            self._loop_error = exc
            started.put(exc)  # unread once the constructor has its token

    async def _loop(self, started: queue.SimpleQueue[trio.lowlevel.TrioToken | Exception]) -> None:
        started.put(trio.lowlevel.current_trio_token())
        await self._close_requested.wait()
        self._closing = True
        async with trio.open_nursery() as nursery:
            for pool in list(self._running_pools):
                nursery.start_soon(pool._stop_in_trio, None)
        if self._calls:
            for scope in self._calls:
                scope.cancel()
            await self._calls_done.wait()
        await self._async.aclose()

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        if self._closing:
            raise StoreClosedError("this OmniQ is closed")
        with trio.CancelScope() as scope:
            self._calls.add(scope)
            try:
                return await call()
            finally:
                self._calls.discard(scope)
                if self._closing and not self._calls:
                    self._calls_done.set()
        raise StoreClosedError("this OmniQ was closed while the call was waiting")

    def _run(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call()`` in the background thread and wait for its outcome."""
        _not_from_trio(what)
        if self._closed:
            raise StoreClosedError("this OmniQ is closed")
        try:
            return trio.from_thread.run(self._guarded, call, trio_token=self._token)
        except trio.RunFinishedError:
            raise StoreClosedError("this OmniQ is closed") from None

    def _run_sync(self, what: str, fn: Callable[[], T]) -> T:
        _not_from_trio(what)
        if self._closed:
            raise StoreClosedError("this OmniQ is closed")
        try:
            return trio.from_thread.run_sync(fn, trio_token=self._token)
        except trio.RunFinishedError:
            raise StoreClosedError("this OmniQ is closed") from None

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop running worker pools (gracefully, as ``workers.stop()``), close the
        store and end the background thread. Calling it again is a no-op.

        A call still waiting in another thread (``get_result(wait=True)``) raises
        ``StoreClosedError``.
        """
        _not_from_trio("close")
        with self._lock:
            first, self._closed = not self._closed, True
        if first:
            atexit.unregister(self.close)
            with contextlib.suppress(trio.RunFinishedError):  # the loop already ended
                trio.from_thread.run_sync(self._close_requested.set, trio_token=self._token)
        self._thread.join()
        if first and self._loop_error is not None:
            raise self._loop_error

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -------------------------------------------------------------- producing

    def enqueue(
        self,
        func: Callable[..., Any] | str,
        /,
        *args: Any,
        eta: Any = None,
        delay: Seconds | None = None,
        interval: Seconds | None = None,
        max_retries: int | None = None,
        timeout: Seconds | None = None,
        priority: int | None = None,
        retry_on_timeout: bool | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Enqueue ``func(*args, **kwargs)``; see :meth:`AsyncOmniQ.enqueue`."""
        call = functools.partial(
            self._async.enqueue,
            func,
            *args,
            eta=eta,
            delay=delay,
            interval=interval,
            max_retries=max_retries,
            timeout=timeout,
            priority=priority,
            retry_on_timeout=retry_on_timeout,
            task_kwargs=task_kwargs,
            **kwargs,
        )
        return self._run("enqueue", call)

    def enqueue_many(self, calls: Iterable[Call]) -> list[str]:
        """Enqueue several tasks in one write, all or none; see :meth:`AsyncOmniQ.enqueue_many`."""
        calls = list(calls)  # an iterator is consumed here, not in the other thread
        return self._run("enqueue_many", functools.partial(self._async.enqueue_many, calls))

    def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not finished; ``False`` if it already had."""
        return self._run("cancel", functools.partial(self._async.cancel, task_id))

    def retry(self, task_id: str) -> None:
        """Run a FAILED task again now, with a fresh retry budget."""
        self._run("retry", functools.partial(self._async.retry, task_id))

    # ---------------------------------------------------------------- reading

    def get_result(
        self, task_id: str, wait: bool = False, timeout: float | None = None
    ) -> TaskResult | None:
        """The task's result, or ``None`` while it has not finished; see
        :meth:`AsyncOmniQ.get_result` (``wait``, ``timeout``)."""
        call = functools.partial(self._async.get_result, task_id, wait=wait, timeout=timeout)
        return self._run("get_result", call)

    def get_task(self, task_id: str) -> Task:
        """The task's current state; raises ``TaskNotFoundError``."""
        return self._run("get_task", functools.partial(self._async.get_task, task_id))

    def list_tasks(
        self, status: TaskStatus | str | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks in enqueue order, optionally of one status, at most ``limit``."""
        call = functools.partial(self._async.list_tasks, status=status, limit=limit)
        return self._run("list_tasks", call)

    def stats(self) -> StoreStats:
        """Counts of tasks by status and the oldest waiting task's enqueue time."""
        return self._run("stats", self._async.stats)

    def purge(self, older_than: float) -> int:
        """Forget finished tasks that finished more than ``older_than`` seconds ago."""
        return self._run("purge", functools.partial(self._async.purge, older_than))

    # ---------------------------------------------------------------- working

    def worker(
        self, concurrency: int | None = None, poll_interval: float | None = None
    ) -> SyncWorkerPool:
        """A worker pool on this queue (not yet running); see :class:`SyncWorkerPool`."""
        make = functools.partial(self._async.worker, concurrency, poll_interval)
        return SyncWorkerPool(self, self._run_sync("worker", make))


@final
@attrs.define(eq=False)
class SyncWorkerPool:
    """A :class:`WorkerPool` driven from threads: ``start()`` blocks until it stops.

    ``threading.Thread(target=workers.start).start()`` runs it; ``workers.stop()``
    from any other thread stops it (DESIGN.md's stop protocol) and returns once
    it has stopped. Its tasks run in the OmniQ's background thread.
    """

    _omniq: OmniQ
    _pool: WorkerPool
    #: set by start() in the caller's thread, before the run reaches trio
    _start_requested: bool = False
    #: set in the background thread when the run has ended
    _done: trio.Event = attrs.field(factory=trio.Event)
    #: set when start() has returned to its caller's thread
    _returned: threading.Event = attrs.field(factory=threading.Event)

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

    def statistics(self) -> PoolStatistics:
        """A snapshot of the pool's counters."""
        if self._omniq._closed:  # the pool has stopped: its figures no longer move
            return self._pool.statistics()
        return self._omniq._run_sync("statistics", self._pool.statistics)

    def start(self) -> None:
        """Run the pool; block until it has stopped. A pool runs once.

        Ctrl-C in the thread blocked here stops the pool gracefully (a second
        Ctrl-C: at once) before ``KeyboardInterrupt`` is raised.
        """
        self._start_requested = True
        try:
            self._omniq._run("start", self._run_in_trio)
        except KeyboardInterrupt:
            try:
                self._stop(None)
            except KeyboardInterrupt:
                self._stop(0)
            raise
        finally:
            self._returned.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully and return once the pool has stopped.

        No new tasks are claimed; running tasks get ``timeout`` seconds
        (default ``Settings.shutdown_timeout``) to finish, then go back to the
        queue uncharged. Fine to call before ``start()``, after the pool has
        stopped, or again (say with ``timeout=0`` to stop now). When it
        returns, ``start()`` has returned too, so joining its thread is immediate.
        """
        self._stop(timeout)
        if self._start_requested:
            self._returned.wait()

    def _stop(self, timeout: float | None) -> None:
        if self._omniq._closed:
            _not_from_trio("stop")
            self._omniq._thread.join()  # closing stops every pool before the thread ends
        else:
            self._omniq._run("stop", functools.partial(self._stop_in_trio, timeout))

    async def _run_in_trio(self) -> None:
        try:
            if self._omniq._closing:
                raise StoreClosedError("this OmniQ is closed")
            self._omniq._running_pools.add(self)
            try:
                await self._pool.run()
            finally:
                self._omniq._running_pools.discard(self)
        finally:
            self._done.set()

    async def _stop_in_trio(self, timeout: float | None) -> None:
        await self._pool.stop(timeout)
        # start() may have been called but not have reached trio yet: once it
        # does, the run ends at once, and stop() returns after that.
        if self._start_requested:
            await self._done.wait()
