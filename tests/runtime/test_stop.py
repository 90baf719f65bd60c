"""Stopping a pool: DESIGN.md's four steps, and the ways a stop can be asked for."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
import trio

from omniq_trio import AsyncOmniQ, ConfigError, Task, TaskStatus
from omniq_trio.store import Outcome
from tests.runtime.conftest import SETTINGS
from tests.tasks import RuntimeProbe, rt_nursery_sleep, rt_sleep, rt_sync_block


async def _statuses(omniq: AsyncOmniQ, *ids: str) -> list[TaskStatus]:
    return [(await omniq.get_task(task_id)).status for task_id in ids]


async def test_graceful_stop_lets_running_tasks_finish(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    a = await omniq.enqueue(rt_sleep, "a", 3.0)
    b = await omniq.enqueue(rt_sleep, "b", 5.0)
    later = await omniq.enqueue(rt_sleep, "later", 1.0)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker(concurrency=2)
        await nursery.start(pool.run)
        await trio.sleep(1.0)
        await pool.stop(timeout=10.0)
        # stop() returns when run() has: once b (the longer) has finished
        assert trio.current_time() == 5.0
        assert not pool.running
    assert await _statuses(omniq, a, b, later) == [
        TaskStatus.SUCCESS,
        TaskStatus.SUCCESS,
        TaskStatus.PENDING,
    ]
    assert probe.runs == {"a": 1, "b": 1}
    assert pool.statistics().tasks_processed == 2


async def test_stragglers_are_cancelled_at_the_deadline_and_released_uncharged(
    autojump_clock: trio.abc.Clock,
    omniq: AsyncOmniQ,
    probe: RuntimeProbe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    quick = await omniq.enqueue(rt_sleep, "quick", 2.0)
    slow = await omniq.enqueue(rt_sleep, "slow", 100.0, max_retries=3)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker(concurrency=2)
        await nursery.start(pool.run)
        await trio.sleep(1.0)
        await pool.stop(timeout=4.0)
        assert trio.current_time() == 5.0
    assert await _statuses(omniq, quick, slow) == [TaskStatus.SUCCESS, TaskStatus.PENDING]
    task = await omniq.get_task(slow)
    assert task.attempts == 0
    assert task.worker_id is None
    assert task.lease_until is None
    assert await omniq.get_result(slow) is None
    assert probe.ends == [("quick", 2.0)]  # slow never ended: it was cancelled
    assert pool.statistics().tasks_released == 1
    assert any(slow in r.getMessage() and "released" in r.getMessage() for r in caplog.records)


async def test_released_straggler_runs_again_on_the_next_pool(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    task_id = await omniq.enqueue(rt_sleep, "slow", 10.0)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await trio.sleep(1.0)
        await pool.stop(timeout=0)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        result = await omniq.get_result(task_id, wait=True)
        await pool.stop()
    assert result is not None
    assert result.status is TaskStatus.SUCCESS
    assert result.attempts == 1
    assert probe.started("slow") == [0.0, 1.0]
    assert trio.current_time() == 11.0


async def test_task_using_a_nursery_is_released_at_the_deadline(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_nursery_sleep, "nursery", 100.0)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await trio.sleep(1.0)
        await pool.stop(timeout=1.0)
    assert trio.current_time() == 2.0
    task = await omniq.get_task(task_id)
    assert task.status is TaskStatus.PENDING
    assert task.attempts == 0


async def test_backlog_stays_pending_and_is_not_held(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    # concurrency 1 and a long task: the rest of the queue waits, unclaimed,
    # so other workers could take it; a stop leaves it PENDING, uncharged
    first = await omniq.enqueue(rt_sleep, "first", 10.0)
    rest = [await omniq.enqueue(rt_sleep, f"rest{i}", 1.0) for i in range(3)]
    async with trio.open_nursery() as nursery:
        pool = omniq.worker(concurrency=1)
        await nursery.start(pool.run)
        await trio.sleep(1.0)
        running = await omniq.list_tasks(status=TaskStatus.RUNNING)
        assert [t.id for t in running] == [first]
        await pool.stop()
    assert await _statuses(omniq, first) == [TaskStatus.SUCCESS]
    for task_id in rest:
        task = await omniq.get_task(task_id)
        assert (task.status, task.attempts, task.started_at) == (TaskStatus.PENDING, 0, None)


async def test_stop_twice_shortens_the_deadline(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_sleep, "slow", 100.0)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await trio.sleep(1.0)
        nursery.start_soon(pool.stop, 50.0)
        await trio.sleep(2.0)
        assert pool.running
        await pool.stop(timeout=0)
        assert trio.current_time() == 3.0
        assert not pool.running
        await pool.stop()  # after the end: nothing to do
        await pool.stop(timeout=0)
    assert (await omniq.get_task(task_id)).status is TaskStatus.PENDING


async def test_a_longer_second_stop_does_not_extend_the_deadline(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    await omniq.enqueue(rt_sleep, "slow", 100.0)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await trio.sleep(1.0)
        nursery.start_soon(pool.stop, 5.0)
        await trio.sleep(1.0)
        await pool.stop(timeout=60.0)
        assert trio.current_time() == 6.0


async def test_stop_before_start_makes_run_return_at_once(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    task_id = await omniq.enqueue(rt_sleep, "never", 1.0)
    pool = omniq.worker()
    await pool.stop()
    await pool.stop()
    await pool.run()
    assert trio.current_time() == 0.0
    assert not pool.running
    assert (await omniq.get_task(task_id)).status is TaskStatus.PENDING
    assert probe.runs == {}
    with pytest.raises(RuntimeError, match="runs once"):
        await pool.run()


async def test_stop_with_a_bad_timeout_is_a_config_error(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    pool = omniq.worker()
    for bad in (-1, float("nan"), "5", True):
        with pytest.raises(ConfigError, match="stop timeout"):
            await pool.stop(timeout=bad)  # type: ignore[arg-type]


async def test_stop_does_not_wait_for_a_thread_that_ignores_cancellation(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(sync_tasks="thread")) as omniq:
        task_id = await omniq.enqueue(rt_sync_block, "stuck")
        async with trio.open_nursery() as nursery:
            pool = omniq.worker()
            await nursery.start(pool.run)
            # (real time, while the thread starts; virtual time may jump meanwhile)
            assert await trio.to_thread.run_sync(probe.blocked.wait, 10.0)
            start = trio.current_time()
            await pool.stop(timeout=3.0)
            assert trio.current_time() == start + 3.0
        task = await omniq.get_task(task_id)
        assert task.status is TaskStatus.PENDING
        assert task.attempts == 0


async def test_start_runs_until_stopped(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    pool = omniq.worker(concurrency=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pool.start)
        await trio.sleep(1.0)
        assert pool.running
        task_id = await omniq.enqueue(rt_sleep, "a", 1.0)
        await omniq.get_result(task_id, wait=True)
        assert trio.current_time() == 2.0
        await trio.sleep(600.0)
        assert pool.running
        await pool.stop()
    assert pool.uptime == 602.0
    assert pool.tasks_processed == 1


async def test_nursery_start_returns_once_running(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    pool = omniq.worker()
    async with trio.open_nursery() as nursery:
        assert not pool.running
        started = await nursery.start(pool.run)
        assert started is pool
        assert pool.running
        assert trio.current_time() == 0.0
        await pool.stop()


async def test_cancelling_the_surrounding_nursery_releases_running_tasks(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omniq_trio")
    ids = [await omniq.enqueue(rt_sleep, f"t{i}", 100.0) for i in range(5)]
    with trio.move_on_after(2.0):
        async with trio.open_nursery() as nursery:
            pool = omniq.worker(concurrency=3)
            await nursery.start(pool.run)
            await trio.sleep(1.0)
            assert len(await omniq.list_tasks(status=TaskStatus.RUNNING)) == 3
            nursery.cancel_scope.cancel()
    assert trio.current_time() == 1.0
    assert await _statuses(omniq, *ids) == [TaskStatus.PENDING] * 5
    assert not pool.running
    assert any("stopped" in r.getMessage() for r in caplog.records)


async def test_task_claimed_but_not_handed_over_is_released_uncharged(
    autojump_clock: trio.abc.Clock,
    omniq: AsyncOmniQ,
    probe: RuntimeProbe,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A store whose claim returns a while after making its change (as the
    # journal does, syncing to disk shielded): the stop comes in between.
    store = omniq.store
    claim = store.claim

    async def slow_claim(*args: Any, **kwargs: Any) -> list[Task]:
        tasks = await claim(*args, **kwargs)
        with trio.CancelScope(shield=True):
            await trio.sleep(1.0)
        return tasks

    monkeypatch.setattr(store, "claim", slow_claim)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await trio.sleep(1.0)
        task_id = await omniq.enqueue(rt_sleep, "b", 1.0)
        await trio.sleep(0.5)
        assert (await omniq.get_task(task_id)).status is TaskStatus.RUNNING
        await pool.stop()
        assert trio.current_time() == 2.0
    task = await omniq.get_task(task_id)
    assert (task.status, task.attempts, task.worker_id) == (TaskStatus.PENDING, 0, None)
    assert probe.runs == {}
    assert pool.statistics().tasks_processed == 0
    assert any("claimed but not started" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("stop_at", [0.5, 1.0, 2.0])
async def test_task_ending_right_at_the_deadline_has_its_outcome_recorded(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe, stop_at: float
) -> None:
    # the run ends and the deadline passes at the same virtual instant: a run
    # that ended is never thrown away (and run again) for want of a record
    task_id = await omniq.enqueue(rt_sleep, "edge", 5.0)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await trio.sleep(stop_at)
        await pool.stop(timeout=5.0 - stop_at)
    task = await omniq.get_task(task_id)
    if probe.ends:
        assert (task.status, task.attempts) == (TaskStatus.SUCCESS, 1)
    else:
        assert (task.status, task.attempts) == (TaskStatus.PENDING, 0)


def slow_outcomes(omniq: AsyncOmniQ, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the store take 0.5 s to write outcomes, as a journal's fsync may."""
    record = omniq.store.record

    async def slow_record(outcomes: Sequence[Outcome]) -> list[Exception | None]:
        await trio.sleep(0.5)
        return await record(outcomes)

    monkeypatch.setattr(omniq.store, "record", slow_record)


