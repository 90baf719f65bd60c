"""``drain``: run a worker until nothing is left to do, skipping virtual time to each next eta.

"Nothing left" is read from the store, not from the worker pool: no task
RUNNING (a task whose outcome is still being written counts as running, so
every result is in when ``drain`` returns) and no claimable task that
``drain`` should wait for. It waits on the store's change notifications with
the next eta as deadline, so under ``autojump_clock`` trio jumps straight to
it; a ``MockClock`` that does not move by itself is made to autojump while
``drain`` runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import trio
import trio.testing

from .._client import AsyncOmniQ
from .._clock import Clock
from ..models import Task, TaskResult, TaskStatus
from ..store import Change, Store

__all__ = ["DEFAULT_DRAIN_TIMEOUT", "drain"]

#: How long ``drain`` may take by default, in seconds (virtual under
#: MockClock). A day is more than any retry schedule a test needs, and short
#: enough that a task that never finishes fails its test after a second or so
#: of real time (the worker's lease keeper ticks every ``lease_duration / 3``
#: of virtual time meanwhile).
DEFAULT_DRAIN_TIMEOUT: Final = 86_400.0

#: On a store no other process shares (the memory store), the drain's worker
#: polls this rarely and holds leases this long (seconds). Everything that
#: changes such a store happens in this process and wakes the worker at once,
#: and no other process can die holding its tasks; with the usual second of
#: polling and 30 s leases, simulating a day would take 86,400 polls and 8,640
#: lease renewals.
MEMORY_POLL_INTERVAL: Final = 86_400.0
MEMORY_LEASE_DURATION: Final = 3_600.0

_WAITING: Final = (TaskStatus.PENDING, TaskStatus.RETRYING)


async def drain(
    omniq: AsyncOmniQ,
    *,
    within: float | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
) -> dict[str, TaskResult]:
    """Run a worker pool on ``omniq`` until no task is due or running, then stop it.

    Tasks scheduled later (a ``delay``, an ``eta``, a retry's backoff) are
    waited for: under trio's ``MockClock`` the clock jumps to each next eta,
    so a retry schedule over hours completes at once. A repeating task is
    not followed into the future (it would never end): it runs while it is
    due. With ``within=S``, ``drain`` instead runs every task that is due in
    the next ``S`` seconds, repeating ones included, and returns with the
    clock ``S`` seconds on.

    Returns the result of every task that has one, by task id, in enqueue
    order (for a repeating task, its latest run). ``concurrency`` defaults to
    ``Settings.concurrency``. Raises ``trio.TooSlowError`` naming the tasks
    left if the work is not done ``timeout`` seconds (default
    :data:`DEFAULT_DRAIN_TIMEOUT`) after the start, or after the horizon
    with ``within``: a task that never finishes, or one scheduled further
    away than that.
    """
    await omniq.open()
    clock = omniq.clock
    started = trio.current_time()
    horizon = None if within is None else clock.now() + within
    limit = (within or 0.0) + (DEFAULT_DRAIN_TIMEOUT if timeout is None else timeout)
    runner = omniq
    if not omniq.store.capabilities.shared:
        settings = omniq.settings.evolve(
            poll_interval=MEMORY_POLL_INTERVAL, lease_duration=MEMORY_LEASE_DURATION
        )
        runner = AsyncOmniQ(settings, store=omniq.store, clock=clock)
    with _autojumping():
        try:
            with trio.fail_after(limit):
                async with trio.open_nursery() as nursery:
                    pool = runner.worker(concurrency=concurrency)
                    await nursery.start(pool.run)
                    await _until_idle(omniq.store, clock, horizon)
                    await pool.stop()
        except trio.TooSlowError:
            left = [
                f"{t.id} {t.func} ({t.status.value})"
                for t in await omniq.list_tasks()
                if t.status in (*_WAITING, TaskStatus.RUNNING)
            ]
            raise trio.TooSlowError(
                f"drain gave up after {limit:g}s with tasks left to run: {', '.join(left[:10])}"
            ) from None
        if within is not None:
            await trio.sleep_until(started + within)
    return {
        task.id: result
        for task in await omniq.list_tasks()
        if (result := await omniq.get_result(task.id)) is not None
    }


@contextmanager
def _autojumping() -> Iterator[None]:
    """Make a MockClock that does not move by itself autojump for a while."""
    clock = trio.lowlevel.current_clock()
    if (
        not isinstance(clock, trio.testing.MockClock)
        or clock.rate != 0
        or clock.autojump_threshold != math.inf
    ):
        yield
        return
    clock.autojump_threshold = 0
    try:
        yield
    finally:
        clock.autojump_threshold = math.inf


def _waited_for(task: Task, now: float, horizon: float | None) -> bool:
    if horizon is not None:
        return task.eta <= horizon
    # A retry completes the run that failed, so it is waited for; a repeating
    # task's next run is a new one, so it counts only once it is due.
    return task.status is TaskStatus.RETRYING or task.interval is None or task.eta <= now


async def _until_idle(store: Store, clock: Clock, horizon: float | None) -> None:
    while True:
        # Read the versions first: a change after this point ends the wait below.
        seen = {change: store.change_version(change) for change in Change}
        deadline = math.inf
        # One snapshot: a claim between two reads could hide a task from both.
        tasks = (await store.list_tasks()).tasks
        if not any(task.status is TaskStatus.RUNNING for task in tasks):
            now = clock.now()
            etas = [
                task.eta
                for task in tasks
                if task.status in _WAITING and _waited_for(task, now, horizon)
            ]
            if not etas:
                return
            if min(etas) > now:
                # Nothing runs before the next eta: sleep until then (the
                # worker wakes then too), unless something changes first.
                deadline = clock.trio_deadline(min(etas))
        # Otherwise a task is running, or due and about to be claimed: wait
        # for its outcome (every way out of RUNNING announces a change).
        await _wait_for_any(store, seen, deadline)


async def _wait_for_any(store: Store, seen: dict[Change, int], deadline: float) -> None:
    async with trio.open_nursery() as nursery:

        async def wait(change: Change, version: int) -> None:
            await store.wait_for_change(change, version, deadline)
            nursery.cancel_scope.cancel()

        for change, version in seen.items():
            nursery.start_soon(wait, change, version)
