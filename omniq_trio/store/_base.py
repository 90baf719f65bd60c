"""``Store``: the one contract every home of tasks keeps (memory, file journal, PostgreSQL).

The runtime talks to a store only through these methods; backend types (rows,
offsets, connections) never cross this boundary. ``omniq_trio.testing.check_store``
checks an implementation against the contract, and the rules every store
applies the same way live in one store-neutral module (``store/_rules.py``).

Guarantees every implementation gives:

* **Atomicity.** A method that changes tasks either makes its whole change and
  returns, or makes none and raises. Cancellation does not break this: a
  change that has started is finished (shielded) before the method returns,
  so a caller that is cancelled right after still got its answer; a caller
  cancelled before it started changed nothing.
* **Checkpoints.** Every method is a trio checkpoint (it may yield, and it
  raises ``trio.Cancelled`` if its caller is cancelled before it starts).
* **Durability.** When a changing method returns, its change is as durable as
  the store promises (for the journal: ``Settings.fsync``), except where a
  method says it is not waited for (claims, renewals, releases, progress,
  heartbeats: losing one in a crash only does what the crash does anyway).
* **Lifecycle.** Every change is checked against ``models.TRANSITIONS``;
  forbidden ones raise and change nothing.
* **Ordering.** ``claim`` hands out due tasks by priority (higher first), then
  eta (earlier first), then enqueue order, across the queues it may take from.
* **Time.** Methods take wall-clock times from the caller (``now``, ``at``) so
  that the runtime's clock, virtual in tests, is the only clock. A store that
  coordinates machines may use its own clock instead and says so.
* **After close.** Every method but ``open`` and ``aclose`` raises
  ``StoreClosedError`` on a closed store; ``aclose`` twice is fine.
"""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Self

import attrs
import trio
from trio_util import AsyncValue

from ..models import (
    Enqueued,
    Progress,
    QueueInfo,
    RateLimit,
    ScheduleInfo,
    Task,
    TaskError,
    TaskPage,
    TaskResult,
    TaskStatus,
    WorkerInfo,
)

__all__ = [
    "Change",
    "Outcome",
    "OutcomeKind",
    "Reclaimed",
    "Store",
    "StoreCapabilities",
    "StoreStats",
]


class Change(enum.Enum):
    """Kinds of change a waiter can wait for (see :meth:`Store.wait_for_change`)."""

    #: A task may have become claimable: enqueued, released, retried, requeued,
    #: or a queue was resumed or its rate limit changed.
    WORK = "work"
    #: A task finished (SUCCESS, FAILED, CANCELLED) or a repeating task completed a run.
    FINISHED = "finished"
    #: A RUNNING task was cancelled: the worker holding it should stop the run.
    CANCELLED = "cancelled"


@attrs.frozen
class StoreCapabilities:
    """What a store can do beyond the contract; ask these instead of checking its type."""

    #: Other processes may change it (journal, PostgreSQL); ``False``: every
    #: change happens in this process, so a waiter never needs to poll.
    shared: bool
    #: Changes made here wake waiters in other processes (NOTIFY, a wake-up socket).
    wakes_other_processes: bool = False
    #: ``enqueue`` can write inside the caller's own database transaction: the store
    #: offers ``enqueue_statement(tasks)`` (see ``omniq_trio._transactional``).
    transactional_enqueue: bool = False


@attrs.frozen
class StoreStats:
    """A snapshot of a store's contents."""

    #: Tasks per status (every status present, zeros included).
    counts: Mapping[TaskStatus, int]
    #: Tasks per queue and status (only queues with tasks; every status present).
    queues: Mapping[str, Mapping[TaskStatus, int]] = attrs.field(factory=dict)
    #: The earliest eta among due PENDING or RETRYING tasks: the oldest waiting
    #: task has waited since then. ``None`` when nothing is due.
    oldest_due_eta: float | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class OutcomeKind(enum.Enum):
    """How a run ended, as far as the task's state is concerned."""

    #: The run returned; the task is SUCCESS.
    SUCCESS = "success"
    #: The run raised with retries left; the task is RETRYING, due at ``eta``.
    RETRY = "retry"
    #: The run raised (or timed out) with no retry left; the task is FAILED.
    FAILURE = "failure"
    #: A repeating task's run ended (returned or raised): its result is stored
    #: and the task is PENDING again at ``eta``, its next slot.
    NEXT_RUN = "next_run"


