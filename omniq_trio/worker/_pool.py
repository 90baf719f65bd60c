"""``WorkerPool``: the supervisor of one poller, N executors and a lease keeper.

::

    run()  supervisor nursery
      ├── lease keeper          renew / reclaim / purge, until the crew is done
      └── workers nursery
            ├── recorder                   outcome_receive → Store.record, in batches
            └── executor scope             (its deadline is the stop deadline)
                  └── crew nursery
                        ├── poller         (own cancel scope) claim → task_send (buffer 0)
                        └── executor x N   task_receive → run → outcome_send

Stop (DESIGN.md): cancel the poller's scope (tasks claimed but not handed
over are released); the poller closes ``task_send``, so executors finish what
they hold and see the channel end; at the deadline the executor scope is
cancelled and stragglers are released; the recorder writes the outcomes
still in its channel; ``run()`` returns.
"""

from __future__ import annotations

import functools
import math
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Final, Literal, final

import attrs
import trio

from .._clock import Clock
from .._codec import Codec
from .._registry import import_task_modules
from ..config import Settings
from ..errors import ConfigError, StoreUnavailableError
from ..logging import log_worker_started, log_worker_stopped, worker_logger
from ..models import Task
from ..store import Store
from ._executor import CLEANUP_TIMEOUT, Finished, TaskRunner, executor
from ._health import StoreHealth
from ._leases import lease_keeper
from ._poller import poller
from ._recorder import OUTCOME_BUFFER, recorder
from ._stats import Counters, PoolStatistics

__all__ = ["WorkerPool", "new_worker_id"]

_State = Literal["new", "running", "finished"]
_NO_DEADLINE: Final = math.inf


