"""The whole runtime on the PostgreSQL store, in one process: a client and a
worker pool, results waited for through LISTEN/NOTIFY.

Real I/O, so no mock clock; nothing here sleeps on purpose.
"""

from __future__ import annotations

import trio

from omniq_trio import AsyncOmniQ, Call, Settings, TaskStatus

from ..conftest import requires_postgres

pytestmark = requires_postgres

_failures: dict[str, int] = {}


async def double(x: int) -> int:
    return 2 * x


async def flaky(key: str) -> str:
    """Fails the first time it runs for ``key``."""
    _failures[key] = _failures.get(key, 0) + 1
    if _failures[key] == 1:
        raise ValueError(f"first run of {key}")
    return key


async def test_tasks_run_and_results_are_waited_for(dsn: str, schema: str) -> None:
    settings = Settings(
        backend="postgres", dsn=dsn, postgres_schema=schema, retry_backoff=0.01, retry_jitter=0
    )
    async with AsyncOmniQ(settings) as omniq, trio.open_nursery() as nursery:
        pool = omniq.worker(concurrency=4, poll_interval=30)  # NOTIFY, not polling
        await nursery.start(pool.run)
        ids = await omniq.enqueue_many([Call(double, (i,)) for i in range(50)])
        flaky_id = await omniq.enqueue(flaky, "f", max_retries=1)
        late = await omniq.enqueue(double, 100, delay=0.05)
        doomed = await omniq.enqueue(double, 0, delay=3600)
        with trio.fail_after(30):
            values = [(await omniq.get_result(i, wait=True)).value for i in ids]  # type: ignore[union-attr]
            flaky_result = await omniq.get_result(flaky_id, wait=True)
            late_result = await omniq.get_result(late, wait=True)
        assert values == [2 * i for i in range(50)]
        assert flaky_result is not None and (flaky_result.value, flaky_result.attempts) == ("f", 2)
        assert late_result is not None and late_result.value == 200
        assert await omniq.cancel(doomed)
        assert (await omniq.get_task(doomed)).status is TaskStatus.CANCELLED
        await pool.stop()
    stats = pool.statistics()
    assert (stats.tasks_succeeded, stats.tasks_retried) == (52, 1)
