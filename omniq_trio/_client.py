"""``AsyncOmniQ``: enqueue tasks, read their results, make worker pools."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from types import TracebackType
from typing import Any, Self, final

import attrs
import trio

from ._call import Call, Seconds, TaskOptionError, build_task
from ._clock import DEFAULT_CLOCK, Clock
from ._codec import codec_for
from .config import Settings
from .errors import ConfigError
from .models import Task, TaskResult, TaskStatus
from .store import Change, Store, StoreStats
from .store._factory import store_for
from .worker import WorkerPool

__all__ = ["AsyncOmniQ"]


@final
class AsyncOmniQ:
    """The task queue, for trio code.

    ``AsyncOmniQ(settings)`` does no I/O; the store opens on first use (or on
    ``async with``). Close it with ``await omniq.aclose()`` or by leaving the
    ``async with`` block. Pass ``store=`` to use a store you created and own
    (it is then not closed here).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
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

    @property
    def store(self) -> Store:
        """The store tasks live in."""
        return self._store

    @property
    def clock(self) -> Clock:
        """Where this client's wall-clock times come from (virtual under trio's MockClock)."""
        return self._clock

    async def open(self) -> None:
        """Open the store, if it is not open yet (every method does this for you)."""
        if self._open:
            await trio.lowlevel.checkpoint()
            return
        async with self._open_lock:
            if not self._open:
                await self._store.open()
                self._open = True

    async def aclose(self) -> None:
        """Close the store if this client opened it. Worker pools must have stopped."""
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
        eta: Any = None,
        delay: Seconds | None = None,
        interval: Seconds | None = None,
        max_retries: int | None = None,
        timeout: Seconds | None = None,
        priority: int = 0,
        retry_on_timeout: bool = False,
        task_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> str:
        """Enqueue ``func(*args, **kwargs)`` and return the task id once it is stored.

        ``func`` is a module-level function or ``"module:qualname"``. Options:
        ``eta`` (aware datetime or epoch seconds) or ``delay`` (seconds) for
        when it may run; ``interval`` to repeat it; ``max_retries`` and
        ``timeout`` (defaults from Settings); ``priority`` (higher first);
        ``retry_on_timeout``. These names are reserved: a keyword argument
        *for the task* with one of them goes in ``task_kwargs={...}``.
        Arguments must be JSON data (unless ``serializer="pickle"``); if not,
        ``SerializationError`` is raised and nothing is stored.
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
        (task_id,) = await self.enqueue_many([call])
        return task_id

    async def enqueue_many(self, calls: Iterable[Call]) -> list[str]:
        """Enqueue several tasks in one write, all or none; returns their ids in order."""
        now = self._clock.now()
        tasks = []
        for call in calls:
            if not isinstance(call, Call):
                raise TaskOptionError(f"enqueue_many takes Call objects, got {call!r}")
            tasks.append(build_task(call, settings=self.settings, codec=self._codec, now=now))
        await self.open()
        await self._store.enqueue(tasks)
        return [task.id for task in tasks]

    async def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not finished; ``False`` if it already had.

        A running task is not interrupted, but its outcome is discarded.
        """
        await self.open()
        return await self._store.cancel(task_id, at=self._clock.now())

    async def retry(self, task_id: str) -> None:
        """Run a FAILED task again now, with a fresh retry budget."""
        await self.open()
        await self._store.retry(task_id, at=self._clock.now())

    # ---------------------------------------------------------------- reading

    async def get_result(
        self, task_id: str, wait: bool = False, timeout: float | None = None
    ) -> TaskResult | None:
        """The task's result, or ``None`` while it has not finished.

        With ``wait=True``, wait until it has (at most ``timeout`` seconds,
        then ``trio.TooSlowError``). Raises ``TaskNotFoundError`` for an
        unknown id. For a repeating task, the result of its latest run.
        """
        await self.open()
        with trio.fail_after(timeout) if wait and timeout is not None else nullcontext():
            while True:
                seen = self._store.change_version(Change.FINISHED)
                result = await self._store.get_result(task_id)
                if result is not None:
                    return attrs.evolve(result, value=self._codec.decode_value(result.value))
                if not wait:
                    return None
                deadline = trio.current_time() + self.settings.poll_interval
                await self._store.wait_for_change(Change.FINISHED, seen, deadline)

    async def get_task(self, task_id: str) -> Task:
        """The task's current state; raises ``TaskNotFoundError``."""
        await self.open()
        return await self._store.get_task(task_id)

    async def list_tasks(
        self, status: TaskStatus | str | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks in enqueue order, optionally of one status, at most ``limit``.

        Each task reads like a dict too: ``task["status"] == TaskStatus.RUNNING``.
        """
        if status is not None:
            try:
                status = TaskStatus(status)
            except ValueError:
                raise TaskOptionError(
                    f"unknown status {status!r}; use one of "
                    + ", ".join(s.value for s in TaskStatus)
                ) from None
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise TaskOptionError(f"limit must be an integer >= 0, got {limit!r}")
        await self.open()
        return await self._store.list_tasks(status=status, limit=limit)

    async def stats(self) -> StoreStats:
        """Counts of tasks by status and the oldest waiting task's enqueue time."""
        await self.open()
        return await self._store.stats()

    async def purge(self, older_than: float) -> int:
        """Forget finished tasks that finished more than ``older_than`` seconds ago."""
        if (
            isinstance(older_than, bool)
            or not isinstance(older_than, int | float)
            or older_than < 0
        ):
            raise TaskOptionError(f"older_than must be seconds >= 0, got {older_than!r}")
        await self.open()
        return await self._store.purge(finished_before=self._clock.now() - older_than)

    # ---------------------------------------------------------------- working

    def worker(
        self, concurrency: int | None = None, poll_interval: float | None = None
    ) -> WorkerPool:
        """A worker pool on this queue (not yet running).

        ``concurrency`` (default ``Settings.concurrency``) tasks run at once;
        ``poll_interval`` (default ``Settings.poll_interval``) bounds how long
        it waits before looking for work other processes added.
        """
        overrides: dict[str, Any] = {}
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        if poll_interval is not None:
            overrides["poll_interval"] = poll_interval
        settings = self.settings.evolve(**overrides) if overrides else self.settings
        return WorkerPool(
            store=self._store,
            settings=settings,
            clock=self._clock,
            codec=self._codec,
            ensure_open=self.open,
        )
