"""The scheduler: enqueues each slot of a pool's cron schedules, once across every pool.

Every pool that runs a schedule runs this actor for it; ``Store.fire_schedule``
is what makes a slot fire once: it records the slot and enqueues its task in
one atomic change, and answers ``None`` to every later attempt at that slot
(or an older one), from any process, after any restart.

At start the actor reads what the store recorded (the last slot fired, or
the next slot a pool expected) and deals with the slots that passed unfired
as each schedule's ``catch_up`` says; then it sleeps until the next slot of
any of its schedules, on the store's clock (``Clock``: virtual under trio's
``MockClock``), and fires it. Waking late (a stalled process, a store that
was down) fires the latest due slot once, or every due slot with
``catch_up="all"``. It records its schedules with their next slots in the
store (``omniq-trio schedules``) at start and after each firing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Final

import attrs
import trio

from .._clock import Clock
from .._codec import Codec
from .._schedule import MAX_CATCH_UP, Schedule
from ..config import Settings
from ..logging import worker_logger
from ..models import ScheduleInfo
from ..store import Store

__all__ = ["scheduler"]

#: Longest sleep between looks at the wall clock (seconds): slots are computed
#: on the wall clock and slept for on trio's, which drift apart if the system
#: clock is set (or the machine sleeps: trio's clock stops meanwhile); waking
#: this often bounds how late that makes a slot.
MAX_SLEEP: Final = 300.0
#: Longest wait between attempts while the store keeps failing (seconds).
MAX_ERROR_BACKOFF: Final = 30.0
#: A slot this close ahead counts as due (seconds): the wall clock under
#: MockClock is an anchor plus trio's time, and their float sum can land a
#: hair before the slot that trio's clock was asked to wake at.
DUE_TOLERANCE: Final = 1e-3


@attrs.define(eq=False)
class _Timer:
    """One schedule and the first slot of it not dealt with yet."""

    schedule: Schedule
    next_slot: float = math.inf
    #: whether the store needs to hear of a new next slot
    changed: bool = True


async def scheduler(
    schedules: Sequence[Schedule],
    *,
    store: Store,
    settings: Settings,
    codec: Codec,
    clock: Clock,
    ready: trio.Event,
) -> None:
    """Fire the slots of ``schedules`` until cancelled. ``ready`` is set once the
    slots missed before the start are dealt with (or the first attempt failed)."""
    timers = [_Timer(schedule) for schedule in schedules]
    caught_up = False
    error_backoff = 0.0
    while True:
        try:
            if not caught_up:
                await _start(timers, store=store, settings=settings, codec=codec, clock=clock)
                caught_up = True
                worker_logger.info(
                    "running %d cron schedule(s): %s",
                    len(timers),
                    "; ".join(f"{t.schedule.name!r} next at {_iso(t.next_slot)}" for t in timers),
                )
            else:
                await _fire_due(timers, store=store, settings=settings, codec=codec, clock=clock)
            await _record(timers, store=store, clock=clock)
        except Exception:
            error_backoff = min(MAX_ERROR_BACKOFF, max(settings.poll_interval, 2 * error_backoff))
            worker_logger.exception("scheduling failed; trying again in %.1fs", error_backoff)
            deadline = trio.current_time() + error_backoff
        else:
            error_backoff = 0.0
            next_slot = min(timer.next_slot for timer in timers)
            deadline = min(clock.trio_deadline(next_slot), trio.current_time() + MAX_SLEEP)
        ready.set()
        await trio.sleep_until(deadline)


async def _start(
    timers: list[_Timer], *, store: Store, settings: Settings, codec: Codec, clock: Clock
) -> None:
    """Deal with the slots that passed while no pool ran each schedule."""
    recorded = {info.name: info for info in await store.list_schedules()}
    now = clock.now()
    for timer in timers:
        schedule = timer.schedule
        expression = schedule.expression
        since = _first_unfired(schedule, recorded.get(schedule.name))
        if since is not None and since < now and schedule.catch_up != "none":
            limit = MAX_CATCH_UP if schedule.catch_up == "all" else 1
            missed = expression.between(since, now - DUE_TOLERANCE, limit=limit)
            for slot in missed:
                await _fire(
                    schedule, slot, store=store, settings=settings, codec=codec, clock=clock
                )
        # a slot at the start (give or take the tolerance) is due now, not missed
        timer.next_slot = expression.first_from(now, tolerance=DUE_TOLERANCE)
        timer.changed = True


def _first_unfired(schedule: Schedule, info: ScheduleInfo | None) -> float | None:
    """The first slot the store has not seen fired: after its last fired slot, or the
    next slot a pool recorded it expected; ``None`` for a schedule new to the store."""
    if info is None:
        return None
    if info.last_slot is not None:
        return schedule.expression.next_after(info.last_slot)
    return info.next_slot


async def _fire_due(
    timers: list[_Timer], *, store: Store, settings: Settings, codec: Codec, clock: Clock
) -> None:
    now = clock.now() + DUE_TOLERANCE
    for timer in timers:
        if timer.next_slot > now:
            continue
        schedule = timer.schedule
        limit = MAX_CATCH_UP if schedule.catch_up == "all" else 1  # else the latest only
        due = schedule.expression.between(timer.next_slot, now, limit=limit)
        for slot in due:
            await _fire(schedule, slot, store=store, settings=settings, codec=codec, clock=clock)
        timer.next_slot = schedule.expression.next_after(now)
        timer.changed = True


async def _fire(
    schedule: Schedule,
    slot: float,
    *,
    store: Store,
    settings: Settings,
    codec: Codec,
    clock: Clock,
) -> None:
    task = schedule.task_for(slot, settings=settings, codec=codec, now=clock.now())
    enqueued = await store.fire_schedule(schedule.name, slot=slot, task=task)
    if enqueued is None:
        return  # another pool (or an earlier run of this one) fired it
    worker_logger.info(
        "schedule %r fired its %s slot: task %s%s",
        schedule.name,
        _iso(slot),
        enqueued.id,
        "" if enqueued.created else " (a task with its unique key exists; none created)",
        extra={"schedule": schedule.name, "slot": slot, "task_id": enqueued.id},
    )


async def _record(timers: list[_Timer], *, store: Store, clock: Clock) -> None:
    changed = [timer for timer in timers if timer.changed]
    if not changed:
        return
    now = clock.now()
    await store.register_schedules(
        [timer.schedule.info(next_slot=timer.next_slot, now=now) for timer in changed]
    )
    for timer in changed:
        timer.changed = False


def _iso(slot: float) -> str:
    return dt.datetime.fromtimestamp(slot, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
