"""Leases: a dead worker's task is run again after its lease; a live worker's is not."""

from __future__ import annotations

import pytest
import trio

from omniq_trio import AsyncOmniQ, LeaseLostError, TaskStatus
from tests.runtime.conftest import SETTINGS, running
from tests.tasks import RuntimeProbe, rt_sleep

LEASE = 3.0
SHORT_LEASES = SETTINGS.evolve(lease_duration=LEASE)


async def test_task_of_a_dead_worker_is_reclaimed_after_its_lease(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    async with AsyncOmniQ(SHORT_LEASES) as omniq:
        task_id = await omniq.enqueue(rt_sleep, "orphan", 1.0)
        now = (await omniq.get_task(task_id)).created_at
        # a worker claims it and dies: it never renews, completes or releases
        (claimed,) = await omniq.store.claim("dead", now=now, limit=1, lease_until=now + LEASE)
        assert claimed.id == task_id
        async with running(omniq) as pool:
            result = await omniq.get_result(task_id, wait=True)
        # the lease keeper looks every LEASE/3 = 1s; the lease ends at 3.0 and is
        # seen expired (ended *before* now) at 4.0
        assert probe.starts == [("orphan", 4.0)]
        assert result is not None
        assert (result.status, result.attempts) == (TaskStatus.SUCCESS, 1)
        assert pool.statistics().tasks_processed == 1
        with pytest.raises(LeaseLostError, match="no longer holds"):
            await omniq.store.complete(task_id, worker_id="dead", value=None, at=now + 10)
        assert (await omniq.get_task(task_id)).status is TaskStatus.SUCCESS


async def test_long_task_of_a_live_pool_keeps_its_lease(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    async with AsyncOmniQ(SHORT_LEASES) as omniq:
        task_id = await omniq.enqueue(rt_sleep, "long", 20 * LEASE)
        # two pools on one store: the idle one would take the task if its lease lapsed
        async with running(omniq) as busy:
            await trio.sleep(0.5)
            async with running(omniq):
                for _ in range(10):
                    await trio.sleep(LEASE)
                    task = await omniq.get_task(task_id)
                    assert task.status is TaskStatus.RUNNING
                    assert task.worker_id == busy.worker_id
                    # it started at trio time 0: its lease runs past the present
                    assert task.lease_until is not None
                    assert task.started_at is not None
                    assert task.lease_until > task.started_at + trio.current_time()
                result = await omniq.get_result(task_id, wait=True)
    assert probe.runs == {"long": 1}
    assert result is not None
    assert (result.status, result.attempts) == (TaskStatus.SUCCESS, 1)
    assert trio.current_time() == 20 * LEASE


async def test_two_pools_share_the_work_without_running_a_task_twice(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    async with AsyncOmniQ(SHORT_LEASES) as omniq:
        ids = [await omniq.enqueue(rt_sleep, f"t{i}", 2.0) for i in range(12)]
        async with running(omniq, concurrency=2) as a, running(omniq, concurrency=2) as b:
            for task_id in ids:
                await omniq.get_result(task_id, wait=True)
            assert trio.current_time() == 6.0
            assert a.tasks_processed + b.tasks_processed == 12
            assert a.tasks_processed > 0
            assert b.tasks_processed > 0
    assert set(probe.runs.values()) == {1}
    assert probe.max_running == 4
