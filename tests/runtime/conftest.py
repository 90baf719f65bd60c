"""Fixtures of the runtime tests: a memory-backed client, a running pool, the task probe.

Every async test here runs under trio's ``autojump_clock`` (enforced below), so
schedules of hours take milliseconds and times can be asserted exactly.
Exactness holds for times that are sums of binary fractions (1.0, 0.5, 7.25):
stored timestamps are wall-clock floats near 1.7e9, whose last bit is 2**-22 s.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from omniq_trio import AsyncOmniQ, Settings, WorkerPool
from tests.tasks import RuntimeProbe, fresh_probe

#: Deterministic settings: no jitter, sync tasks on the trio thread.
# Virtual time runs for days in these tests, and jumps while worker threads
# run: results must outlive it, or the lease keeper purges them mid-test.
SETTINGS = Settings(
    backend="memory", retry_jitter=0, sync_tasks="inline", result_ttl=365 * 86_400.0
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        func = getattr(item, "function", None)
        if (
            inspect.iscoroutinefunction(func)
            and "tests/runtime/" in str(item.path).replace("\\", "/")
            and "autojump_clock" not in getattr(item, "fixturenames", ())
        ):
            raise pytest.UsageError(f"{item.nodeid}: runtime tests must use autojump_clock")


@pytest.fixture(autouse=True)
def probe() -> Iterator[RuntimeProbe]:
    probe = fresh_probe()
    yield probe
    probe.unblock.set()  # threads it blocked may finish (they report to it alone)


@pytest.fixture
async def omniq() -> AsyncIterator[AsyncOmniQ]:
    async with AsyncOmniQ(SETTINGS) as client:
        yield client


@asynccontextmanager
async def running(omniq: AsyncOmniQ, **worker_options: Any) -> AsyncIterator[WorkerPool]:
    """A started pool of ``omniq``, stopped (gracefully) when the block ends."""
    async with trio.open_nursery() as nursery:
        pool = omniq.worker(**worker_options)
        await nursery.start(pool.run)
        yield pool
        await pool.stop()
