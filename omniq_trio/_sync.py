"""``OmniQ``: the task queue for code that does not run trio (threads, scripts, web apps).

::

    omniq = OmniQ(Settings(base_dir=Path("./omniq_data")))
    task_id = omniq.enqueue(send_email, "ada@example.com")
    workers = omniq.worker(concurrency=2)
    threading.Thread(target=workers.start, daemon=True).start()
    ...
    workers.stop(timeout=5.0)
    omniq.close()

Each ``OmniQ`` owns one background thread running ``trio.run``
(:class:`~omniq_trio._bridge.TrioThread`), in which its :class:`AsyncOmniQ`
lives. A blocking method hands its call to that thread and waits for the
answer, so any number of threads can call at once; exceptions arrive in the
caller's thread unchanged.
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, final

import attrs
import trio

from . import _transactional
from ._bridge import TrioThread, not_from_trio
from ._call import Call, Eta, Seconds
from ._client import AsyncOmniQ
from ._codec import codec_for
from ._registry import build_tasks
from ._schedule import Schedule
from ._tracing import enqueue_span
from .config import Settings
from .hooks import Hook
from .models import (
    Enqueued,
    QueueInfo,
    ScheduleInfo,
    Task,
    TaskPage,
    TaskResult,
    TaskStatus,
    WorkerInfo,
)
from .store import StoreStats
from .worker import PoolStatistics, WorkerPool

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy.engine
    import sqlalchemy.orm

    #: What ``connection=`` takes: the caller's connection, in its transaction.
    CallerConnection = (
        psycopg.Connection[Any] | sqlalchemy.engine.Connection | sqlalchemy.orm.Session
    )

__all__ = ["OmniQ", "SyncWorkerPool"]


@final
class OmniQ:
    """The task queue, blocking: the methods of :class:`AsyncOmniQ`, callable from any thread.

    Creating one starts its background thread; ``close()`` (or leaving a
    ``with`` block) stops its running worker pools, closes the store and ends
    the thread. One left open is closed when the interpreter exits.
    """

    def __init__(self, settings: Settings | None = None, *, hooks: Iterable[Hook] = ()) -> None:
        self._async = AsyncOmniQ(settings, hooks=hooks)  # checks the settings; does no I/O
        self._codec = codec_for(self._async.settings.serializer)
        self._thread = TrioThread(owner="OmniQ", cleanup=self._async.aclose)
        self._thread.start().result()  # raises what stopped trio from starting
        # The thread is a daemon so that a forgotten OmniQ cannot keep the
        # interpreter alive; atexit still closes it properly.
        atexit.register(self.close)

    @property
    def settings(self) -> Settings:
        """The settings this queue was made with."""
        return self._async.settings

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The hooks it delivers events to; see :attr:`AsyncOmniQ.hooks`."""
        return self._async.hooks

    def add_hook(self, hook: Hook) -> None:
        """Deliver events to ``hook`` from now on; see :meth:`AsyncOmniQ.add_hook`."""
        # a list append, atomic under the GIL: the trio thread may be delivering
        self._async.add_hook(hook)

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop running worker pools (gracefully, as ``workers.stop()``), close the
        store and end the background thread. Calling it again is a no-op.

        A call still waiting in another thread (``get_result(wait=True)``) raises
        ``StoreClosedError``.
        """
        not_from_trio("close")
        atexit.unregister(self.close)
        self._thread.close()

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
        eta: Eta | None = None,
        delay: Seconds | None = None,
        interval: Seconds | None = None,
        max_retries: int | None = None,
        timeout: Seconds | None = None,
        priority: int | None = None,
        retry_on_timeout: bool | None = None,
        queue: str | None = None,
        unique_key: str | None = None,
        unique_for: Seconds | None = None,
        max_lost_runs: int | None = None,
        headers: Mapping[str, str] | None = None,
        connection: CallerConnection | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Enqueue ``func(*args, **kwargs)``; see :meth:`AsyncOmniQ.enqueue`.

        With ``connection=`` (a psycopg ``Connection``, or a SQLAlchemy
        ``Connection`` or ``Session`` on psycopg), the task is written inside
        that connection's transaction, in this thread: it exists once you
        commit, and not if you roll back; idle workers are woken at the commit.
        On a connection in autocommit mode it commits at once. Only the
        PostgreSQL store offers it; the others raise ``TransactionalEnqueueError``.
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
            queue=queue,
            unique_key=unique_key,
            unique_for=unique_for,
            max_lost_runs=max_lost_runs,
            headers=headers,
        )
        (enqueued,) = self.enqueue_calls([call], connection=connection)
        return enqueued.id

    def enqueue_many(
        self, calls: Iterable[Call], *, connection: CallerConnection | None = None
    ) -> list[str]:
        """Enqueue several tasks in one write, all or none; see :meth:`AsyncOmniQ.enqueue_many`."""
        return [e.id for e in self.enqueue_calls(calls, connection=connection)]

    def enqueue_calls(
        self,
        calls: Iterable[Call],
        *,
        connection: CallerConnection | None = None,
        trace_context: Any = None,
    ) -> list[Enqueued]:
        """Enqueue several tasks in one write, all or none, and say per call whether it
        created a task; see :meth:`AsyncOmniQ.enqueue_calls`. ``connection=``: in that
        transaction, as for :meth:`enqueue`. ``trace_context``: see
        :meth:`AsyncOmniQ.enqueue_calls` (default: the caller's current context)."""
        calls = list(calls)  # an iterator is consumed here, not in the other thread
        if connection is None:
            tracing = self._async.tracing
            if tracing is not None and trace_context is None:
                trace_context = tracing.capture()  # this thread's, not the trio thread's
            enqueue = functools.partial(
                self._async.enqueue_calls, calls, trace_context=trace_context
            )
            return self._thread.run("enqueue_calls", enqueue)
        tasks = build_tasks(
            calls, settings=self.settings, codec=self._codec, now=self._async.clock.now()
        )
        with enqueue_span(self._async.tracing, tasks, trace_context) as tasks:
            statement = _transactional.enqueue_statement(self._async.store, tasks)
            _transactional.check_connection(connection, asyncio=False)
            self._thread.run("enqueue_calls", self._async.open)  # the schema exists (or is made)
            return _transactional.run_statement(connection, statement, len(tasks))

    def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not finished; ``False`` if it already had."""
        return self._thread.run("cancel", functools.partial(self._async.cancel, task_id))

    def retry(self, task_id: str) -> None:
        """Run a FAILED task again now, with fresh retry and lost-run budgets."""
        self._thread.run("retry", functools.partial(self._async.retry, task_id))

    def retry_failed(self, func: Callable[..., Any] | str | None = None) -> int:
        """Run every FAILED task (of ``func``, if given) again; how many
        (see :meth:`AsyncOmniQ.retry_failed`)."""
        return self._thread.run("retry_failed", functools.partial(self._async.retry_failed, func))

    # ---------------------------------------------------------------- reading

    def get_result(
        self, task_id: str, wait: bool = False, timeout: float | None = None
    ) -> TaskResult | None:
        """The task's result, or ``None`` while it has not finished; see
        :meth:`AsyncOmniQ.get_result` (``wait``, ``timeout``)."""
        call = functools.partial(self._async.get_result, task_id, wait=wait, timeout=timeout)
        return self._thread.run("get_result", call)

    def get_task(self, task_id: str) -> Task:
        """The task's current state; raises ``TaskNotFoundError``."""
        return self._thread.run("get_task", functools.partial(self._async.get_task, task_id))

    def list_tasks(
        self,
        status: TaskStatus | str | None = None,
        limit: int | None = None,
        *,
        queue: str | None = None,
        func: Callable[..., Any] | str | None = None,
    ) -> list[Task]:
        """Tasks in enqueue order, optionally of one status, queue or function, at most
        ``limit``; for large stores, page with :meth:`query_tasks`."""
        call = functools.partial(self._async.list_tasks, status, limit, queue=queue, func=func)
        return self._thread.run("list_tasks", call)

    def query_tasks(
        self,
        status: TaskStatus | str | Iterable[TaskStatus | str] | None = None,
        *,
        queue: str | None = None,
        func: Callable[..., Any] | str | None = None,
        id_prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> TaskPage:
        """One page of tasks matching every filter given; see :meth:`AsyncOmniQ.query_tasks`."""
        if status is not None and not isinstance(status, str):
            status = list(status)  # consumed here, not in the other thread
        call = functools.partial(
            self._async.query_tasks,
            status,
            queue=queue,
            func=func,
            id_prefix=id_prefix,
            limit=limit,
            cursor=cursor,
            newest_first=newest_first,
        )
        return self._thread.run("query_tasks", call)

    def stats(self) -> StoreStats:
        """Counts of tasks by status and by queue, and the eta of the oldest due task."""
        return self._thread.run("stats", self._async.stats)

    def purge(self, older_than: float, *, include_failed: bool = False) -> int:
        """Forget finished tasks that finished more than ``older_than`` seconds ago
        (young FAILED ones are kept; see :meth:`AsyncOmniQ.purge`)."""
        call = functools.partial(self._async.purge, older_than, include_failed=include_failed)
        return self._thread.run("purge", call)

    # ---------------------------------------------------- queues, schedules, workers

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with tasks, paused or rate-limited: counts and controls."""
        return self._thread.run("list_queues", self._async.list_queues)

    def pause_queue(self, name: str) -> None:
        """Stop every worker from claiming tasks of queue ``name`` until :meth:`resume_queue`."""
        self._thread.run("pause_queue", functools.partial(self._async.pause_queue, name))

    def resume_queue(self, name: str) -> None:
        """Let workers claim from queue ``name`` again."""
        self._thread.run("resume_queue", functools.partial(self._async.resume_queue, name))

    def set_queue_limit(self, name: str, *, max_starts: int, per: Seconds) -> None:
        """Start at most ``max_starts`` tasks of queue ``name`` in any ``per`` seconds."""
        call = functools.partial(self._async.set_queue_limit, name, max_starts=max_starts, per=per)
        self._thread.run("set_queue_limit", call)

    def clear_queue_limit(self, name: str) -> None:
        """Remove queue ``name``'s rate limit."""
        call = functools.partial(self._async.clear_queue_limit, name)
        self._thread.run("clear_queue_limit", call)

    def list_schedules(self) -> list[ScheduleInfo]:
        """The cron schedules worker pools run, with their last and next slots."""
        return self._thread.run("list_schedules", self._async.list_schedules)

    def list_workers(self) -> list[WorkerInfo]:
        """The worker pools alive now (their heartbeat has not expired), in any process."""
        return self._thread.run("list_workers", self._async.list_workers)

    # ---------------------------------------------------------------- working

    def worker(
        self,
        concurrency: int | None = None,
        poll_interval: float | None = None,
        *,
        queues: Iterable[str] | Mapping[str, int | None] | None = None,
        schedules: Iterable[Schedule] | None = None,
    ) -> SyncWorkerPool:
        """A worker pool on this queue (not yet running); see :class:`SyncWorkerPool`
        and, for ``queues`` and ``schedules``, :meth:`AsyncOmniQ.worker`."""
        make = functools.partial(
            self._async.worker, concurrency, poll_interval, queues=queues, schedules=schedules
        )
        return SyncWorkerPool(self._thread, self._thread.run_sync("worker", make))


@final
@attrs.define(eq=False)
class SyncWorkerPool:
    """A :class:`WorkerPool` driven from threads: ``start()`` blocks until it stops.

    ``threading.Thread(target=workers.start).start()`` runs it; ``workers.stop()``
    from any other thread stops it (DESIGN.md's stop protocol) and returns once
    it has stopped. Its tasks run in the OmniQ's background thread; closing the
    OmniQ stops it gracefully first.
    """

    _thread: TrioThread
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
        if self._thread.closed:  # the pool has stopped: its figures no longer move
            return self._pool.statistics()
        return self._thread.run_sync("statistics", self._pool.statistics)

    def start(self) -> None:
        """Run the pool; block until it has stopped. A pool runs once.

        Ctrl-C in the thread blocked here stops the pool gracefully (a second
        Ctrl-C: at once) before ``KeyboardInterrupt`` is raised.
        """
        self._start_requested = True
        try:
            self._thread.run("start", self._run_in_trio)
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
        if self._thread.closed:
            not_from_trio("stop")
            self._thread.join()  # closing stops every pool before the thread ends
        else:
            self._thread.run("stop", functools.partial(self._stop_in_trio, timeout))

    async def _run_in_trio(self) -> None:
        """Run the pool in the background thread (what ``start()`` hands over)."""
        try:
            with self._thread.stop_at_close(self._stop_in_trio):
                await self._pool.run()
        finally:
            self._done.set()

    async def _stop_in_trio(self, timeout: float | None = None) -> None:
        """Stop the pool from the background thread; returns once its run has ended."""
        await self._pool.stop(timeout)
        # start() may have been called but not have reached trio yet: once it
        # does, the run ends at once, and stop() returns after that.
        if self._start_requested:
            await self._done.wait()
