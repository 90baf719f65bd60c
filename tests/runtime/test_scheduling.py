"""When tasks run: eta and delay, repeating intervals, priorities, and how fast the poller wakes."""

from __future__ import annotations

import datetime as dt

import pytest
import trio

from omniq_trio import AsyncOmniQ, Call, TaskStatus
from tests.runtime.conftest import running
from tests.tasks import RuntimeProbe, rt_flaky, rt_sleep

HOUR = 3600.0
#: Tests over hours poll rarely: etas wake the poller anyway, and idle polls
#: every second for hours would cost real time.
SLOW_POLL = 600.0


async def test_delayed_tasks_start_exactly_at_their_eta(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    async with running(omniq, concurrency=4, poll_interval=SLOW_POLL):
        now_id = await omniq.enqueue(rt_sleep, "now")
        created_at = (await omniq.get_task(now_id)).created_at
        await omniq.enqueue(rt_sleep, "1h", delay=HOUR)
        await omniq.enqueue(rt_sleep, "90m", delay=dt.timedelta(minutes=90))
        await omniq.enqueue(rt_sleep, "2.5h", eta=created_at + 2.5 * HOUR)
        await omniq.enqueue(rt_sleep, "past", eta=created_at - HOUR)
        aware = dt.datetime.fromtimestamp(created_at + 3 * HOUR, tz=dt.UTC)
        await omniq.enqueue(rt_sleep, "3h", eta=aware)
        await trio.sleep(4 * HOUR)
    # "now" and "past" are both due at once: which starts first depends on when
    # the worker looks, between the two enqueues or after both
    assert sorted(probe.starts[:2]) == [("now", 0.0), ("past", 0.0)]
    assert probe.starts[2:5] == [
        ("1h", HOUR),
        ("90m", 1.5 * HOUR),
        ("2.5h", 2.5 * HOUR),
    ]
    # a datetime holds microseconds, so its eta is exact to a microsecond
    assert probe.starts[5][0] == "3h"
    assert probe.starts[5][1] == pytest.approx(3 * HOUR, abs=1e-6)


async def test_eta_is_stored_as_given(autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ) -> None:
    at = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    task_id = await omniq.enqueue(rt_sleep, "x", eta=at)
    assert (await omniq.get_task(task_id)).eta == at.timestamp()
    delayed = await omniq.enqueue(rt_sleep, "y", delay=30)
    task = await omniq.get_task(delayed)
    assert task.eta == task.created_at + 30


async def test_interval_task_runs_on_its_grid_for_hours(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    task_id = await omniq.enqueue(rt_sleep, "tick", 10.0, interval=HOUR, delay=60)
    async with running(omniq, poll_interval=SLOW_POLL):
        await trio.sleep(5 * HOUR)
        task = await omniq.get_task(task_id)
        result = await omniq.get_result(task_id)
    assert probe.started("tick") == [60.0 + k * HOUR for k in range(5)]
    assert task.status is TaskStatus.PENDING
    assert task.eta == task.created_at + 60 + 5 * HOUR
    assert task.attempts == 0
    assert result is not None
    assert (result.status, result.value) == (TaskStatus.SUCCESS, "tick")


async def test_interval_task_skips_slots_it_overran(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    await omniq.enqueue(rt_sleep, "long", 150.0, interval=60)
    async with running(omniq):
        await trio.sleep(600)
    # runs 0-150, next slot on the 60s grid after 150 is 180, and so on
    assert probe.started("long") == [0.0, 180.0, 360.0, 540.0]


async def test_interval_task_skips_slots_missed_while_no_worker_ran(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    await omniq.enqueue(rt_sleep, "tick", 1.0, interval=60)
    await trio.sleep(250)
    async with running(omniq):
        await trio.sleep(200)
    # overdue since 0: runs once at 250, then back on the grid (300, 360, 420)
    assert probe.started("tick") == [250.0, 300.0, 360.0, 420.0]


async def test_failing_interval_task_keeps_its_schedule(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    task_id = await omniq.enqueue(rt_flaky, "tick", 2, interval=10)
    async with running(omniq):
        await trio.sleep(15)
        failed = await omniq.get_result(task_id)
        await trio.sleep(10)
        succeeded = await omniq.get_result(task_id)
        await omniq.cancel(task_id)
        await trio.sleep(100)
    assert probe.started("tick") == [0.0, 10.0, 20.0]
    assert failed is not None
    assert failed.status is TaskStatus.FAILED
    assert succeeded is not None
    assert succeeded.status is TaskStatus.SUCCESS
    assert (await omniq.get_task(task_id)).status is TaskStatus.CANCELLED


async def test_priority_then_eta_then_fifo(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    created_at = (await omniq.get_task(await omniq.enqueue(rt_sleep, "p0-a"))).created_at
    await trio.sleep(1)
    await omniq.enqueue(rt_sleep, "p1-late", priority=1)
    await omniq.enqueue(rt_sleep, "p5", priority=5)
    await omniq.enqueue(rt_sleep, "p1-early", priority=1, eta=created_at - 10)
    await omniq.enqueue_many(
        [Call(rt_sleep, (f"p0-{x}",)) for x in "bcd"]
        + [
            Call(rt_sleep, ("p-1",), priority=-1),
            Call(rt_sleep, ("p9-later",), priority=9, delay=HOUR),
        ]
    )
    await trio.sleep(10)
    async with running(omniq, concurrency=1, poll_interval=SLOW_POLL):
        await trio.sleep(2 * HOUR)
    assert probe.order() == [
        "p5",
        "p1-early",
        "p1-late",
        "p0-a",
        "p0-b",
        "p0-c",
        "p0-d",
        "p-1",
        "p9-later",
    ]
    assert probe.started("p9-later") == [1.0 + HOUR]


async def test_higher_priority_enqueued_while_busy_goes_first(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    async with running(omniq, concurrency=1):
        await omniq.enqueue(rt_sleep, "first", 10.0)
        await trio.sleep(1)
        await omniq.enqueue(rt_sleep, "low", 1.0)
        await trio.sleep(1)
        await omniq.enqueue(rt_sleep, "high", 1.0, priority=10)
        await trio.sleep(20)
    assert probe.starts == [("first", 0.0), ("high", 10.0), ("low", 11.0)]


async def test_enqueue_wakes_the_poller_at_once(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    async with running(omniq, poll_interval=60) as pool:
        assert pool.poll_interval == 60
        await trio.sleep(5)
        await omniq.enqueue(rt_sleep, "a")
        await trio.sleep(100)
        await omniq.enqueue(rt_sleep, "b")
        await trio.sleep(1)
    assert probe.starts == [("a", 5.0), ("b", 105.0)]


async def test_poller_sleeps_until_the_next_eta_not_the_poll_interval(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    async with running(omniq, poll_interval=60):
        await omniq.enqueue(rt_sleep, "in-100", delay=100)
        await omniq.enqueue(rt_sleep, "in-7", delay=7)
        await trio.sleep(10)
        # an earlier eta than the one the poller sleeps towards
        await omniq.enqueue(rt_sleep, "in-5", delay=5)
        await trio.sleep(200)
    assert probe.starts == [("in-7", 7.0), ("in-5", 15.0), ("in-100", 100.0)]
