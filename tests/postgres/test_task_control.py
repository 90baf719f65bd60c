"""Task control across processes on PostgreSQL: a cancel from another process
reaches the worker through NOTIFY; a task that kills its worker ends FAILED after
``max_lost_runs + 1`` runs; in one process, cancel, context and progress.
"""

from __future__ import annotations

from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Settings, TaskStatus
from tests._control_procs import check_cancel_across_processes, check_lost_runs_end_failed
from tests.conftest import requires_postgres
from tests.runtime import control_tasks as ct

pytestmark = requires_postgres


def _settings(dsn: str, schema: str) -> tuple[Settings, dict[str, object]]:
    settings = Settings(backend="postgres", dsn=dsn, postgres_schema=schema)
    return settings, {"backend": "postgres", "dsn": dsn, "postgres_schema": schema}


def test_a_cancel_from_another_process_interrupts_the_run(
    dsn: str, schema: str, tmp_path: Path
) -> None:
    settings, worker = _settings(dsn, schema)
    check_cancel_across_processes(settings, worker, tmp_path)


def test_a_task_that_kills_its_worker_ends_failed_after_max_lost_runs(
    dsn: str, schema: str, tmp_path: Path
) -> None:
    settings, worker = _settings(dsn, schema)
    check_lost_runs_end_failed(settings, worker, tmp_path)


async def test_cancel_context_and_progress_in_one_process(dsn: str, schema: str) -> None:
    log = ct.fresh_log()
    settings, _ = _settings(dsn, schema)
    async with AsyncOmniQ(settings.evolve(poll_interval=30)) as omniq, trio.open_nursery() as n:
        pool = omniq.worker(concurrency=1)
        await n.start(pool.run)
        doomed = await omniq.enqueue(ct.ctl_wait, "doomed")
        progress = await omniq.enqueue(ct.ctl_progress, "p")
        with trio.fail_after(30):
            while not log.saw("doomed", "start"):  # noqa: ASYNC110 (a thread-safe log)
                await trio.sleep(0.01)
            assert await omniq.cancel(doomed)
            while not log.saw("p", "reported"):  # noqa: ASYNC110
                await trio.sleep(0.01)
            while (await omniq.get_task(progress)).progress is None:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert log.events[:2] == [("doomed", "start"), ("doomed", "finally")]
        assert (await omniq.get_task(doomed)).status is TaskStatus.CANCELLED
        assert await omniq.cancel(progress)
        await pool.stop()
    assert pool.statistics().tasks_cancelled == 2
