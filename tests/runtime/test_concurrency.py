"""At most ``concurrency`` tasks run at once, and every task runs."""

from __future__ import annotations

import pytest
import trio

from omniq_trio import AsyncOmniQ, TaskStatus
from tests.runtime.conftest import SETTINGS, running
from tests.tasks import RuntimeProbe, rt_sleep, rt_sync_echo, rt_sync_meet


@pytest.mark.parametrize(("n", "concurrency"), [(1, 1), (10, 1), (10, 3), (7, 4), (3, 8)])
async def test_concurrency_bounds_running_tasks(
    autojump_clock: trio.abc.Clock,
    omniq: AsyncOmniQ,
    probe: RuntimeProbe,
    n: int,
    concurrency: int,
) -> None:
    ids = [await omniq.enqueue(rt_sleep, f"t{i}", 1.0) for i in range(n)]
    async with running(omniq, concurrency=concurrency) as pool:
        assert pool.concurrency == concurrency
        for task_id in ids:
            await omniq.get_result(task_id, wait=True)
    assert probe.max_running == min(n, concurrency)
    assert sorted(probe.runs) == sorted(f"t{i}" for i in range(n))
    assert all(count == 1 for count in probe.runs.values())
    # waves of `concurrency` one-second tasks, back to back
    assert trio.current_time() == -(-n // concurrency) * 1.0
    assert [t.status for t in await omniq.list_tasks()] == [TaskStatus.SUCCESS] * n


async def test_tasks_enqueued_while_running_respect_concurrency(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    async with running(omniq, concurrency=3):
        ids = []
        for i in range(12):
            ids.append(await omniq.enqueue(rt_sleep, f"t{i}", 2.0))
            await trio.sleep(0.5)
        for task_id in ids:
            await omniq.get_result(task_id, wait=True)
    assert probe.max_running == 3
    assert len(probe.runs) == 12


@pytest.mark.parametrize(("n", "concurrency"), [(8, 4), (6, 2), (3, 1)])
async def test_sync_tasks_in_threads_respect_concurrency(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe, n: int, concurrency: int
) -> None:
    # the threads wait for each other in groups of `concurrency`: each group
    # only completes if `concurrency` of them run at once, and more never do
    async with AsyncOmniQ(SETTINGS.evolve(sync_tasks="thread")) as omniq:
        ids = [await omniq.enqueue(rt_sync_meet, "meet", concurrency) for _ in range(n)]
        async with running(omniq, concurrency=concurrency):
            results = [await omniq.get_result(task_id, wait=True) for task_id in ids]
    assert [r.status for r in results if r] == [TaskStatus.SUCCESS] * n
    assert probe.runs["meet"] == n
    assert probe.max_running == concurrency


async def test_sync_tasks_in_threads_return_their_values(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(sync_tasks="thread")) as omniq:
        ids = [await omniq.enqueue(rt_sync_echo, i, key=str(i)) for i in range(20)]
        async with running(omniq, concurrency=5):
            results = [await omniq.get_result(task_id, wait=True) for task_id in ids]
    assert [r.value for r in results if r] == [
        {"args": [i], "kwargs": {"key": str(i)}} for i in range(20)
    ]
    assert probe.max_running <= 5