def new_worker_id() -> str:
    """``host:pid:random``, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _check_timeout(timeout: float) -> float:
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout >= 0:
        raise ConfigError(f"stop timeout must be a number >= 0, got {timeout!r}")
    return float(timeout)


@final
@attrs.define(eq=False)
class WorkerPool:
    """Claims and runs tasks with bounded concurrency until stopped.

    Get one from ``AsyncOmniQ.worker()``. Run it with ``await workers.start()``
    (until stopped), or ``await nursery.start(workers.run)`` (returns once it is
    running); stop it with ``await workers.stop(timeout)``. A pool runs once.
    """

    _store: Store
    _settings: Settings
    _clock: Clock
    _codec: Codec
    _concurrency: int
    _poll_interval: float
    #: opens the client's store, if it is not open yet
    _ensure_open: Callable[[], Awaitable[None]]
    _worker_id: str = attrs.field(factory=new_worker_id)
    _rand: Callable[[], float] = random.random
    _poller_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _executor_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _state: _State = "new"
    _finished: trio.Event = attrs.field(factory=trio.Event)
    _counters: Counters = attrs.field(factory=Counters)
    _started_at: float | None = None
    _uptime: float | None = None
    #: why the pool gave up on its store, if it did
    _unavailable: StoreUnavailableError | None = None

    @property
    def concurrency(self) -> int:
        """How many tasks run at once at most."""
        return self._concurrency

    @property
    def poll_interval(self) -> float:
        """Longest wait between looks for due tasks (an enqueue in this process wakes it sooner)."""
        return self._poll_interval

    @property
    def settings(self) -> Settings:
        """The settings this pool runs with."""
        return self._settings

    @property
    def store(self) -> Store:
        """The store this pool runs tasks from (to reach the memory store of
        ``serve(Settings(backend="memory"))``: ``AsyncOmniQ(settings, store=pool.store)``)."""
        return self._store

    @property
    def worker_id(self) -> str:
        """The id this pool's leases are held under."""
        return self._worker_id

    @property
    def running(self) -> bool:
        """Whether ``run()`` is in progress."""
        return self._state == "running"

    def statistics(self) -> PoolStatistics:
        """A snapshot of the pool's counters."""
        c = self._counters
        if self._uptime is not None:
            uptime = self._uptime
        elif self._started_at is not None:
            uptime = trio.current_time() - self._started_at
        else:
            uptime = 0.0
        return PoolStatistics(
            tasks_processed=c.processed,
            tasks_succeeded=c.succeeded,
            tasks_failed=c.failed,
            tasks_retried=c.retried,
            tasks_released=c.released,
            tasks_running=c.running,
            uptime=uptime,
        )

    @property
    def tasks_processed(self) -> int:
        """Runs that finished, whatever their outcome."""
        return self._counters.processed

    @property
    def uptime(self) -> float:
        """Seconds the pool has been (or was) running."""
        return self.statistics().uptime

    async def start(self) -> None:
        """Run until stopped (the seed's ``workers.start()``); same as :meth:`run`."""
        await self.run()

    async def run(
        self, *, task_status: trio.TaskStatus[WorkerPool] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until stopped; with ``nursery.start`` it returns once the pool is running.

        Imports ``Settings.imports`` first (their functions are the tasks it runs,
        with those registered in this process); raises ``TaskModuleImportError``
        if one fails to import. Raises :class:`~omniq_trio.errors.StoreUnavailableError`
        if the store keeps failing for ``Settings.store_failure_timeout`` (the pool
        stops first, as ``stop(timeout=0)`` would).
        """
        if self._state != "new":
            raise RuntimeError("a WorkerPool runs once; get a new one from omniq.worker()")
        self._state = "running"
        self._started_at = trio.current_time()
        try:
            import_task_modules(self._settings.imports)
            if self._settings.allow_unregistered_tasks:
                worker_logger.warning(
                    "allow_unregistered_tasks is on: this worker imports and runs any function "
                    "a task names, so anyone who can write a task can run code here "
                    "(see the Security page of the docs)"
                )
            await self._ensure_open()
            log_worker_started(
                concurrency=self._concurrency,
                poll_interval=self._poll_interval,
                worker_id=self._worker_id,
            )
            await self._supervise(task_status)
            if self._unavailable is not None:
                raise self._unavailable
        finally:
            self._uptime = trio.current_time() - self._started_at
            self._state = "finished"
            self._finished.set()
            log_worker_stopped(
                tasks_processed=self._counters.processed,
                uptime=self._uptime,
                worker_id=self._worker_id,
            )

    async def _supervise(self, task_status: trio.TaskStatus[WorkerPool]) -> None:
        settings = self._settings
        runner = TaskRunner(
            store=self._store,
            worker_id=self._worker_id,
            settings=settings,
            clock=self._clock,
            codec=self._codec,
            limiter=trio.CapacityLimiter(self._concurrency),
            counters=self._counters,
            rand=self._rand,
        )
        health = StoreHealth(settings.store_failure_timeout)
        async with trio.open_nursery() as supervisor:
            supervisor.start_soon(health.watch, self._give_up)
            supervisor.start_soon(
                functools.partial(
                    lease_keeper,
                    store=self._store,
                    worker_id=self._worker_id,
                    lease_duration=settings.lease_duration,
                    result_ttl=settings.result_ttl,
                    failed_ttl=settings.failed_ttl,
                    clock=self._clock,
                    health=health,
                )
            )
            async with trio.open_nursery() as workers:
                outcome_send, outcome_receive = trio.open_memory_channel[Finished](OUTCOME_BUFFER)
                workers.start_soon(
                    functools.partial(
                        recorder,
                        outcome_receive,
                        store=self._store,
                        worker_id=self._worker_id,
                        counters=self._counters,
                        health=health,
                    )
                )
                with self._executor_scope:
                    async with trio.open_nursery() as crew:
                        task_send, task_receive = trio.open_memory_channel[Task](0)
                        credits = trio.Semaphore(self._concurrency)
                        async with task_receive, outcome_send:
                            for _ in range(self._concurrency):
                                crew.start_soon(
                                    executor,
                                    task_receive.clone(),
                                    outcome_send.clone(),
                                    runner,
                                    credits,
                                )
                        crew.start_soon(self._run_poller, task_send, credits, health)
                        task_status.started(self)
                # The executors are done and have closed their outcome channel
                # ends; the recorder writes what is left, within a bounded time.
                workers.cancel_scope.deadline = trio.current_time() + CLEANUP_TIMEOUT
            supervisor.cancel_scope.cancel()

    def _give_up(self, error: StoreUnavailableError) -> None:
        self._unavailable = error
        self.stop_nowait(timeout=0)

    async def _run_poller(
        self, task_send: trio.MemorySendChannel[Task], credits: trio.Semaphore, health: StoreHealth
    ) -> None:
        with self._poller_scope:
            await poller(
                task_send,
                credits=credits,
                store=self._store,
                worker_id=self._worker_id,
                poll_interval=self._poll_interval,
                lease_duration=self._settings.lease_duration,
                clock=self._clock,
                health=health,
            )

    def stop_nowait(self, timeout: float | None = None) -> None:
        """Begin a stop without waiting for it (see :meth:`stop`). Call it from trio."""
        timeout = self._settings.shutdown_timeout if timeout is None else _check_timeout(timeout)
        self._poller_scope.cancel()
        self._executor_scope.deadline = min(
            self._executor_scope.deadline, trio.current_time() + timeout
        )

    async def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully and wait until the pool has stopped.

        No new tasks are claimed; running tasks get ``timeout`` seconds
        (default ``Settings.shutdown_timeout``) to finish, then are cancelled
        and go back to the queue uncharged. Calling it again (say with
        ``timeout=0`` to stop at once), before the pool runs, or after it has
        stopped is fine. Do not await it from inside one of this pool's own
        tasks (that task would wait for itself); use :meth:`stop_nowait`.
        """
        self.stop_nowait(timeout)
        if self._state == "running":
            await self._finished.wait()
        else:
            await trio.lowlevel.checkpoint()
