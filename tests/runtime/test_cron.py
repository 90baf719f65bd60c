"""Cron schedules in worker pools: each slot fired once across pools and restarts, on the
wall clock of the schedule's timezone (DST included), catch-up after downtime, and drain."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trio

from omniq_trio import (
    AsyncOmniQ,
    ConfigError,
    Schedule,
    ScheduleError,
    TaskStatus,
    WorkerPool,
)
from omniq_trio._clock import Clock
from omniq_trio.store import MemoryStore
from omniq_trio.testing import drain, open_test_omniq
from tests.runtime.conftest import SETTINGS
from tests.tasks import RuntimeProbe, rt_flaky, rt_sleep

HOUR = 3600.0
DAY = 24 * HOUR
BERLIN = ZoneInfo("Europe/Berlin")
#: A week over the end of summer time in Europe (Sunday 2026-10-25, 03:00 CEST -> 02:00 CET).
FALL_WEEK = dt.datetime(2026, 10, 21, tzinfo=dt.UTC).timestamp()
#: A week over its start (Sunday 2026-03-29, 02:00 CET -> 03:00 CEST).
SPRING_WEEK = dt.datetime(2026, 3, 25, tzinfo=dt.UTC).timestamp()
#: Days of simulated time poll and renew rarely: etas and slots wake the actors anyway.
WEEK_SETTINGS = SETTINGS.evolve(poll_interval=600.0, lease_duration=3 * HOUR)


@asynccontextmanager
async def pool_running(omniq: AsyncOmniQ, **options: Any) -> AsyncIterator[WorkerPool]:
    async with trio.open_nursery() as nursery:
        pool = omniq.worker(**options)
        await nursery.start(pool.run)
        yield pool
        await pool.stop()


def client(store: MemoryStore, start: float) -> AsyncOmniQ:
    """A client of ``store`` (as another process would have), its wall clock at ``start`` at 0."""
    return AsyncOmniQ(WEEK_SETTINGS, store=store, clock=Clock(start=start))


def local(task_eta: float) -> str:
    return dt.datetime.fromtimestamp(task_eta, BERLIN).strftime("%m-%d %H:%M %Z")


async def runs_of(omniq: AsyncOmniQ, label: str) -> list[float]:
    """The slots (etas) of the tasks a schedule of ``label`` enqueued, checking each ran."""
    tasks = [t for t in await omniq.list_tasks() if t.args == (label,)]
    assert {t.status for t in tasks} <= {TaskStatus.SUCCESS}
    assert all(t.eta == t.scheduled_at for t in tasks)
    return sorted(t.eta for t in tasks)


async def test_two_pools_fire_each_slot_of_a_week_once_across_the_end_of_summer_time(
    autojump_clock: trio.abc.Clock,
) -> None:
    hourly = Schedule(rt_sleep, "0 * * * *", args=("hourly",), timezone="Europe/Berlin")
    nightly = Schedule(rt_sleep, "30 2 * * *", args=("nightly",), timezone="Europe/Berlin")
    store = MemoryStore()
    # two processes' pools on one store, with overlapping lives: A runs days 0-5,
    # B days 2-7; both run each slot of days 2-5
    a, b = client(store, FALL_WEEK), client(store, FALL_WEEK)
    async with a, b, trio.open_nursery() as nursery:

        async def pool_a() -> None:
            async with pool_running(a, schedules=[hourly, nightly]):
                await trio.sleep(5 * DAY)

        async def pool_b() -> None:
            await trio.sleep(2 * DAY)
            async with pool_running(b, schedules=[hourly, nightly]):
                await trio.sleep(5 * DAY - 1)

        nursery.start_soon(pool_a)
        nursery.start_soon(pool_b)
    hours = await runs_of(a, "hourly")
    # the first slot is the pool's start (00:00 UTC, 02:00 CEST); the last is
    # before B's stop. 02:00-02:59 happens twice on 25 October: one slot.
    assert hours[0] == FALL_WEEK
    assert len(hours) == 7 * 24 - 1
    assert len(set(hours)) == len(hours)
    fall = dt.datetime(2026, 10, 25, tzinfo=dt.UTC).timestamp()
    assert [local(t) for t in hours if fall <= t < fall + 4 * HOUR] == [
        "10-25 02:00 CEST",  # 00:00 UTC
        # 01:00 UTC is 02:00 CET, the second pass: no slot
        "10-25 03:00 CET",  # 02:00 UTC
        "10-25 04:00 CET",
    ]
    nights = await runs_of(a, "nightly")
    assert [local(t) for t in nights] == [
        "10-21 02:30 CEST",
        "10-22 02:30 CEST",
        "10-23 02:30 CEST",
        "10-24 02:30 CEST",
        "10-25 02:30 CEST",  # once, at its first occurrence
        "10-26 02:30 CET",
        "10-27 02:30 CET",
    ]
    # and each ran at its slot
    for task in await a.list_tasks():
        assert task.started_at == task.eta
    (info_h, info_n) = await b.list_schedules()
    assert info_h.name == "tests.tasks:rt_sleep 0 * * * *"
    assert (info_h.timezone, info_h.cron, info_h.func) == (
        "Europe/Berlin",
        "0 * * * *",
        "tests.tasks:rt_sleep",
    )
    assert info_h.last_slot == hours[-1]
    assert info_h.next_slot == hours[-1] + HOUR
    assert info_n.last_slot == nights[-1]


async def test_a_wall_time_the_clocks_skip_is_no_slot(autojump_clock: trio.abc.Clock) -> None:
    nightly = Schedule(rt_sleep, "30 2 * * *", args=("nightly",), timezone="Europe/Berlin")
    quarterly = Schedule(rt_sleep, "*/15 1-3 29 3 *", args=("q",), timezone="Europe/Berlin")
    async with open_test_omniq(WEEK_SETTINGS, start=SPRING_WEEK) as omniq:
        await drain(omniq, schedules=[nightly, quarterly], within=7 * DAY)
        nights = await runs_of(omniq, "nightly")
        quarters = await runs_of(omniq, "q")
    assert [local(t) for t in nights] == [
        "03-25 02:30 CET",
        "03-26 02:30 CET",
        "03-27 02:30 CET",
        "03-28 02:30 CET",
        # 29 March: 02:30 does not exist
        "03-30 02:30 CEST",
        "03-31 02:30 CEST",
    ]
    assert [local(t)[6:11] for t in quarters] == [
        "01:00",
        "01:15",
        "01:30",
        "01:45",
        "03:00",
        "03:15",
        "03:30",
        "03:45",
    ]


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        # down from 01:00 to 05:30: slots 02:00-05:00 were missed
        ("latest", [0, 1, 5, 6, 7]),
        ("all", [0, 1, 2, 3, 4, 5, 6, 7]),
        ("none", [0, 1, 6, 7]),
    ],
)
async def test_slots_missed_while_no_pool_ran(
    autojump_clock: trio.abc.Clock, catch_up: str, expected: list[int]
) -> None:
    hourly = Schedule(rt_sleep, "@hourly", args=("h",), catch_up=catch_up)  # type: ignore[arg-type]
    store = MemoryStore()
    async with client(store, FALL_WEEK) as omniq:
        async with pool_running(omniq, schedules=[hourly]):
            await trio.sleep(1.5 * HOUR)
        await trio.sleep(4 * HOUR)  # no pool
        async with pool_running(omniq, schedules=[hourly]):
            await trio.sleep(2 * HOUR)
        tasks = sorted(await omniq.list_tasks(), key=lambda t: t.eta)
    assert [round((t.eta - FALL_WEEK) / HOUR) for t in tasks] == expected
    # the missed runs start at the restart (5:30), the rest at their slots
    stop, restart = FALL_WEEK + 1.5 * HOUR, FALL_WEEK + 5.5 * HOUR
    assert [t.started_at for t in tasks] == [
        t.eta if t.eta < stop else max(t.eta, restart) for t in tasks
    ]


async def test_a_schedule_new_to_the_store_starts_with_the_next_slot(
    autojump_clock: trio.abc.Clock,
) -> None:
    every_5 = Schedule(rt_sleep, "*/5 * * * *", args=("5",))
    async with client(MemoryStore(), FALL_WEEK + 60) as omniq:
        async with pool_running(omniq, schedules=[every_5]) as pool:
            assert pool.schedules == (every_5,)
            (info,) = await omniq.list_schedules()
            assert (info.last_slot, info.next_slot) == (None, FALL_WEEK + 300)
            await trio.sleep(10 * 60)
        slots = await runs_of(omniq, "5")
    assert slots == [FALL_WEEK + 300, FALL_WEEK + 600]


async def test_drain_runs_the_next_slots_and_stops_at_the_last(
    autojump_clock: trio.abc.Clock,
) -> None:
    nightly = Schedule(rt_sleep, "@daily", args=("nightly", 60.0), name="nightly")
    async with open_test_omniq(start=FALL_WEEK + HOUR, result_ttl=30 * DAY) as omniq:
        results = await drain(omniq, schedules=[nightly], slots=2)
        assert omniq.clock.now() == FALL_WEEK + 2 * DAY + 60
        assert [r.value for r in results.values()] == ["nightly", "nightly"]
        assert [t.eta for t in await omniq.list_tasks()] == [
            FALL_WEEK + DAY,
            FALL_WEEK + 2 * DAY,
        ]
        with pytest.raises(ScheduleError, match="slots must be a whole number >= 1, got 0"):
            await drain(omniq, schedules=[nightly], slots=0)
        with pytest.raises(ScheduleError, match="needs the schedules="):
            await drain(omniq, slots=1)


async def test_a_failing_run_is_retried_without_moving_the_next_slot(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    flaky = Schedule(rt_flaky, "*/10 * * * *", args=("flaky", 2), max_retries=2)
    async with open_test_omniq(start=FALL_WEEK, retry_backoff=30.0) as omniq:
        await drain(omniq, schedules=[flaky], slots=2)
    # slot 0 runs, fails twice (backoff 30 s, then 60 s), succeeds; slot 600 on time
    assert probe.started("flaky") == [0.0, 30.0, 90.0, 600.0]


async def test_schedules_defined_at_module_level_in_imports_are_picked_up(
    autojump_clock: trio.abc.Clock,
) -> None:
    settings = WEEK_SETTINGS.evolve(imports=("tests.runtime.cron_schedules",))
    async with AsyncOmniQ(settings, clock=Clock(start=FALL_WEEK + 1)) as omniq:
        pool = omniq.worker()
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            names = [s.name for s in pool.schedules]
            await trio.sleep(HOUR)
            await pool.stop()
        assert names == ["module-hourly", "tests.tasks:rt_sleep */30 * * * *"]
        assert len(await omniq.list_tasks()) == 3  # 00:30, 01:00 (twice: two schedules)
        none = omniq.worker(schedules=[])
        assert none.schedules == ()


async def test_bad_schedules_are_refused_by_name(autojump_clock: trio.abc.Clock) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cron": "*/5 * * *"}, "cron expression '\\*/5 \\* \\* \\*' must have five fields"),
        ({"cron": "61 * * * *"}, "bad cron expression '61 \\* \\* \\* \\*': Bad minute"),
        ({"cron": "0 0 * * * *"}, "must have five fields"),
        ({"cron": "@reboot"}, "must have five fields .* or be one of @yearly"),
        ({"cron": 5}, "cron must be a string"),
        ({"cron": "@daily", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"cron": "@daily", "queue": "bad queue"}, "schedule queue must be a queue name"),
        ({"cron": "@daily", "catch_up": "some"}, "catch_up must be one of"),
        ({"cron": "@daily", "name": ""}, "schedule name must be a non-empty string"),
        ({"cron": "@daily", "max_retries": -1}, "schedule max_retries must be an integer >= 0"),
        ({"cron": "@daily", "timeout": 0}, "schedule timeout must be > 0 seconds"),
        ({"cron": "@daily", "args": "abc"}, "schedule args must be a tuple or list"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ScheduleError, match=message):
            Schedule(rt_sleep, **kwargs)
    async with open_test_omniq() as omniq:
        daily = Schedule(rt_sleep, "@daily", args=(object(),))
        with pytest.raises(Exception, match="JSON"):
            omniq.worker(schedules=[daily])
        twin = Schedule(rt_sleep, "@hourly", name="x")
        other = Schedule(rt_sleep, "@daily", name="x")
        with pytest.raises(ScheduleError, match="two different schedules are named 'x'"):
            omniq.worker(schedules=[twin, other])
        assert omniq.worker(schedules=[twin, twin]).schedules == (twin,)
        with pytest.raises(ScheduleError, match="must be a list of Schedule"):
            omniq.worker(schedules=twin)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="queues=\\[\\] names no queue"):
            omniq.worker(queues=[])
        assert await omniq.list_schedules() == []
        assert await omniq.list_tasks() == []