@attrs.frozen
class Outcome:
    """How one run ended, for :meth:`Store.record`. Make one with a named constructor:
    :meth:`success`, :meth:`retry`, :meth:`failure` or :meth:`next_run`."""

    kind: OutcomeKind
    task_id: str
    worker_id: str
    #: When the run ended (wall clock).
    at: float
    #: The stored form of the return value (a run that returned).
    value: Any = None
    #: What the run raised (a run that raised).
    error: TaskError | None = None
    #: When the task is due again (RETRY, NEXT_RUN).
    eta: float | None = None

    @classmethod
    def success(cls, task_id: str, worker_id: str, at: float, value: Any = None) -> Outcome:
        """The run returned ``value`` (stored form): SUCCESS."""
        return cls(OutcomeKind.SUCCESS, task_id, worker_id, at, value)

    @classmethod
    def retry(
        cls, task_id: str, worker_id: str, at: float, error: TaskError, retry_at: float
    ) -> Outcome:
        """The run raised ``error`` with retries left: RETRYING, due at ``retry_at``."""
        return cls(OutcomeKind.RETRY, task_id, worker_id, at, None, error, retry_at)

    @classmethod
    def failure(cls, task_id: str, worker_id: str, at: float, error: TaskError) -> Outcome:
        """The run raised ``error`` with no retry left: FAILED."""
        return cls(OutcomeKind.FAILURE, task_id, worker_id, at, None, error)

    @classmethod
    def next_run(
        cls,
        task_id: str,
        worker_id: str,
        at: float,
        eta: float,
        *,
        value: Any = None,
        error: TaskError | None = None,
    ) -> Outcome:
        """A repeating task's run returned ``value`` (or raised ``error``): its
        result is stored and it is PENDING again at ``eta``."""
        return cls(OutcomeKind.NEXT_RUN, task_id, worker_id, at, value, error, eta)

    @property
    def status(self) -> TaskStatus:
        """The task's status once the outcome is recorded."""
        return _OUTCOME_STATUS[self.kind]

    @property
    def result_status(self) -> TaskStatus | None:
        """The status of the result this outcome stores (``None`` for a retry, which keeps
        the previous result)."""
        if self.kind is OutcomeKind.RETRY:
            return None
        return TaskStatus.FAILED if self.error is not None else TaskStatus.SUCCESS


_OUTCOME_STATUS = {
    OutcomeKind.SUCCESS: TaskStatus.SUCCESS,
    OutcomeKind.RETRY: TaskStatus.RETRYING,
    OutcomeKind.FAILURE: TaskStatus.FAILED,
    OutcomeKind.NEXT_RUN: TaskStatus.PENDING,
}


@attrs.frozen
class Reclaimed:
    """What :meth:`Store.reclaim_expired` did with the tasks of dead workers."""

    #: Back to PENDING, their run counted as lost.
    requeued: tuple[str, ...] = ()
    #: FAILED (``WorkerLostError``): lost more than ``max_lost_runs`` times.
    failed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed)


