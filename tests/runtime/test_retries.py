"""Retries: how many runs, when (the backoff, exactly), and what timeouts do."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from omniq_trio import AsyncOmniQ, TaskStatus
from tests.runtime.conftest import SETTINGS, running
from tests.tasks import RuntimeProbe, rt_flaky, rt_sleep, rt_sync_block, rt_sync_echo


@pytest.mark.parametrize(
    ("failures", "max_retries"),
    [(0, 0), (1, 0), (0, 2), (1, 2), (2, 2), (3, 2), (7, 3), (4, 10)],
)
async def test_runs_min_failures_retries_plus_one(
    autojump_clock: trio.abc.Clock,
    omniq: AsyncOmniQ,
    probe: RuntimeProbe,
    failures: int,
    max_retries: int,
) -> None:
    task_id = await omniq.enqueue(rt_flaky, "f", failures, max_retries=max_retries)
    async with running(omniq) as pool:
        result = await omniq.get_result(task_id, wait=True)
    runs = min(failures, max_retries) + 1
    assert probe.runs["f"] == runs
    assert result is not None
    assert result.attempts == runs
    if failures <= max_retries:
        assert result.status is TaskStatus.SUCCESS
        assert result.value == "f"
        assert result.error is None
    else:
        assert result.status is TaskStatus.FAILED
        assert result.error is not None
        assert result.error.type == "ValueError"
        assert result.error.message == f"f failure {runs} of {failures}"
    # first retry after 1s, then 2, 4, 8, ...
    assert probe.started("f") == [float(2**i - 1) for i in range(runs)]
    stats = pool.statistics()
    assert stats.tasks_retried == runs - 1
    assert stats.tasks_processed == runs
    assert (stats.tasks_succeeded, stats.tasks_failed) == (
        (1, 0) if failures <= max_retries else (0, 1)
    )


async def test_backoff_counts_from_the_end_of_the_failed_run_and_is_capped(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    settings = SETTINGS.evolve(retry_backoff=0.5, retry_backoff_max=3.0)
    async with AsyncOmniQ(settings) as omniq:
        task_id = await omniq.enqueue(rt_flaky, "f", 6, 10.0, max_retries=6, delay=2)
        async with running(omniq):
            result = await omniq.get_result(task_id, wait=True)
    assert result is not None
    assert result.status is TaskStatus.SUCCESS
    # each run takes 10s; waits 0.5, 1, 2, then capped at 3
    assert probe.started("f") == [2.0, 12.5, 23.5, 35.5, 48.5, 61.5, 74.5]
    assert trio.current_time() == 84.5


async def test_status_is_retrying_while_waiting(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_flaky, "f", 2, 1.0, max_retries=2)
    async with running(omniq):
        seen = []
        await trio.sleep(0.25)  # look between the changes, never at one
        for _ in range(13):
            seen.append((await omniq.get_task(task_id)).status)
            await trio.sleep(0.5)
    # runs 0-1, waits 1-2, runs 2-3, waits 3-5, runs 5-6
    r, w, s = TaskStatus.RUNNING, TaskStatus.RETRYING, TaskStatus.SUCCESS
    assert seen == [r, r, w, w, r, r, w, w, w, w, r, r, s]
    task = await omniq.get_task(task_id)
    assert task.attempts == 3
    assert task.error is None


async def test_retrying_task_keeps_its_last_error(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_flaky, "f", 5, max_retries=5, delay=0)
    async with running(omniq):
        await trio.sleep(0.5)
        task = await omniq.get_task(task_id)
        assert task.status is TaskStatus.RETRYING
        assert task.attempts == 1
        assert task.error is not None
        assert task.error.message == "f failure 1 of 5"
        assert "ValueError" in task.error.traceback
        assert await omniq.get_result(task_id) is None
        await omniq.cancel(task_id)


async def test_timeout_fails_without_retry(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    task_id = await omniq.enqueue(rt_sleep, "slow", 100.0, timeout=5, max_retries=3)
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
        assert trio.current_time() == 5.0
    assert result is not None
    assert result.status is TaskStatus.FAILED
    assert result.attempts == 1
    assert result.error is not None
    assert result.error.type == "omniq_trio.errors.TaskTimeoutError"
    assert "timed out after 5.0s" in result.error.message
    assert probe.runs["slow"] == 1


async def test_timeout_retries_when_asked(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    task_id = await omniq.enqueue(
        rt_sleep, "slow", 100.0, timeout=5, max_retries=2, retry_on_timeout=True
    )
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None
    assert (result.status, result.attempts) == (TaskStatus.FAILED, 3)
    # 0-5 timeout, wait 1; 6-11 timeout, wait 2; 13-18 timeout
    assert probe.started("slow") == [0.0, 6.0, 13.0]
    assert trio.current_time() == 18.0


async def test_task_within_its_timeout_succeeds(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_sleep, "quick", 4.0, timeout=5)
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None
    assert result.status is TaskStatus.SUCCESS


async def test_default_timeout_and_retries_come_from_settings(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    settings = SETTINGS.evolve(default_timeout=2.0, default_max_retries=1)
    async with AsyncOmniQ(settings) as omniq:
        task_id = await omniq.enqueue(rt_flaky, "f", 5)
        slow_id = await omniq.enqueue(rt_sleep, "slow", 3.0)
        async with running(omniq, concurrency=2):
            result = await omniq.get_result(task_id, wait=True)
            slow = await omniq.get_result(slow_id, wait=True)
    assert result is not None
    assert (result.status, result.attempts) == (TaskStatus.FAILED, 2)
    assert slow is not None
    assert slow.status is TaskStatus.FAILED
    assert slow.error is not None
    assert slow.error.type.endswith("TaskTimeoutError")


async def test_timeout_of_a_sync_task_in_a_thread_fails_it(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(sync_tasks="thread")) as omniq:
        task_id = await omniq.enqueue(rt_sync_block, "stuck", timeout=5, max_retries=2)
        async with running(omniq):
            result = await omniq.get_result(task_id, wait=True)
            # the thread cannot be interrupted; the task's outcome does not wait for it
            assert trio.current_time() == 5.0
    assert result is not None
    assert (result.status, result.attempts) == (TaskStatus.FAILED, 1)
    assert result.error is not None
    assert result.error.type.endswith("TaskTimeoutError")


async def test_sync_task_waiting_for_a_thread_does_not_time_out_meanwhile(
    autojump_clock: trio.testing.MockClock, probe: RuntimeProbe
) -> None:
    # the thread of a timed-out task cannot be interrupted and keeps its slot
    # (concurrency 1) until it ends; the next task's timeout starts only
    # once it has a thread of its own
    async with AsyncOmniQ(SETTINGS.evolve(sync_tasks="thread")) as omniq:
        stuck = await omniq.enqueue(rt_sync_block, "stuck", timeout=5)
        after = await omniq.enqueue(rt_sync_echo, "after", timeout=5)
        async with running(omniq, concurrency=1):
            assert await omniq.get_result(stuck, wait=True) is not None
            assert trio.current_time() == 5.0
            await trio.sleep(20)
            assert await omniq.get_result(after) is None
            assert probe.runs["sync-echo"] == 0
            # From here threads run (the stuck one ends, then the next one):
            # the clock must not jump past the timeout while they do.
            autojump_clock.autojump_threshold = 30.0
            probe.unblock.set()
            result = await omniq.get_result(after, wait=True)
    assert result is not None
    assert result.status is TaskStatus.SUCCESS
    assert result.value == {"args": ["after"], "kwargs": {}}
