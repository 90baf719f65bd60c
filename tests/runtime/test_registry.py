"""The worker registry: a running pool lists itself, with its heartbeat; a stopped one
leaves; a dead one ages out once its heartbeat is older than its lease."""

from __future__ import annotations

import logging
import os
import socket

import pytest
import trio

from omniq_trio import AsyncOmniQ, TaskStatus, WorkerInfo
from omniq_trio.store import MemoryStore
from tests.runtime.conftest import SETTINGS, running
from tests.runtime.monitor_tasks import mon_sleep

LEASE = 3.0
BEAT = LEASE / 3
SHORT_LEASES = SETTINGS.evolve(lease_duration=LEASE)


async def test_a_running_pool_lists_itself_with_its_running_tasks_and_leaves_at_stop(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with AsyncOmniQ(SHORT_LEASES) as omniq:
        assert await omniq.list_workers() == []
        t0 = omniq.clock.now()
        async with running(omniq, concurrency=3) as pool:
            (info,) = await omniq.list_workers()
            assert info == WorkerInfo(
                id=pool.worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                concurrency=3,
                queues=None,
                started_at=t0,
                last_seen=t0,
                expires_at=t0 + LEASE,
                running=(),
                succeeded=0,
                failed=0,
            )
            long_id = await omniq.enqueue(mon_sleep, 10.0)
            short_id = await omniq.enqueue(mon_sleep, 1.5)
            await trio.sleep(BEAT + 0.25)  # past the next heartbeat
            (info,) = await omniq.list_workers()
            assert info.running == tuple(sorted([long_id, short_id]))
            assert (info.last_seen, info.expires_at) == (t0 + BEAT, t0 + BEAT + LEASE)
            await trio.sleep(BEAT)
            (info,) = await omniq.list_workers()
            assert (info.running, info.succeeded, info.failed) == ((long_id,), 1, 0)
            assert info.started_at == t0
        # stop() waited for the long task; the pool is gone from the registry at once
        assert trio.current_time() == 10.0
        assert await omniq.list_workers() == []
        assert (await omniq.get_task(long_id)).status is TaskStatus.SUCCESS


async def test_two_pools_are_listed_by_start_time(autojump_clock: trio.abc.Clock) -> None:
    async with AsyncOmniQ(SHORT_LEASES) as omniq, running(omniq) as first:
        await trio.sleep(0.5)
        async with running(omniq, concurrency=2) as second:
            workers = await omniq.list_workers()
            assert [w.id for w in workers] == [first.worker_id, second.worker_id]
            assert [w.concurrency for w in workers] == [1, 2]
        assert [w.id for w in await omniq.list_workers()] == [first.worker_id]


async def test_a_pool_lists_the_queues_it_claims_from(autojump_clock: trio.abc.Clock) -> None:
    async with AsyncOmniQ(SHORT_LEASES) as omniq:
        async with running(omniq, queues={"mail": 2, "default": None}):
            (info,) = await omniq.list_workers()
        assert info.queues == ("mail", "default")


class _NoGoodbye(MemoryStore):  # type: ignore[misc]  # final to users, not to tests
    """A store whose pools cannot unregister: as if each were killed at its stop."""

    async def unregister_worker(self, worker_id: str) -> None:
        raise OSError("the connection went away")


async def test_a_pool_that_dies_ages_out_once_its_heartbeat_is_older_than_its_lease(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncOmniQ(SHORT_LEASES, store=_NoGoodbye()) as omniq:
        t0 = omniq.clock.now()
        async with trio.open_nursery() as nursery:
            pool = omniq.worker()
            await nursery.start(pool.run)
            await trio.sleep(2 * BEAT + 0.5)  # two more heartbeats: the last at 2.0
            await pool.stop()
        assert "removing worker" in caplog.text
        (info,) = await omniq.list_workers()
        assert (info.id, info.last_seen, info.expires_at) == (
            pool.worker_id,
            t0 + 2 * BEAT,
            t0 + 2 * BEAT + LEASE,
        )
        await trio.sleep(info.expires_at - omniq.clock.now())
        assert [w.id for w in await omniq.list_workers()] == [pool.worker_id]  # not yet
        await trio.sleep(0.25)
        assert await omniq.list_workers() == []


class _NoRegistry(MemoryStore):  # type: ignore[misc]
    """A store that keeps no worker registry (as the PostgreSQL store before it did)."""

    async def register_worker(self, info: WorkerInfo) -> None:
        raise NotImplementedError("no registry here")


async def test_a_store_without_a_registry_runs_tasks_and_says_so_once(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "omniq_trio")
    async with AsyncOmniQ(SHORT_LEASES, store=_NoRegistry()) as omniq:
        task_id = await omniq.enqueue(mon_sleep, 5 * LEASE)
        async with running(omniq):
            result = await omniq.get_result(task_id, wait=True)
    assert result is not None and result.status is TaskStatus.SUCCESS
    warnings = [r for r in caplog.records if "keeps no worker registry" in r.message]
    assert len(warnings) == 1
