"""The recorder: writes the outcomes executors send it, many per store call."""

from __future__ import annotations

import functools
from typing import Final

import trio

from .._clock import DEFAULT_CLOCK, Clock
from .._hook_delivery import HookDelivery
from ..logging import (
    log_task_failed,
    log_task_released,
    log_task_retrying,
    log_task_succeeded,
    worker_logger,
)
from ..store import OutcomeKind, Store
from ._executor import Finished, cleanup_scope, task_error
from ._health import StoreHealth
from ._observe import run_ended, run_released
from ._stats import Counters

__all__ = ["OUTCOME_BUFFER", "recorder"]

#: Outcomes executors may hand over before they wait for the recorder. Deep
#: enough that a slow write (an fsync) does not stall executors, shallow
#: enough that little rides on a crash.
OUTCOME_BUFFER: Final = 256
#: Most outcomes written in one store call.
MAX_BATCH: Final = 1024
#: Seconds before releasing tasks whose outcome could not be recorded is
#: tried again; doubled after each failure, up to the cap.
RELEASE_RETRY: Final = 0.1
RELEASE_RETRY_MAX: Final = 5.0


async def recorder(
    outcome_receive: trio.MemoryReceiveChannel[Finished],
    *,
    store: Store,
    worker_id: str,
    counters: Counters,
    hooks: HookDelivery | None = None,
    clock: Clock | None = None,
    health: StoreHealth | None = None,
) -> None:
    """Record outcomes until every executor has closed its end of the channel.

    An outcome handed over is a run that ended, and its executor no longer
    answers for the task. So if the recorder is cancelled (the pool is
    cancelled from outside, or the stop's cleanup deadline passes), the batch
    it was writing (a store call that raised Cancelled wrote nothing) and
    whatever else is in the channel are written on the way out, shielded,
    rather than left RUNNING until their leases expire.
    """
    record = functools.partial(
        _record,
        store=store,
        worker_id=worker_id,
        counters=counters,
        hooks=HookDelivery() if hooks is None else hooks,
        clock=DEFAULT_CLOCK if clock is None else clock,
        health=health,
    )
    async with outcome_receive:
        batch: list[Finished] = []
        try:
            async for first in outcome_receive:
                batch = [first, *_take(outcome_receive, MAX_BATCH - 1)]
                await record(batch)
                batch = []
        finally:
            batch += _take(outcome_receive, OUTCOME_BUFFER)
            if batch:
                with cleanup_scope():
                    await record(batch)


def _take(outcome_receive: trio.MemoryReceiveChannel[Finished], limit: int) -> list[Finished]:
    """Up to ``limit`` outcomes that are waiting in the channel, without waiting."""
    taken: list[Finished] = []
    while len(taken) < limit:
        try:
            taken.append(outcome_receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    return taken


async def _record(
    batch: list[Finished],
    *,
    store: Store,
    worker_id: str,
    counters: Counters,
    hooks: HookDelivery,
    clock: Clock,
    health: StoreHealth | None = None,
) -> None:
    try:
        errors = await store.record([finished.outcome for finished in batch])
    except Exception as exc:
        # The store could not take them (I/O error, lost connection). Hand the
        # tasks back so they run again rather than sit RUNNING under our lease.
        worker_logger.exception("could not record %d outcome(s); releasing the tasks", len(batch))
        if health is not None:
            health.failed(exc)
        task_ids = [f.task.id for f in batch]
        released = set(await _release(task_ids, store=store, worker_id=worker_id, health=health))
        for f in batch:
            if f.task.id in released:
                run_released(hooks, f.task, worker_id, clock.now(), f.duration)
        return
    if health is not None:
        health.ok()
    for finished, error in zip(batch, errors, strict=True):
        task, outcome = finished.task, finished.outcome
        if error is not None:
            worker_logger.warning("outcome of task %s dropped: %s", task.id, error)
            run_ended(hooks, task, outcome, finished.duration, refused=task_error(error))
            continue
        run_ended(hooks, task, outcome, finished.duration)
        counters.processed += 1
        if outcome.error is None:
            counters.succeeded += 1
            log_task_succeeded(task, finished.duration)
        elif outcome.kind is OutcomeKind.RETRY:
            counters.retried += 1
            assert outcome.eta is not None
            log_task_retrying(task, outcome.error, outcome.eta - outcome.at)
        else:
            counters.failed += 1
            log_task_failed(task, outcome.error)


async def _release(
    task_ids: list[str], *, store: Store, worker_id: str, health: StoreHealth | None = None
) -> list[str]:
    """Release ``task_ids``, trying until the store takes it; returns those released.

    Giving up would strand the tasks: the lease keeper goes on renewing every
    lease this worker holds. Only the stop ends the retries (the waits are
    not shielded); then the leases are no longer renewed, expire, and the
    tasks run again elsewhere.
    """
    wait = RELEASE_RETRY
    while True:
        with cleanup_scope():
            try:
                released = await store.release(task_ids, worker_id=worker_id)
            except Exception as exc:
                worker_logger.exception(
                    "could not release them either; trying again in %.1fs", wait
                )
                if health is not None:
                    health.failed(exc)
            else:
                log_task_released(released, "their outcome could not be recorded")
                if health is not None:
                    health.ok()
                return released
        await trio.sleep(wait)
        wait = min(2 * wait, RELEASE_RETRY_MAX)
