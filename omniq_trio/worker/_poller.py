"""The poller: claims due tasks and hands them to executors.

It claims only as many tasks as it holds *credits*, one per executor that is
free (an executor returns its credit when its run ends), so a pool never holds
more claimed tasks than its concurrency and does not hoard work that other
workers could run; a pool with queues claims only from them, and from a
capped queue at most the room left under its cap (``_credits.py``). It sleeps
until the next eta (of the queues it may claim from now) or ``poll_interval``,
whichever is sooner, and wakes at once when the store reports new work or a
run of a capped queue ends.
"""

from __future__ import annotations

from typing import Final

import trio

from .._clock import Clock
from ..logging import log_task_released, worker_logger
from ..models import Task
from ..store import Change, Store
from ._credits import Credits
from ._executor import cleanup_scope
from ._health import StoreHealth

__all__ = ["poller"]

#: Longest wait between claim attempts while the store keeps failing (seconds).
MAX_ERROR_BACKOFF: Final = 30.0


async def poller(
    task_send: trio.MemorySendChannel[Task],
    *,
    credits: Credits,
    store: Store,
    worker_id: str,
    poll_interval: float,
    lease_duration: float,
    clock: Clock,
    health: StoreHealth | None = None,
) -> None:
    """Claim and hand out tasks until cancelled; closes ``task_send`` on the way out."""
    error_backoff = 0.0
    async with task_send:
        while True:
            budget = await credits.take()
            held = budget.held
            seen = store.change_version(Change.WORK)
            room_seen = credits.room_version
            try:
                now = clock.now()
                tasks = await store.claim(
                    worker_id,
                    now=now,
                    limit=held,
                    lease_until=now + lease_duration,
                    queues=budget.queues,
                )
                due = None if tasks else await store.next_due(now=clock.now(), queues=budget.queues)
            except Exception as exc:
                credits.give_back(held)
                if health is not None:
                    health.failed(exc)
                error_backoff = min(MAX_ERROR_BACKOFF, max(poll_interval, 2 * error_backoff))
                worker_logger.exception(
                    "claiming tasks failed; trying again in %.1fs", error_backoff
                )
                await trio.sleep(error_backoff)
                continue
            error_backoff = 0.0
            if health is not None:
                health.ok()
            credits.started(tasks)
            credits.give_back(held - len(tasks))
            if tasks:
                await _hand_out(task_send, tasks, store=store, worker_id=worker_id)
                continue
            deadline = trio.current_time() + poll_interval
            if due is not None:
                deadline = min(deadline, clock.trio_deadline(due))
            if budget.capped:
                # a queue left out at its cap may have work once one of its runs ends
                await _wait_for_work_or_room(store, seen, credits, room_seen, deadline)
            else:
                await store.wait_for_change(Change.WORK, seen, deadline)


async def _wait_for_work_or_room(
    store: Store, seen: int, credits: Credits, room_seen: int, deadline: float
) -> None:
    async with trio.open_nursery() as nursery:

        async def work() -> None:
            await store.wait_for_change(Change.WORK, seen, deadline)
            nursery.cancel_scope.cancel()

        async def room() -> None:
            with trio.move_on_at(deadline):
                await credits.wait_for_room(room_seen)
            nursery.cancel_scope.cancel()

        nursery.start_soon(work)
        nursery.start_soon(room)


async def _hand_out(
    task_send: trio.MemorySendChannel[Task], tasks: list[Task], *, store: Store, worker_id: str
) -> None:
    for i, task in enumerate(tasks):
        try:
            # An idle executor takes it at once: no need for a trip through
            # the scheduler per task (the loop checkpoints when it claims).
            # But a stop may have begun while the claim was on its way back
            # (a store that yields after making it): then nothing more starts.
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                task_send.send_nowait(task)
            except trio.WouldBlock:
                await task_send.send(task)
        except BaseException:
            # Cancelled (stop) or the executors are gone: whatever was not
            # handed over goes back to the queue, uncharged.
            with cleanup_scope():
                try:
                    released = await store.release([t.id for t in tasks[i:]], worker_id=worker_id)
                except Exception:
                    worker_logger.exception("could not release claimed tasks")
                else:
                    log_task_released(released, "claimed but not started before the stop")
            raise
