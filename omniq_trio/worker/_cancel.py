"""Cancelling running tasks: the scope around each run, and the actor that learns of cancels.

Each executor runs its tasks inside a scope of its own (replaced once it has
been cancelled), itself inside the executors' scope, so the two ends are told
apart: cancelling a run's scope (:class:`RunControl`) ends that run alone
(its task is CANCELLED in the store, its outcome is dropped), while the stop
cancels the executors' scope and the run goes back to PENDING.

How a pool learns that a task it runs was cancelled (or is no longer its own):
the store's ``Change.CANCELLED`` notification wakes :func:`cancel_watcher`
(in this process at once; from other processes through the store's
notifications: the journal's wake-up sockets, PostgreSQL's NOTIFY), and the
lease keeper's renewal is the fallback. Either way the pool asks the store
which tasks it still holds (``Store.renew``) and cancels the runs of the
others.
"""

from __future__ import annotations

from typing import final

import trio

from .._clock import Clock
from ..logging import worker_logger
from ..store import Change, Store

__all__ = ["RunControl", "RunningTasks", "cancel_watcher"]


@final
class RunControl:
    """One run's cancel scope and its ``cancelled`` flag (which a thread may read)."""

    __slots__ = ("_cancelled", "scope", "seq", "task_id")

    def __init__(self, task_id: str, seq: int, scope: trio.CancelScope | None) -> None:
        self.task_id = task_id
        #: runs registered after a look at the store started are not judged by it
        self.seq = seq
        #: the executor's scope around the run (``None``: the run cannot be interrupted)
        self.scope = scope
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled (its task is no longer this pool's to run)."""
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True
        if self.scope is not None:
            self.scope.cancel()


@final
class RunningTasks:
    """The runs in progress in one pool, by task id (on its trio thread, no lock)."""

    def __init__(self) -> None:
        self._runs: dict[str, RunControl] = {}
        self._seq = 0

    def __bool__(self) -> bool:
        return bool(self._runs)

    def start(self, task_id: str, scope: trio.CancelScope | None) -> RunControl:
        """Register a run that starts now, inside ``scope`` (which a cancel cancels)."""
        self._seq += 1
        run = self._runs[task_id] = RunControl(task_id, self._seq, scope)
        return run

    def end(self, run: RunControl) -> None:
        """Forget ``run`` (it ended)."""
        if self._runs.get(run.task_id) is run:
            del self._runs[run.task_id]

    def mark(self) -> int:
        """Read before asking the store what this pool holds; pass to :meth:`cancel_missing`."""
        return self._seq

    def cancel_missing(self, held: frozenset[str], mark: int) -> list[str]:
        """Cancel the runs that started before ``mark`` whose task is not in ``held``
        (what the store said this pool holds); returns their task ids."""
        gone = [
            run
            for task_id, run in self._runs.items()
            if run.seq <= mark and task_id not in held and not run.cancelled
        ]
        for run in gone:
            run.cancel()
        if gone:
            worker_logger.info(
                "interrupting %d task(s) no longer this worker's to run (cancelled, or "
                "taken back after the lease expired): %s",
                len(gone),
                ", ".join(run.task_id for run in gone),
            )
        return [run.task_id for run in gone]


async def check_held(
    runs: RunningTasks, *, store: Store, worker_id: str, lease_duration: float, clock: Clock
) -> list[str]:
    """Renew this pool's leases and cancel the runs whose task it no longer holds."""
    mark = runs.mark()
    held = await store.renew(worker_id, lease_until=clock.now() + lease_duration)
    return runs.cancel_missing(held, mark)


async def cancel_watcher(
    runs: RunningTasks, *, store: Store, worker_id: str, lease_duration: float, clock: Clock
) -> None:
    """Wait for ``Change.CANCELLED``; then cancel the runs this pool no longer holds.
    Runs until cancelled.

    Each wait ends after a third of a lease at the latest, so that a wait that
    lost its notification channel (a dropped PostgreSQL connection) listens
    again soon; a timeout alone does not ask the store anything (the lease
    keeper renews on its own schedule).
    """
    while True:
        seen = store.change_version(Change.CANCELLED)
        await store.wait_for_change(
            Change.CANCELLED, seen, trio.current_time() + lease_duration / 3
        )
        if not runs or store.change_version(Change.CANCELLED) == seen:
            continue
        try:
            await check_held(
                runs, store=store, worker_id=worker_id, lease_duration=lease_duration, clock=clock
            )
        except Exception:
            worker_logger.exception(
                "could not check which tasks were cancelled; the lease renewal will"
            )
