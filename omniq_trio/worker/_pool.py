"""``WorkerPool``: the supervisor of one poller, N executors, a lease keeper and a scheduler.

::

    run()  hook delivery       (only with async hooks) events → async hooks
      └── supervisor nursery
      ├── lease keeper          renew / heartbeat / reclaim / purge, until the crew is done
      ├── cancel watcher        Change.CANCELLED → cancel the runs no longer held (_cancel.py)
      ├── progress writer       report_progress → Store.set_progress, throttled
      ├── scheduler             (own cancel scope; only with schedules) cron slots → fire_schedule
      └── workers nursery
            ├── recorder                   outcome_receive → Store.record, in batches
            └── executor scope             (its deadline is the stop deadline)
                  └── crew nursery
                        ├── poller         (own cancel scope) claim → task_send (buffer 0)
                        └── executor x N   task_receive → run → outcome_send

Stop (DESIGN.md): cancel the poller's and the scheduler's scopes (tasks claimed
but not handed over are released); the poller closes ``task_send``, so executors finish what
they hold and see the channel end; at the deadline the executor scope is
cancelled and stragglers are released; the recorder writes the outcomes
still in its channel; the pool leaves the worker registry; the async hooks
get what is still buffered; ``run()`` returns.
"""

from __future__ import annotations

import functools
import math
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, Literal, final

import attrs
import trio