class Store(trio.abc.AsyncResource):
    """Where tasks live. Use as ``async with store:`` or ``await store.open()`` / ``aclose()``."""

    def __init__(self) -> None:
        self._changes = {change: AsyncValue(0) for change in Change}

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    @abstractmethod
    async def open(self) -> None:
        """Make the store ready (create files or tables, replay). Calling it again is a no-op."""

    @property
    @abstractmethod
    def capabilities(self) -> StoreCapabilities:
        """What this store can do beyond the contract."""

    # ---------------------------------------------------------------- producing

    @abstractmethod
    async def enqueue(self, tasks: Sequence[Task]) -> list[Enqueued]:
        """Add new PENDING tasks, all or none; per task, what was done.

        Raises ``DuplicateTaskError`` if an id exists or repeats in the batch,
        changing nothing. A task with a ``unique_key`` that a live task
        (PENDING, RETRYING, RUNNING) holds, or that a task finished with at or
        after ``created_at - unique_for``, is not added: its answer is
        ``Enqueued(that task's id, created=False)``. Tasks of one batch with the
        same key collapse into the first. Durable on return.

        A store with ``capabilities.transactional_enqueue`` also offers
        ``enqueue_statement(tasks)``: the same enqueue as one statement for the
        caller to run in its own database transaction. Such an enqueue is durable
        when the caller commits (and never happened if it rolls back), not when
        any call returns.
        """

    @abstractmethod
    async def cancel(self, task_id: str, *, at: float) -> bool:
        """Make a PENDING, RETRYING or RUNNING task CANCELLED.

        Returns ``False`` (and changes nothing) if it had already finished.
        Raises ``TaskNotFoundError`` for an unknown id. Cancelling a RUNNING
        task notifies :attr:`Change.CANCELLED` so that its worker (which learns
        it from :meth:`renew`) interrupts the run; the run's outcome is then
        refused (``LeaseLostError``).
        """

    @abstractmethod
    async def retry(self, task_id: str, *, at: float) -> None:
        """Make a FAILED task PENDING again, due at ``at``, with fresh retry and lost-run
        budgets. ``InvalidTransitionError`` unless FAILED; ``UniqueConflictError`` if another
        live task holds its unique key."""

    # ----------------------------------------------------------------- working

    @abstractmethod
    async def claim(
        self,
        worker_id: str,
        *,
        now: float,
        limit: int,
        lease_until: float,
        queues: Mapping[str, int] | None = None,
    ) -> list[Task]:
        """Make up to ``limit`` due tasks (eta <= ``now``) RUNNING, held by ``worker_id``.

        ``queues=None`` takes from every queue; otherwise at most ``queues[name]``
        from each queue named. Paused queues are skipped; a rate-limited queue
        gives at most what its window allows (counted across every worker).
        Claiming clears a task's ``progress``. No task is ever held by two
        workers. Returns the tasks as claimed, in claim order; ``[]`` when
        nothing is due. Not waited on for durability.
        """

    @abstractmethod
    async def record(self, outcomes: Sequence[Outcome]) -> list[Exception | None]:
        """Record how runs ended, all in one write.

        Each outcome changes its task as its kind says (see :class:`OutcomeKind`).
        Returns, per outcome, ``None`` or the error that outcome alone raised:
        ``LeaseLostError`` when its worker no longer holds the task (cancelled,
        or reclaimed after its lease expired, or a second outcome for the same
        task in one call: the first wins), ``TaskNotFoundError``; one outcome's
        error does not stop the others, and a refused outcome changes nothing.
        An error of the store itself (I/O, connection) raises.
        """

    async def complete(
        self,
        task_id: str,
        *,
        worker_id: str,
        value: Any,
        at: float,
        next_eta: float | None = None,
    ) -> None:
        """Record one run that returned (see :meth:`record`); raises what it refuses with."""
        if next_eta is None:
            outcome = Outcome.success(task_id, worker_id, at, value)
        else:
            outcome = Outcome.next_run(task_id, worker_id, at, next_eta, value=value)
        await self._record_one(outcome)

    async def fail(
        self,
        task_id: str,
        *,
        worker_id: str,
        error: TaskError,
        at: float,
        retry_at: float | None = None,
        next_eta: float | None = None,
    ) -> None:
        """Record one run that raised (see :meth:`record`); raises what it refuses with."""
        if retry_at is not None:
            outcome = Outcome.retry(task_id, worker_id, at, error, retry_at)
        elif next_eta is not None:
            outcome = Outcome.next_run(task_id, worker_id, at, next_eta, error=error)
        else:
            outcome = Outcome.failure(task_id, worker_id, at, error)
        await self._record_one(outcome)

    async def _record_one(self, outcome: Outcome) -> None:
        (refused,) = await self.record([outcome])
        if refused is not None:
            raise refused

    @abstractmethod
    async def release(self, task_ids: Sequence[str], *, worker_id: str) -> list[str]:
        """Make those of ``task_ids`` still held by ``worker_id`` PENDING again, without
        charging an attempt or a lost run (a graceful stop). Returns the ids released.
        Not waited on for durability."""

    @abstractmethod
    async def renew(self, worker_id: str, *, lease_until: float) -> frozenset[str]:
        """Extend the lease of every task ``worker_id`` holds to ``lease_until``; returns
        the ids it holds. A task its worker runs but that is missing here was cancelled or
        reclaimed: the worker interrupts it. Not waited on for durability."""

    @abstractmethod
    async def reclaim_expired(self, *, now: float) -> Reclaimed:
        """Take back every RUNNING task whose lease ended before ``now`` (its worker is
        presumed dead). Each counts a lost run: PENDING again, or FAILED with a
        ``WorkerLostError`` error once ``lost_runs`` exceeds ``max_lost_runs``."""

    @abstractmethod
    async def purge(
        self, *, finished_before: float, failed_before: float, limit: int | None = None
    ) -> int:
        """Forget up to ``limit`` finished tasks and their results: SUCCESS and CANCELLED
        ones that finished before ``finished_before``, FAILED ones before
        ``failed_before``. Returns how many."""

    @abstractmethod
    async def set_progress(self, task_id: str, *, worker_id: str, progress: Progress) -> None:
        """Store a running task's progress. Only its holder may: ``LeaseLostError``
        otherwise, ``TaskNotFoundError`` for an unknown id. Not waited on for durability
        (callers throttle it)."""

    # ------------------------------------------------------------ queues, schedules

    @abstractmethod
    async def pause_queue(self, name: str, *, paused: bool) -> None:
        """Pause (or resume) claiming from queue ``name`` in every process. Durable."""

    @abstractmethod
    async def set_queue_limit(self, name: str, limit: RateLimit | None) -> None:
        """Rate-limit the starts of queue ``name`` (``None``: no limit). Durable."""

    @abstractmethod
    async def list_queues(self) -> list[QueueInfo]:
        """Every queue that has tasks, is paused or is limited, by name."""

    @abstractmethod
    async def fire_schedule(self, name: str, *, slot: float, task: Task) -> Enqueued | None:
        """Fire slot ``slot`` of schedule ``name`` once, across every process.

        Atomically: if the schedule's last fired slot is older than ``slot`` (or
        it has none), record ``slot`` and enqueue ``task`` as :meth:`enqueue`
        would (unique keys apply); else change nothing and return ``None``.
        Durable on return.
        """

    @abstractmethod
    async def register_schedules(self, schedules: Sequence[ScheduleInfo]) -> None:
        """Record schedules a pool runs (for ``omniq-trio schedules``), replacing earlier
        records of the same names, but never moving a ``last_slot`` back."""

    @abstractmethod
    async def list_schedules(self) -> list[ScheduleInfo]:
        """Every schedule recorded, by name."""

    # ---------------------------------------------------------------- workers

    @abstractmethod
    async def register_worker(self, info: WorkerInfo) -> None:
        """Record (or refresh) a running pool; its heartbeat. Not waited on for durability."""

    @abstractmethod
    async def unregister_worker(self, worker_id: str) -> None:
        """Forget a pool that stopped."""

    @abstractmethod
    async def list_workers(self, *, now: float) -> list[WorkerInfo]:
        """The pools whose heartbeat has not expired (``expires_at >= now``), by start time."""

    # ---------------------------------------------------------------- reading

    @abstractmethod
    async def get_task(self, task_id: str) -> Task:
        """The task's current state; raises ``TaskNotFoundError``."""

    @abstractmethod
    async def get_result(self, task_id: str) -> TaskResult | None:
        """The result of the task's last finished run, ``None`` if it has none
        yet; raises ``TaskNotFoundError``."""

    @abstractmethod
    async def list_tasks(
        self,
        *,
        status: TaskStatus | frozenset[TaskStatus] | None = None,
        queue: str | None = None,
        func: str | None = None,
        id_prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        newest_first: bool = False,
    ) -> TaskPage:
        """Tasks in enqueue order (or newest first) that match every filter given.

        ``limit`` bounds the page; ``cursor`` (from a page's ``next_cursor``)
        continues after the page it came from, whatever was enqueued or
        purged since. ``next_cursor`` is ``None`` when no task follows.
        """

    @abstractmethod
    async def stats(self, *, now: float) -> StoreStats:
        """Counts by status and by queue, and the eta of the oldest task due at ``now``."""

    @abstractmethod
    async def next_due(self, *, now: float, queues: Collection[str] | None = None) -> float | None:
        """When a task of ``queues`` (default: any queue) may next be claimed: the
        earliest eta of a claimable one (at most ``now`` if one is due), later if
        its queue's rate limit is full, never for a paused queue; ``None`` if
        there is none. Stores shared between processes may not know of work
        others added since they last looked; this is a hint for sleeping."""

    # ---------------------------------------------------------- notifications

    def change_version(self, change: Change) -> int:
        """A counter that moves whenever ``change`` happens in this process.

        Read it *before* looking (claiming, reading a result) and pass it to
        :meth:`wait_for_change` so that a change in between is not missed.
        """
        return self._changes[change].value  # type: ignore[no-any-return]

    async def wait_for_change(self, change: Change, seen: int, deadline: float) -> None:
        """Return once ``change`` has happened since ``seen`` was read, or at
        ``deadline`` (trio time), whichever is first. May return early.

        Changes made by other processes are seen through a store's own
        notification channel where it has one (``capabilities.wakes_other_processes``);
        otherwise only at the deadline, which is why workers poll.
        """
        with trio.move_on_at(deadline):
            await self._changes[change].wait_value(lambda version: version != seen)

    def _notify(self, change: Change) -> None:
        self._changes[change].value += 1

    def _notify_changes(self, changes: frozenset[Change] | set[Change]) -> None:
        for change in changes:
            self._changes[change].value += 1
