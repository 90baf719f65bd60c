"""``Store``: the one contract every home of tasks keeps (memory, file journal, PostgreSQL).

The runtime talks to a store only through these methods; backend types (rows,
offsets, connections) never cross this boundary. ``omniq_trio.testing.check_store``
checks an implementation against the contract.

Guarantees every implementation gives:

* **Atomicity.** A method that changes tasks either makes its whole change and
  returns, or makes none and raises. Cancellation does not break this: a
  change that has started is finished (shielded) before the method returns,
  so a caller that is cancelled right after still got its answer.
* **Durability.** When a changing method returns, its change is as durable as
  the store promises (for the journal: ``Settings.fsync``).
* **Lifecycle.** Every change is checked against ``models.TRANSITIONS``;
  forbidden ones raise and change nothing.
* **Ordering.** ``claim`` hands out due tasks by priority (higher first), then
  eta (earlier first), then enqueue order.
* **Time.** Methods take wall-clock times from the caller (``now``, ``at``) so
  that the runtime's clock, virtual in tests, is the only clock. A store that
  coordinates machines may use its own clock instead and says so.
"""

from __future__ import annotations

import enum
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Self

import attrs
import trio
from trio_util import AsyncValue

from ..models import Task, TaskError, TaskResult, TaskStatus

__all__ = ["Change", "Outcome", "Store", "StoreStats"]


class Change(enum.Enum):
    """Kinds of change a waiter can wait for (see :meth:`Store.wait_for_change`)."""

    #: A task may have become claimable: enqueued, released, retried.
    WORK = "work"
    #: A task finished (SUCCESS, FAILED, CANCELLED) or a repeating task completed a run.
    FINISHED = "finished"


@attrs.frozen
class StoreStats:
    """A snapshot of a store's contents."""

    #: Tasks per status (every status present, zeros included).
    counts: Mapping[TaskStatus, int]
    #: ``created_at`` of the oldest PENDING or RETRYING task, if any.
    oldest_pending_created_at: float | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@attrs.frozen
class Outcome:
    """How one run ended, for :meth:`Store.record`: a success when ``error`` is None."""

    task_id: str
    worker_id: str
    #: When the run ended (wall clock).
    at: float
    #: The stored form of the return value (success only).
    value: Any = None
    error: TaskError | None = None
    #: Failure with retries left: RETRYING, due at this time.
    retry_at: float | None = None
    #: A repeating task's next run.
    next_eta: float | None = None


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

    # ---------------------------------------------------------------- producing

    @abstractmethod
    async def enqueue(self, tasks: Sequence[Task]) -> None:
        """Add new PENDING tasks, all or none.

        Raises ``DuplicateTaskError`` (an ``InvalidTransitionError``) if an id
        exists, changing nothing. Durable on return.
        """

    @abstractmethod
    async def cancel(self, task_id: str, *, at: float) -> bool:
        """Make a PENDING, RETRYING or RUNNING task CANCELLED.

        Returns ``False`` (and changes nothing) if it had already finished.
        Raises ``TaskNotFoundError`` for an unknown id. A RUNNING task's worker
        is not interrupted; its outcome is discarded (``LeaseLostError``).
        """

    @abstractmethod
    async def retry(self, task_id: str, *, at: float) -> None:
        """Make a FAILED task PENDING again, due at ``at``, with a fresh retry budget."""

    # ----------------------------------------------------------------- working

    @abstractmethod
    async def claim(
        self, worker_id: str, *, now: float, limit: int, lease_until: float
    ) -> list[Task]:
        """Make up to ``limit`` due tasks (eta <= ``now``) RUNNING, held by ``worker_id``.

        No task is ever held by two workers: a claimed task is not claimable
        again until it is released, its lease expires and is reclaimed, or it
        finishes. Returns the tasks as claimed, in claim order; ``[]`` when
        nothing is due.
        """

    @abstractmethod
    async def record(self, outcomes: Sequence[Outcome]) -> list[Exception | None]:
        """Record how runs ended, all in one write.

        Each outcome makes its task SUCCESS (or, for a repeating task, PENDING
        again at ``next_eta`` with the result stored), RETRYING due at
        ``retry_at``, or FAILED (PENDING at ``next_eta`` if it repeats), as the
        outcome says. Returns, per outcome, ``None`` or the error that outcome
        alone raised: ``LeaseLostError`` when its worker no longer holds the
        task (cancelled, or reclaimed after its lease expired),
        ``TaskNotFoundError``; one outcome's error does not stop the others,
        and a refused outcome changes nothing. An error of the store itself
        (I/O, connection) raises.
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
        """Record one successful run (see :meth:`record`); raises what it refuses with."""
        await self._record_one(Outcome(task_id, worker_id, at, value, next_eta=next_eta))

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
        """Record one failed run (see :meth:`record`); raises what it refuses with."""
        outcome = Outcome(task_id, worker_id, at, error=error, retry_at=retry_at, next_eta=next_eta)
        await self._record_one(outcome)

    async def _record_one(self, outcome: Outcome) -> None:
        (refused,) = await self.record([outcome])
        if refused is not None:
            raise refused

    @abstractmethod
    async def release(self, task_ids: Sequence[str], *, worker_id: str) -> list[str]:
        """Make those of ``task_ids`` still held by ``worker_id`` PENDING again,
        without charging an attempt. Returns the ids released."""

    @abstractmethod
    async def renew(self, worker_id: str, *, lease_until: float) -> None:
        """Extend the lease of every task ``worker_id`` holds to ``lease_until``."""

    @abstractmethod
    async def reclaim_expired(self, *, now: float) -> list[str]:
        """Release every RUNNING task whose lease ended before ``now`` (its worker
        is presumed dead). Returns their ids."""

    @abstractmethod
    async def purge(self, *, finished_before: float, limit: int | None = None) -> int:
        """Forget up to ``limit`` finished tasks (and results) that finished before
        ``finished_before``. Returns how many."""

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
        self, *, status: TaskStatus | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks in enqueue order, optionally only those of one status."""

    @abstractmethod
    async def stats(self) -> StoreStats:
        """Counts by status and the age of the oldest waiting task."""

    @abstractmethod
    async def next_due(self, *, now: float) -> float | None:
        """The earliest eta of a claimable task (at most ``now`` if one is due
        already), or ``None``. Stores shared between processes may not know of
        work others added since they last looked; this is a hint for sleeping."""

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
        notification channel where it has one (PostgreSQL's LISTEN); otherwise
        only at the deadline, which is why workers poll.
        """
        with trio.move_on_at(deadline):
            await self._changes[change].wait_value(lambda version: version != seen)

    def _notify(self, change: Change) -> None:
        self._changes[change].value += 1
