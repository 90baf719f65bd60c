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

import atexit
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, final

import trio

from . import _transactional
from ._asyncio_pool import AsyncioWorkerPool
from ._bridge import TrioThread, call_from_asyncio, settled
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

if TYPE_CHECKING:
    import psycopg

__all__ = ["AsyncioOmniQ"]

T = TypeVar("T")


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
    A change (``enqueue*``, ``cancel``, ``retry``, ``purge``, the queue
    controls) that was already handed over still completes, all or none, in
    the background thread: a cancelled ``enqueue`` may have happened. A read
    (``get_result(wait=True)`` included) is cancelled with its wait.
    """

    def __init__(self, settings: Settings | None = None, *, hooks: Iterable[Hook] = ()) -> None:
        self._async = AsyncOmniQ(settings, hooks=hooks)  # checks the settings; does no I/O
        self._codec = codec_for(self._async.settings.serializer)
        self._thread = TrioThread(owner="AsyncioOmniQ", cleanup=self._async.aclose)
        # its thread is a daemon, so that a forgotten client cannot keep the
        # interpreter alive; atexit still closes it properly
        atexit.register(self._thread.close)

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

    async def _call(self, async_fn: Callable[[], Awaitable[T]], *, shield: bool = False) -> T:
        return await call_from_asyncio(self._thread, async_fn, shield=shield)

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
        await settled(finished)
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
        connection: psycopg.AsyncConnection[Any] | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Enqueue ``func(*args, **kwargs)``; returns the task id once it is stored.

        Options as :meth:`AsyncOmniQ.enqueue`. With ``connection=`` (a
        psycopg ``AsyncConnection``), the task is written inside that
        connection's transaction, on this event loop: it exists once you
        commit, and not if you roll back (on stores that offer it; the others
        raise ``TransactionalEnqueueError``). Cancelled while waiting: see
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
            queue=queue,
            unique_key=unique_key,
            unique_for=unique_for,
            max_lost_runs=max_lost_runs,
            headers=headers,
        )
        (enqueued,) = await self.enqueue_calls([call], connection=connection)
        return enqueued.id

    async def enqueue_many(
        self, calls: Iterable[Call], *, connection: psycopg.AsyncConnection[Any] | None = None
    ) -> list[str]:
        """Enqueue several tasks in one write, all or none; returns their ids in order
        (for a call whose unique key was taken, the id of the task holding it)."""
        return [e.id for e in await self.enqueue_calls(calls, connection=connection)]

    async def enqueue_calls(
        self,
        calls: Iterable[Call],
        *,
        connection: psycopg.AsyncConnection[Any] | None = None,
        trace_context: Any = None,
    ) -> list[Enqueued]:
        """Enqueue several tasks in one write, all or none, and say per call whether it
        created a task; see :meth:`AsyncOmniQ.enqueue_calls`. ``connection=``: in
        that transaction, as for :meth:`enqueue`. ``trace_context``: see
        :meth:`AsyncOmniQ.enqueue_calls` (default: the caller's current context)."""
        calls = list(calls)  # an iterator is consumed here, not in the other thread
        if connection is None:
            tracing = self._async.tracing
            if tracing is not None and trace_context is None:
                trace_context = tracing.capture()  # this thread's, not the trio thread's
            enqueue = functools.partial(
                self._async.enqueue_calls, calls, trace_context=trace_context
            )
            return await self._call(enqueue, shield=True)
        tasks = build_tasks(
            calls, settings=self.settings, codec=self._codec, now=self._async.clock.now()
        )
        with enqueue_span(self._async.tracing, tasks, trace_context) as tasks:
            statement = _transactional.enqueue_statement(self._async.store, tasks)
            _transactional.check_connection(connection, asyncio=True)
            await self._call(self._async.open)  # the store's schema exists (or is made) first
            return await _transactional.run_statement_async(connection, statement, len(tasks))

    async def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not finished; ``False`` if it already had.

        A running task is interrupted (see :meth:`AsyncOmniQ.cancel`).
        """
        return await self._call(functools.partial(self._async.cancel, task_id), shield=True)

    async def retry(self, task_id: str) -> None:
        """Run a FAILED task again now, with fresh retry and lost-run budgets."""
        await self._call(functools.partial(self._async.retry, task_id), shield=True)

    async def retry_failed(self, func: Callable[..., Any] | str | None = None) -> int:
        """Run every FAILED task (of ``func``, if given) again; how many
        (see :meth:`AsyncOmniQ.retry_failed`)."""
        call = functools.partial(self._async.retry_failed, func)
        result: int = await self._call(call, shield=True)
        return result

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
        return await self._call(call)

    async def query_tasks(
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
        return await self._call(call)

    async def stats(self) -> StoreStats:
        """Counts of tasks by status and by queue, and the eta of the oldest due task."""
        return await self._call(self._async.stats)

    async def purge(self, older_than: float, *, include_failed: bool = False) -> int:
        """Forget finished tasks that finished more than ``older_than`` seconds ago
        (young FAILED ones are kept; see :meth:`AsyncOmniQ.purge`)."""
        call = functools.partial(self._async.purge, older_than, include_failed=include_failed)
        return await self._call(call, shield=True)

    # ---------------------------------------------------- queues, schedules, workers

    async def list_queues(self) -> list[QueueInfo]:
        """Every queue with tasks, paused or rate-limited: counts and controls."""
        return await self._call(self._async.list_queues)

    async def pause_queue(self, name: str) -> None:
        """Stop every worker from claiming tasks of queue ``name`` until :meth:`resume_queue`."""
        await self._call(functools.partial(self._async.pause_queue, name), shield=True)

    async def resume_queue(self, name: str) -> None:
        """Let workers claim from queue ``name`` again."""
        await self._call(functools.partial(self._async.resume_queue, name), shield=True)

    async def set_queue_limit(self, name: str, *, max_starts: int, per: Seconds) -> None:
        """Start at most ``max_starts`` tasks of queue ``name`` in any ``per`` seconds."""
        call = functools.partial(self._async.set_queue_limit, name, max_starts=max_starts, per=per)
        await self._call(call, shield=True)

    async def clear_queue_limit(self, name: str) -> None:
        """Remove queue ``name``'s rate limit."""
        await self._call(functools.partial(self._async.clear_queue_limit, name), shield=True)

    async def list_schedules(self) -> list[ScheduleInfo]:
        """The cron schedules worker pools run, with their last and next slots."""
        return await self._call(self._async.list_schedules)

    async def list_workers(self) -> list[WorkerInfo]:
        """The worker pools alive now (their heartbeat has not expired), in any process."""
        return await self._call(self._async.list_workers)

    # ---------------------------------------------------------------- working

    def worker(
        self,
        concurrency: int | None = None,
        poll_interval: float | None = None,
        *,
        queues: Iterable[str] | Mapping[str, int | None] | None = None,
        schedules: Iterable[Schedule] | None = None,
    ) -> AsyncioWorkerPool:
        """A worker pool on this queue (not yet running); see :class:`AsyncioWorkerPool`
        and, for ``queues`` and ``schedules``, :meth:`AsyncOmniQ.worker`."""
        pool = self._async.worker(concurrency, poll_interval, queues=queues, schedules=schedules)
        return AsyncioWorkerPool(self._thread, pool)
