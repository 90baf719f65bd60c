"""``drain``: run a worker until nothing is left to do, skipping virtual time to each next eta.

"Nothing left" is read from the store, not from the worker pool: no task
RUNNING (a task whose outcome is still being written counts as running, so
every result is in when ``drain`` returns), no claimable task that ``drain``
should wait for (tasks of paused queues never run, so they are not waited
for), and no slot of the drain's cron schedules within its horizon that the
store has not seen fired. It waits on the store's change notifications with
the next eta (or slot) as deadline, so under ``autojump_clock`` trio jumps
straight to it; a ``MockClock`` that does not move by itself is made to
autojump while ``drain`` runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Final

import trio
import trio.testing

from .._client import AsyncOmniQ
from .._clock import Clock
from .._schedule import Schedule, check_schedules
from ..errors import ScheduleError
from ..models import Task, TaskResult, TaskStatus
from ..store import Change, Store
from ..worker._scheduler import DUE_TOLERANCE

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
#: How often ``drain`` looks again for a cron slot that is due but not yet
#: fired (virtual seconds): the pool's scheduler fires it at the same instant.
_SLOT_RECHECK: Final = 1.0


async def drain(
    omniq: AsyncOmniQ,
    *,
    within: float | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    schedules: Sequence[Schedule] = (),
    slots: int | None = None,
) -> dict[str, TaskResult]:
    """Run a worker pool on ``omniq`` until no task is due or running, then stop it.

    Tasks scheduled later (a ``delay``, an ``eta``, a retry's backoff) are
    waited for: under trio's ``MockClock`` the clock jumps to each next eta,
    so a retry schedule over hours completes at once. A repeating task is
    not followed into the future (it would never end): it runs while it is
    due. With ``within=S``, ``drain`` instead runs every task that is due in
    the next ``S`` seconds, repeating ones included, and returns with the
    clock ``S`` seconds on.

    The pool fires the cron ``schedules`` given (none by default), and
    ``drain`` waits for every slot of them within its horizon to be fired
    and run. ``slots=N`` sets the horizon to the ``N``-th next slot of those
    schedules: ``drain(omniq, schedules=[nightly], slots=1)`` runs the next
    nightly run and returns with the clock at its slot. Tasks of paused
    queues are not waited for (they cannot run).

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
    schedules = check_schedules(schedules)
    since = clock.now()
    if slots is not None:
        if within is not None:
            raise ScheduleError("give drain within= or slots=, not both")
        within = _until_slot(schedules, slots, since) - since
    horizon = None if within is None else since + within
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
                    pool = runner.worker(concurrency=concurrency, schedules=schedules)
                    await nursery.start(pool.run)
                    await _until_idle(omniq.store, clock, horizon, schedules, since)
                    await pool.stop()
        except trio.TooSlowError:
            left = [
                f"{t.id} {t.func} ({t.status.value})"
                for t in await omniq.list_tasks()
                if t.status in (*_WAITING, TaskStatus.RUNNING)
            ]
            fired = {info.name: info.last_slot for info in await omniq.list_schedules()}
            left += [
                f"schedule {s.name!r} slot {slot}"
                for s in schedules
                if (slot := _unfired(s, fired.get(s.name), since, horizon)) is not None
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


def _until_slot(schedules: Sequence[Schedule], slots: int, now: float) -> float:
    """The ``slots``-th slot after ``now`` among ``schedules``."""
    if not schedules:
        raise ScheduleError("drain(slots=...) needs the schedules= whose slots to run")
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ScheduleError(f"slots must be a whole number >= 1, got {slots!r}")
    # a slot at the start counts (the pool fires it at once), later ones are strictly later
    at = min(_first_slot(schedule, now) for schedule in schedules)
    for _ in range(slots - 1):
        at = min(schedule.next_slot(at) for schedule in schedules)
    return at


def _first_slot(schedule: Schedule, since: float) -> float:
    """The first slot at or after ``since`` (as the pool's scheduler counts it)."""
    return schedule.expression.first_from(since, tolerance=DUE_TOLERANCE)


def _unfired(
    schedule: Schedule, fired: float | None, since: float, horizon: float | None
) -> float | None:
    """The first slot of ``schedule`` from ``since`` to ``horizon`` not fired yet, if any."""
    if horizon is None:
        return None
    expression = schedule.expression
    if fired is not None and fired >= since:
        slot = expression.next_after(fired)
    else:
        slot = _first_slot(schedule, since)
    return slot if slot <= horizon else None


async def _until_idle(
    store: Store,
    clock: Clock,
    horizon: float | None,
    schedules: Sequence[Schedule] = (),
    since: float = 0.0,
) -> None:
    while True:
        # Read the versions first: a change after this point ends the wait below.
        seen = {change: store.change_version(change) for change in Change}
        deadline = math.inf
        # One snapshot: a claim between two reads could hide a task from both.
        tasks = (await store.list_tasks()).tasks
        if not any(task.status is TaskStatus.RUNNING for task in tasks):
            paused = {queue.name for queue in await store.list_queues() if queue.paused}
            now = clock.now()
            etas = [
                task.eta
                for task in tasks
                if task.status in _WAITING
                and task.queue not in paused
                and _waited_for(task, now, horizon)
            ]
            if schedules:
                fired = {info.name: info.last_slot for info in await store.list_schedules()}
                slots = [
                    slot
                    for schedule in schedules
                    if (slot := _unfired(schedule, fired.get(schedule.name), since, horizon))
                    is not None
                ]
                if slots and min(slots) <= now:
                    # due: the pool's scheduler fires it at this instant
                    deadline = trio.current_time() + _SLOT_RECHECK
                etas += slots
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
