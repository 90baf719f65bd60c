"""Two worker processes on one store running the same cron schedule: each slot once.

The store starts out saying the schedule last fired five hours ago, and the
schedule catches up on every missed slot (``catch_up="all"``), so both
processes, started together, race to fire the same 300 slots (a real
minute boundary may add one more while they run). Readiness is the store's
own count of finished runs; the processes' files count the executions.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from omniq_trio import AsyncOmniQ, ScheduleInfo, Settings, TaskStatus
from tests.conftest import POSTGRES_DSN, ROOT, requires_postgres
from tests.schedules.proc_schedules import NAME

MISSED = 300
FUNC = "tests.schedules.proc_schedules:record_run"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "journal":
        yield Settings(base_dir=tmp_path / "journal", fsync="never")
        return
    import psycopg

    assert POSTGRES_DSN
    schema = f"test_route_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    yield Settings(backend="postgres", dsn=POSTGRES_DSN, postgres_schema=schema)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _env(settings: Settings, runs: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIQ_")}
    env.update(
        PYTHONPATH=str(ROOT),
        ROUTE_TEST_RUNS=str(runs),
        OMNIQ_BACKEND=settings.backend,
        OMNIQ_BASE_DIR=str(settings.base_dir),
        OMNIQ_FSYNC=settings.fsync,
        OMNIQ_POSTGRES_SCHEMA=settings.postgres_schema,
        OMNIQ_IMPORTS="tests.schedules.proc_schedules",
        OMNIQ_CONCURRENCY="4",
        OMNIQ_POLL_INTERVAL="0.2",
    )
    if settings.dsn:
        env["OMNIQ_DSN"] = settings.dsn
    return env


async def _seed(settings: Settings, last_slot: float) -> None:
    async with AsyncOmniQ(settings) as omniq:
        info = ScheduleInfo(NAME, FUNC, "* * * * *", last_slot=last_slot)
        await omniq.store.register_schedules([info])


async def _read(settings: Settings) -> tuple[list[float], set[TaskStatus], float | None]:
    async with AsyncOmniQ(settings) as omniq:
        tasks = await omniq.list_tasks()
        (info,) = await omniq.list_schedules()
        return sorted(t.eta for t in tasks), {t.status for t in tasks}, info.last_slot


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param("journal", id="journal"),
        pytest.param("postgres", id="postgres", marks=requires_postgres),
    ],
    indirect=True,
)
def test_two_worker_processes_fire_each_slot_of_a_schedule_once(
    settings: Settings, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    first_missed = math.floor(time.time() / 60) * 60 - (MISSED - 1) * 60
    trio.run(_seed, settings, first_missed - 60)
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    code = [sys.executable, "-m", "omniq_trio", "worker"]
    workers = [
        subprocess.Popen(code, cwd=ROOT, env=_env(settings, runs), stderr=log.open("wb"))
        for log in logs
    ]
    try:
        deadline = time.monotonic() + 120
        while True:
            etas, statuses, _ = trio.run(_read, settings)
            if len(etas) >= MISSED and statuses == {TaskStatus.SUCCESS}:
                break
            dead = [w.returncode for w in workers if w.poll() is not None]
            assert not dead, f"a worker exited ({dead}): " + logs[0].read_text()[-2000:]
            assert time.monotonic() < deadline, f"{len(etas)} runs after 120 s"
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)
        codes = [worker.wait(timeout=60) for worker in workers]
    assert codes == [0, 0]
    etas, statuses, last_slot = trio.run(_read, settings)
    assert statuses == {TaskStatus.SUCCESS}
    assert last_slot is not None
    # every minute from the first missed slot to the last fired, each once
    assert etas == [float(s) for s in range(first_missed, int(last_slot) + 1, 60)]
    executions = sum(len(p.read_text().splitlines()) for p in runs.glob("*.runs"))
    assert executions == len(etas)
    fired = [log.read_text().count(f"schedule {NAME!r} fired") for log in logs]
    assert sum(fired) == len(etas), fired