from .._clock import Clock
from .._codec import Codec
from .._hook_delivery import HookDelivery, check_hook, hooks_in
from .._registry import import_task_modules
from .._schedule import Schedule, schedules_in
from .._tracing import Tracing
from ..config import Settings
from ..errors import ConfigError, StoreUnavailableError
from ..hooks import Hook
from ..logging import log_worker_started, log_worker_stopped, worker_logger
from ..models import Task, WorkerInfo
from ..store import Store
from ._cancel import RunningTasks, cancel_watcher
from ._credits import Credits
from ._executor import CLEANUP_TIMEOUT, Finished, TaskRunner, cleanup_scope, executor
from ._health import StoreHealth
from ._leases import Heartbeat, lease_keeper
from ._poller import poller
from ._progress import ProgressWriter
from ._recorder import OUTCOME_BUFFER, recorder
from ._scheduler import scheduler
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
    #: opens the client's store, if it is not open yet
    _ensure_open: Callable[[], Awaitable[None]]
    #: hooks of the client that made it (then those of Settings.imports, at start)
    _hooks: list[Hook] = attrs.field(factory=list)
    _tracing: Tracing | None = None
    #: the queues it claims from and their caps (``None``: every queue, no caps)
    _queues: Mapping[str, int | None] | None = None
    #: its cron schedules (``None``: those defined at module level in ``Settings.imports``)
    _schedules: tuple[Schedule, ...] | None = None
    _worker_id: str = attrs.field(factory=new_worker_id)
    _rand: Callable[[], float] = random.random
    _poller_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _scheduler_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _executor_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _state: _State = "new"
    _finished: trio.Event = attrs.field(factory=trio.Event)
    _counters: Counters = attrs.field(factory=Counters)
    _started_at: float | None = None
    #: wall clock at the start (for the worker registry)
    _started_wall: float = 0.0
    _uptime: float | None = None
    _delivery: HookDelivery = attrs.field(factory=HookDelivery)
    #: why the pool gave up on its store, if it did
    _unavailable: StoreUnavailableError | None = None
    #: the client's ``enqueue``, for tasks' follow-ups (``current_task().enqueue``)
    _enqueue: Callable[..., Awaitable[str]] | None = None

    @property
    def concurrency(self) -> int:
        """How many tasks run at once at most."""
        return self._settings.concurrency

    @property
    def poll_interval(self) -> float:
        """Longest wait between looks for due tasks (an enqueue in this process wakes it sooner)."""
        return self._settings.poll_interval

    @property
    def queues(self) -> Mapping[str, int | None] | None:
        """The queues it claims from, each with its cap (``None``: no cap of its own);
        ``None``: every queue."""
        return None if self._queues is None else dict(self._queues)

    @property
    def schedules(self) -> tuple[Schedule, ...]:
        """The cron schedules it fires (those of ``Settings.imports`` once it runs,
        when none were given)."""
        return self._schedules or ()

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
    def hooks(self) -> tuple[Hook, ...]:
        """The hooks this pool delivers its events to (with those its task modules
        declare, once it runs)."""
        return self._delivery.hooks if self._state != "new" else tuple(self._hooks)

    def add_hook(self, hook: Hook) -> None:
        """Deliver this pool's events to ``hook`` too; before the pool runs."""
        if self._state != "new":
            raise RuntimeError("add hooks before the pool runs")
        self._hooks.append(check_hook(hook))

    def worker_info(self, now: float) -> WorkerInfo:
        """The pool's record in the worker registry, as of ``now`` (wall clock)."""
        c = self._counters
        return WorkerInfo(
            id=self._worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.concurrency,
            queues=None if self._queues is None else tuple(self._queues),
            started_at=self._started_wall,
            last_seen=now,
            expires_at=now + self._settings.lease_duration,
            running=tuple(sorted(c.running_ids)),
            succeeded=c.succeeded,
            failed=c.failed,
        )

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
            tasks_cancelled=c.cancelled,
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
        self._started_wall = self._clock.now()
        try:
            import_task_modules(self._settings.imports)
            self._delivery = HookDelivery([*self._hooks, *hooks_in(self._settings.imports)])
            if self._schedules is None:
                self._schedules = schedules_in(self._settings.imports)
            if self._settings.allow_unregistered_tasks:
                worker_logger.warning(
                    "allow_unregistered_tasks is on: this worker imports and runs any function "
                    "a task names, so anyone who can write a task can run code here "
                    "(see the Security page of the docs)"
                )
            await self._ensure_open()
            log_worker_started(
                concurrency=self.concurrency,
                poll_interval=self.poll_interval,
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
        heartbeat = Heartbeat(self._store, self.worker_info)
        async with self._delivery.delivering():
            try:
                await heartbeat.beat(self._clock.now())
                await self._run_crew(task_status, heartbeat)
            finally:
                with cleanup_scope():
                    await heartbeat.end(self._worker_id)

    async def _run_crew(
        self, task_status: trio.TaskStatus[WorkerPool], heartbeat: Heartbeat
    ) -> None:
        settings = self._settings
        runs = RunningTasks()
        progress = ProgressWriter(self._store, self._worker_id)
        runner = TaskRunner(
            store=self._store,
            worker_id=self._worker_id,
            settings=settings,
            clock=self._clock,
            codec=self._codec,
            limiter=trio.CapacityLimiter(self.concurrency),
            counters=self._counters,
            rand=self._rand,
            hooks=self._delivery,
            tracing=self._tracing,
            runs=runs,
            progress=progress,
            enqueue=self._enqueue,
            token=trio.lowlevel.current_trio_token(),
        )
        health = StoreHealth(settings.store_failure_timeout)
        async with trio.open_nursery() as supervisor:
            supervisor.start_soon(health.watch, self._give_up)
            supervisor.start_soon(progress.run)
            supervisor.start_soon(
                functools.partial(
                    cancel_watcher,
                    runs,
                    store=self._store,
                    worker_id=self._worker_id,
                    lease_duration=settings.lease_duration,
                    clock=self._clock,
                )
            )
            supervisor.start_soon(
                functools.partial(
                    lease_keeper,
                    store=self._store,
                    worker_id=self._worker_id,
                    lease_duration=settings.lease_duration,
                    result_ttl=settings.result_ttl,
                    failed_ttl=settings.failed_ttl,
                    clock=self._clock,
                    heartbeat=heartbeat,
                    hooks=self._delivery,
                    health=health,
                    runs=runs,
                )
            )
            # set once the scheduler has dealt with the slots missed before the start
            schedules_ready = trio.Event()
            if self._schedules:
                supervisor.start_soon(self._run_scheduler, self._schedules, schedules_ready)
            else:
                schedules_ready.set()
            async with trio.open_nursery() as workers:
                outcome_send, outcome_receive = trio.open_memory_channel[Finished](OUTCOME_BUFFER)
                workers.start_soon(
                    functools.partial(
                        recorder,
                        outcome_receive,
                        store=self._store,
                        worker_id=self._worker_id,
                        counters=self._counters,
                        hooks=self._delivery,
                        clock=self._clock,
                        health=health,
                    )
                )
                with self._executor_scope:
                    async with trio.open_nursery() as crew:
                        task_send, task_receive = trio.open_memory_channel[Task](0)
                        credits = Credits(self.concurrency, self._queues)
                        async with task_receive, outcome_send:
                            for _ in range(self.concurrency):
                                crew.start_soon(
                                    executor,
                                    task_receive.clone(),
                                    outcome_send.clone(),
                                    runner,
                                    credits,
                                )
                        crew.start_soon(self._run_poller, task_send, credits, health)
                        await schedules_ready.wait()
                        task_status.started(self)
                # The executors are done and have closed their outcome channel
                # ends; the recorder writes what is left, within a bounded time.
                workers.cancel_scope.deadline = trio.current_time() + CLEANUP_TIMEOUT
            supervisor.cancel_scope.cancel()

    def _give_up(self, error: StoreUnavailableError) -> None:
        self._unavailable = error
        self.stop_nowait(timeout=0)

    async def _run_scheduler(self, schedules: tuple[Schedule, ...], ready: trio.Event) -> None:
        try:
            with self._scheduler_scope:
                await scheduler(
                    schedules,
                    store=self._store,
                    settings=self._settings,
                    codec=self._codec,
                    clock=self._clock,
                    ready=ready,
                )
        finally:
            ready.set()  # stopped before it was: the pool's start need not wait

    async def _run_poller(
        self, task_send: trio.MemorySendChannel[Task], credits: Credits, health: StoreHealth
    ) -> None:
        with self._poller_scope:
            await poller(
                task_send,
                credits=credits,
                store=self._store,
                worker_id=self._worker_id,
                poll_interval=self.poll_interval,
                lease_duration=self._settings.lease_duration,
                clock=self._clock,
                health=health,
            )

    def stop_nowait(self, timeout: float | None = None) -> None:
        """Begin a stop without waiting for it (see :meth:`stop`). Call it from trio."""
        timeout = self._settings.shutdown_timeout if timeout is None else _check_timeout(timeout)
        self._poller_scope.cancel()
        self._scheduler_scope.cancel()
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
