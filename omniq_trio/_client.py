"""``AsyncOmniQ``: enqueue tasks, read their results, make worker pools."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from types import TracebackType
from typing import Any, Self, final

import attrs
import trio

from ._call import Call, Eta, Seconds
from ._clock import DEFAULT_CLOCK, Clock
from ._codec import codec_for
from ._functions import func_path
from ._hook_delivery import HookDelivery
from ._registry import build_tasks
from ._retry import retry_failed
from ._schedule import Schedule, check_schedules
from ._tracing import Tracing, tracing_for
from ._validate import check_int, check_queue_name, check_seconds, parse_queue_caps
from .config import Settings
from .errors import ConfigError, TaskNotFoundError, TaskOptionError, TransactionalEnqueueError
from .hooks import Hook, TaskEnqueued
from .models import (
    Enqueued,
    QueueInfo,
    RateLimit,
    ScheduleInfo,
    Task,
    TaskPage,
    TaskResult,
    TaskStatus,
    WorkerInfo,
)
from .store import Change, Store, StoreStats
from .store._factory import store_for
from .worker import WorkerPool

__all__ = ["AsyncOmniQ"]

_PURGED_WHILE_WAITING = (
    "purged while get_result waited for it: it finished, then outlived result_ttl "
    "before the wait looked again; raise Settings.result_ttl to keep results longer"
)


@final
class AsyncOmniQ:
    """The task queue, for trio code.

    ``AsyncOmniQ(settings)`` does no I/O; the store opens on first use (or on
    ``async with``). Close it with ``await omniq.aclose()`` or by leaving the
    ``async with`` block. Pass ``store=`` to use a store you created and own
    (it is then not closed here). ``hooks`` see the tasks it enqueues and the
    runs of its worker pools (see :mod:`omniq_trio.hooks`).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        hooks: Iterable[Hook] = (),
    ) -> None:
        self.settings = Settings.from_env() if settings is None else settings
        if not isinstance(self.settings, Settings):
            raise ConfigError(f"AsyncOmniQ takes a Settings, got {self.settings!r}")
        self._store = store_for(self.settings) if store is None else store
        self._owns_store = store is None
        self._clock = clock or DEFAULT_CLOCK
        self._codec = codec_for(self.settings.serializer)
        self._open = False
        self._open_lock = trio.Lock()
        self._hooks = HookDelivery(hooks)
        self._tracing = tracing_for(self.settings)

    @property
    def store(self) -> Store:
        """The store tasks live in."""
        return self._store

    @property
    def clock(self) -> Clock:
        """Where this client's wall-clock times come from (virtual under trio's MockClock)."""
        return self._clock

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The hooks this client (and the pools it makes from now on) delivers events to."""
        return self._hooks.hooks

    @property
    def tracing(self) -> Tracing | None:
        """What makes its OpenTelemetry spans (``Settings.tracing``); ``None`` when off."""
        return self._tracing

    def add_hook(self, hook: Hook) -> None:
        """Deliver events to ``hook`` from now on: the tasks this client enqueues, and
        the runs of the worker pools it makes afterwards."""
        self._hooks.add(hook)

    async def open(self) -> None:
        """Open the store, if it is not open yet (every method does this for you)."""
        if self._open:
            await trio.lowlevel.checkpoint()
            return
        await self._opened()

    async def _opened(self) -> None:
        """Open the store unless it is open. Not a checkpoint when it is: the methods
        that call this go on to a store verb, which is one (one scheduler trip less
        per call on the hot path)."""
        if self._open:
            return
        async with self._open_lock:
            if not self._open:
                await self._store.open()
                self._open = True

    async def aclose(self) -> None:
        """Close the store if this client opened it. Worker pools must have stopped.

        Async hooks get a few seconds to take the events still waiting for them."""
        await self._hooks.aclose()
        if self._open and self._owns_store:
            self._open = False
            await self._store.aclose()
        else:
            await trio.lowlevel.checkpoint()

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
        connection: Any = None,
        task_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Enqueue ``func(*args, **kwargs)`` and return the task id once it is stored.

        ``func`` is a module-level function or ``"module:qualname"``; a
        function object is registered, so workers in this process run it.
        Options: ``eta`` (aware datetime or epoch seconds) or ``delay``
        (seconds) for when it may run; ``interval`` to repeat it;
        ``max_retries`` and ``timeout``; ``priority`` (higher first, default
        0); ``retry_on_timeout``; ``queue`` (default ``"default"``);
        ``unique_key``/``unique_for`` (while a task with the key has not
        finished, or finished less than ``unique_for`` seconds ago, nothing new
        is created and that task's id is returned); ``max_lost_runs``;
        ``headers`` (small string metadata). Options left unset come from the
        function's ``@omniq_trio.task(...)`` when ``func`` is the function,
        then from Settings. These names are reserved
        (:data:`RESERVED_OPTIONS`): a keyword argument *for the task* with one of
        them goes in ``task_kwargs={...}``. Arguments must be JSON data (unless
        ``serializer="pickle"``), at most ``Settings.max_task_bytes`` stored; if
        not, ``SerializationError`` (``TaskTooLargeError``) is raised and
        nothing is stored. :meth:`enqueue_calls` also says whether each call
        created a task.
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

    async def enqueue_many(self, calls: Iterable[Call], *, connection: Any = None) -> list[str]:
        """Enqueue several tasks in one write, all or none; returns their ids in order
        (for a call whose unique key was taken, the id of the task holding it)."""
        return [e.id for e in await self.enqueue_calls(calls, connection=connection)]

    async def enqueue_calls(
        self, calls: Iterable[Call], *, connection: Any = None, trace_context: Any = None
    ) -> list[Enqueued]:
        """Enqueue several tasks in one write, all or none, and say per call what was
        done: ``Enqueued(id, created)``; ``created`` is ``False`` when a task holding
        the call's unique key exists (``id`` is then that task's).

        With ``Settings.tracing``, the enqueue span is a child of ``trace_context``
        (an OpenTelemetry ``Context``; default: the current one), for a caller that
        hands the call to trio from another thread, as ``OmniQ`` does."""
        tasks = self._build(calls)
        if connection is not None:
            raise TransactionalEnqueueError(
                "connection= (enqueue inside your own database transaction) needs the "
                "PostgreSQL store; the memory and file stores have no transactions to join"
            )
        await self._opened()
        if self._tracing is None:
            enqueued = await self._store.enqueue(tasks)
        else:
            with self._tracing.enqueue(tasks, trace_context) as (tasks, span):
                enqueued = await self._store.enqueue(tasks)
                span.stored(enqueued)
        if self._hooks:
            for task, done in zip(tasks, enqueued, strict=True):
                if done.created:
                    self._hooks.emit(TaskEnqueued(task))
        return enqueued

    def _build(self, calls: Iterable[Call]) -> list[Task]:
        return build_tasks(calls, settings=self.settings, codec=self._codec, now=self._clock.now())

    async def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not finished; ``False`` if it already had.

        A running task is interrupted: at once in this process, and within a
        bounded time in another (see the cancelling how-to).
        """
        await self._opened()
        return await self._store.cancel(task_id, at=self._clock.now())

    async def retry(self, task_id: str) -> None:
        """Run a FAILED task again now, with fresh retry and lost-run budgets."""
        await self._opened()
        await self._store.retry(task_id, at=self._clock.now())

    async def retry_failed(self, func: Callable[..., Any] | str | None = None) -> int:
        """Run every FAILED task (of function ``func``, if given) again now, as
        :meth:`retry` does; returns how many. A task retried, purged or blocked by its
        unique key meanwhile is skipped."""
        return await retry_failed(self, func)

    # ---------------------------------------------------------------- reading

    async def get_result(
        self, task_id: str, wait: bool = False, timeout: float | None = None
    ) -> TaskResult | None:
        """The task's result, or ``None`` while it has not finished.

        With ``wait=True``, wait until it has (at most ``timeout`` seconds,
        then ``trio.TooSlowError``). Raises ``TaskNotFoundError`` for an
        unknown id, and for a task purged while this waited (it finished and
        outlived ``result_ttl`` before the wait looked again; the message says so).
        For a repeating task, the result of its latest run.
        """
        await self._opened()
        found = False  # the task existed at an earlier look
        with trio.fail_after(timeout) if wait and timeout is not None else nullcontext():
            while True:
                seen = self._store.change_version(Change.FINISHED)
                try:
                    result = await self._store.get_result(task_id)
                except TaskNotFoundError:
                    if not found:
                        raise
                    # it finished and was purged (older than result_ttl) before this
                    # wait looked again: its result is gone
                    raise TaskNotFoundError(task_id, _PURGED_WHILE_WAITING) from None
                found = True
                if result is not None:
                    return attrs.evolve(result, value=self._codec.decode_value(result.value))
                if not wait:
                    return None
                deadline = trio.current_time() + self.settings.poll_interval
                await self._store.wait_for_change(Change.FINISHED, seen, deadline)

    async def get_task(self, task_id: str) -> Task:
        """The task's current state; raises ``TaskNotFoundError``."""
        await self._opened()
        return await self._store.get_task(task_id)

    async def list_tasks(
        self,
        status: TaskStatus | str | None = None,
        limit: int | None = None,
        *,
        queue: str | None = None,
        func: Callable[..., Any] | str | None = None,
    ) -> list[Task]:
        """Tasks in enqueue order, optionally of one status, queue or function, at most
        ``limit``. Each task reads like a dict too: ``task["status"] == TaskStatus.RUNNING``.
        For large stores, page through them with :meth:`query_tasks`."""
        page = await self.query_tasks(status, queue=queue, func=func, limit=limit)
        return page.tasks

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
        """One page of tasks matching every filter given: ``status`` (one or several),
        ``queue``, ``func`` (a function or its path), ``id_prefix``; ``limit`` per page;
        pass a page's ``next_cursor`` as ``cursor`` for the next one."""
        statuses = _statuses(status)
        if limit is not None:
            check_int(limit, name="limit", error=TaskOptionError, minimum=0)
        if queue is not None:
            check_queue_name(queue, error=TaskOptionError)
        path = None if func is None else func_path(func)
        for name, value in (("id_prefix", id_prefix), ("cursor", cursor)):
            if value is not None and not isinstance(value, str):
                raise TaskOptionError(f"{name} must be a string, got {value!r}")
        await self._opened()
        return await self._store.list_tasks(
            status=statuses,
            queue=queue,
            func=path,
            id_prefix=id_prefix,
            limit=limit,
            cursor=cursor,
            newest_first=bool(newest_first),
        )

    async def stats(self) -> StoreStats:
        """Counts of tasks by status and by queue, and the eta of the oldest due task."""
        await self._opened()
        return await self._store.stats(now=self._clock.now())

    async def purge(self, older_than: float, *, include_failed: bool = False) -> int:
        """Forget finished tasks that finished more than ``older_than`` seconds ago.

        FAILED tasks younger than ``Settings.failed_ttl`` are kept (the evidence of a
        failure outlives the successes) unless ``include_failed=True``.
        """
        older_than = check_seconds(older_than, name="older_than", error=TaskOptionError)
        await self._opened()
        now = self._clock.now()
        failed_age = older_than if include_failed else max(older_than, self.settings.failed_ttl)
        return await self._store.purge(
            finished_before=now - older_than, failed_before=now - failed_age
        )

    # ---------------------------------------------------- queues, schedules, workers

    async def list_queues(self) -> list[QueueInfo]:
        """Every queue with tasks, paused or rate-limited: counts and controls."""
        await self._opened()
        return await self._store.list_queues()

    async def pause_queue(self, name: str) -> None:
        """Stop every worker of every process from claiming tasks of queue ``name``
        (running ones finish) until :meth:`resume_queue`."""
        check_queue_name(name, error=TaskOptionError, name="queue name")
        await self._opened()
        await self._store.pause_queue(name, paused=True)

    async def resume_queue(self, name: str) -> None:
        """Let workers claim from queue ``name`` again."""
        check_queue_name(name, error=TaskOptionError, name="queue name")
        await self._opened()
        await self._store.pause_queue(name, paused=False)

    async def set_queue_limit(self, name: str, *, max_starts: int, per: Seconds) -> None:
        """Start at most ``max_starts`` tasks of queue ``name`` in any ``per`` seconds,
        across every worker of the store (an external API's quota, say)."""
        check_queue_name(name, error=TaskOptionError, name="queue name")
        limit = RateLimit(
            check_int(max_starts, name="max_starts", error=TaskOptionError, minimum=1),
            check_seconds(per, name="per", error=TaskOptionError, allow_zero=False),
        )
        await self._opened()
        await self._store.set_queue_limit(name, limit)

    async def clear_queue_limit(self, name: str) -> None:
        """Remove queue ``name``'s rate limit."""
        check_queue_name(name, error=TaskOptionError, name="queue name")
        await self._opened()
        await self._store.set_queue_limit(name, None)

    async def list_schedules(self) -> list[ScheduleInfo]:
        """The cron schedules worker pools run, with their last and next slots."""
        await self._opened()
        return await self._store.list_schedules()

    async def list_workers(self) -> list[WorkerInfo]:
        """The worker pools alive now (their heartbeat has not expired), in any process."""
        await self._opened()
        return await self._store.list_workers(now=self._clock.now())

    # ---------------------------------------------------------------- working

    def worker(
        self,
        concurrency: int | None = None,
        poll_interval: float | None = None,
        *,
        queues: Iterable[str] | Mapping[str, int | None] | None = None,
        schedules: Iterable[Schedule] | None = None,
    ) -> WorkerPool:
        """A worker pool on this queue (not yet running).

        ``concurrency`` (default ``Settings.concurrency``) tasks run at once;
        ``poll_interval`` (default ``Settings.poll_interval``) bounds how long
        it waits before looking for work other processes added.

        ``queues`` (default ``Settings.queues``; empty: every queue) names the
        queues it claims from, in (priority, eta, enqueue) order across them
        (list order is no priority): ``["emails", "default"]``; a mapping caps
        each queue's running tasks, all within ``concurrency``:
        ``{"emails": 2, "default": None}`` (``None``: no cap of its own).

        ``schedules`` are the cron :class:`~omniq_trio.Schedule` s it fires
        (default: every ``Schedule`` defined at module level in the modules of
        ``Settings.imports``; ``[]``: none). A bad queue name or cap raises
        ``ConfigError``, a bad schedule ``ScheduleError``.
        """
        overrides: dict[str, Any] = {}
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        if poll_interval is not None:
            overrides["poll_interval"] = poll_interval
        if queues is not None:
            caps = parse_queue_caps(queues, error=ConfigError)
            if not caps:
                raise ConfigError(
                    f"queues={queues!r} names no queue, so the pool would claim nothing; "
                    "leave it out to claim from every queue"
                )
            overrides["queues"] = caps
        settings = self.settings.evolve(**overrides) if overrides else self.settings
        checked = None
        if schedules is not None:
            checked = check_schedules(schedules)
            now = self._clock.now()
            for schedule in checked:  # arguments the codec cannot store fail here, not later
                schedule.task_for(now, settings=settings, codec=self._codec, now=now)
        return WorkerPool(
            store=self._store,
            settings=settings,
            clock=self._clock,
            codec=self._codec,
            ensure_open=self.open,
            hooks=list(self._hooks.hooks),
            tracing=self._tracing,
            queues=parse_queue_caps(settings.queues, error=ConfigError) or None,
            schedules=checked,
            enqueue=self.enqueue,
        )


def _statuses(
    status: TaskStatus | str | Iterable[TaskStatus | str] | None,
) -> TaskStatus | frozenset[TaskStatus] | None:
    if status is None:
        return None
    many = not isinstance(status, str)
    values: list[Any] = list(status) if not isinstance(status, str) else [status]
    try:
        statuses = frozenset(TaskStatus(value) for value in values)
    except (ValueError, TypeError):
        raise TaskOptionError(
            f"unknown status {status!r}; use one of " + ", ".join(s.value for s in TaskStatus)
        ) from None
    if not many:
        (one,) = statuses
        return one
    return statuses