async def test_outcome_being_written_at_the_deadline_is_still_recorded(
    autojump_clock: trio.abc.Clock,
    omniq: AsyncOmniQ,
    probe: RuntimeProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A store that takes a while to write outcomes (a journal's fsync); the
    # stop deadline passes while it writes: the run has ended, it is no
    # straggler, so its outcome is recorded rather than the task run again.
    slow_outcomes(omniq, monkeypatch)
    task_id = await omniq.enqueue(rt_sleep, "a", 5.0)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await trio.sleep(5.25)
        await pool.stop(timeout=0)
        assert trio.current_time() == 5.5
    task = await omniq.get_task(task_id)
    assert (task.status, task.attempts) == (TaskStatus.SUCCESS, 1)
    assert probe.ends == [("a", 5.0)]
    assert pool.statistics().tasks_released == 0


async def test_outcomes_waiting_to_be_written_survive_a_cancelled_nursery(
    autojump_clock: trio.abc.Clock,
    omniq: AsyncOmniQ,
    probe: RuntimeProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The run has ended and its outcome waits for the store (a journal's group
    # commit) when the pool is cancelled from outside: it is still written,
    # not left RUNNING until its lease expires.
    slow_outcomes(omniq, monkeypatch)
    ids = [await omniq.enqueue(rt_sleep, f"t{i}", 5.0) for i in range(3)]
    with trio.move_on_after(5.25):
        async with trio.open_nursery() as nursery:
            pool = omniq.worker(concurrency=3)
            await nursery.start(pool.run)
            await trio.sleep_forever()
    # the write under way when the cancel came wrote nothing; it is made
    # again, shielded, with the other outcomes waiting in the channel
    assert trio.current_time() == 5.75
    assert await _statuses(omniq, *ids) == [TaskStatus.SUCCESS] * 3
    assert len(probe.ends) == 3
