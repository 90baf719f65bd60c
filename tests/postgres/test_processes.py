"""Worker and producer processes sharing one PostgreSQL schema: many at once,
one killed with SIGKILL, sessions terminated under a running worker.

These are the tests allowed to wait on real time: they run real processes.
What ran is read from files the tasks write (``tests.tasks``), independently
of what the store says.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from omniq_trio import AsyncOmniQ, Call, Settings, TaskStatus
from omniq_trio.store._postgres import PostgresStore
from tests.conftest import ROOT, requires_postgres
from tests.tasks import pg_read_runs

from .conftest import terminate, with_application_name

pytestmark = requires_postgres


class Processes:
    """Starts worker and producer processes on one schema; stops them at the end."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self.procs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []

    def env(self, dsn: str | None = None, **settings: object) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OMNIQ_BACKEND": "postgres",
            "OMNIQ_DSN": dsn or self.dsn,
            "OMNIQ_POSTGRES_SCHEMA": self.schema,
            "OMNIQ_IMPORTS": "tests.tasks",
            "OMNIQ_LOG_LEVEL": "WARNING",
            **{f"OMNIQ_{k.upper()}": str(v) for k, v in settings.items()},
        }

    def worker(self, dsn: str | None = None, **settings: object) -> subprocess.Popen[bytes]:
        code = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
        proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=self.env(dsn, **settings)
        )
        self.procs.append(proc)
        self.workers.append(proc)
        return proc

    def producer(self, first: int, count: int, runs_dir: Path) -> subprocess.Popen[bytes]:
        args = ["-m", "tests.postgres._producer", str(first), str(count), str(runs_dir)]
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env())
        self.procs.append(proc)
        return proc

    def stop(self) -> list[int | None]:
        """SIGTERM every process still running (a graceful stop); their exit codes.

        A worker is signalled once it is listed in the store's worker registry:
        ``serve`` installs its signal handlers before the pool registers.
        """
        wait_until(self._workers_registered, 60, "the worker processes to register")
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
        return codes

    def _workers_registered(self) -> bool:
        running = {proc.pid for proc in self.workers if proc.poll() is None}
        return running <= live_worker_pids(self.dsn, self.schema)


@pytest.fixture
def processes(dsn: str, schema: str) -> Iterator[Processes]:
    procs = Processes(dsn, schema)
    try:
        yield procs
    finally:
        procs.stop()


def settings(dsn: str, schema: str) -> Settings:
    return Settings(backend="postgres", dsn=dsn, postgres_schema=schema)


def store_tasks(dsn: str, schema: str) -> dict[str, TaskStatus]:
    async def read() -> dict[str, TaskStatus]:
        async with PostgresStore(dsn, schema=schema) as store:
            return {t.id: t.status for t in (await store.list_tasks()).tasks}

    return trio.run(read)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def live_worker_pids(dsn: str, schema: str) -> set[int]:
    async def read() -> set[int]:
        async with PostgresStore(dsn, schema=schema) as store:
            return {w.pid for w in await store.list_workers(now=time.time())}

    return trio.run(read)


def count_success(dsn: str, schema: str) -> int:
    async def count() -> int:
        async with PostgresStore(dsn, schema=schema) as store:
            return (await store.stats(now=time.time())).counts[TaskStatus.SUCCESS]

    return trio.run(count)


def results(dsn: str, schema: str) -> dict[object, object]:
    """Each task's result, by its first argument."""

    async def read() -> dict[object, object]:
        async with AsyncOmniQ(settings(dsn, schema)) as omniq:
            return {
                t.args[0]: result.value
                for t in await omniq.list_tasks()
                if (result := await omniq.get_result(t.id)) is not None
            }

    return trio.run(read)


def test_four_workers_and_two_producers_run_every_task_once(
    processes: Processes, dsn: str, schema: str, tmp_path: Path
) -> None:
    n = 10_000
    # all six create the schema at once: one does, the others wait for it
    workers = [processes.worker(concurrency=4, poll_interval=0.5) for _ in range(4)]
    producers = [
        processes.producer(0, n // 2, tmp_path),
        processes.producer(n // 2, n // 2, tmp_path),
    ]
    assert [p.wait(timeout=120) for p in producers] == [0, 0]
    wait_until(lambda: count_success(dsn, schema) == n, 120, f"{n} tasks to succeed")
    assert processes.stop()[:4] == [0, 0, 0, 0]

    statuses = store_tasks(dsn, schema)
    assert len(statuses) == n and set(statuses.values()) == {TaskStatus.SUCCESS}
    assert results(dsn, schema) == {i: i for i in range(n)}
    runs = pg_read_runs(tmp_path)
    executions = collections.Counter(key for key, _, _ in runs)
    # leases (30 s) were live throughout, so no task could be claimed twice:
    # each ran exactly once
    assert executions == collections.Counter({str(i): 1 for i in range(n)})
    pids = {pid for _, pid, _ in runs}
    assert pids <= {w.pid for w in workers} and len(pids) >= 2, "the workers shared the work"


def test_tasks_of_a_killed_worker_come_back_after_the_lease(
    processes: Processes, dsn: str, schema: str, tmp_path: Path
) -> None:
    lease = 1.5
    keys = ["k0", "k1"]

    async def enqueue() -> list[str]:
        async with AsyncOmniQ(settings(dsn, schema)) as omniq:
            calls = [Call("tests.tasks:pg_hang_first_run", (k, str(tmp_path), 60.0)) for k in keys]
            return await omniq.enqueue_many(calls)

    ids = trio.run(enqueue)
    doomed = processes.worker(concurrency=2, lease_duration=lease, poll_interval=0.2)
    wait_until(lambda: len(list(tmp_path.glob("*.started"))) == 2, 60, "both tasks to start")
    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(timeout=30) == -signal.SIGKILL
    killed_at = time.time()
    assert set(store_tasks(dsn, schema).values()) == {TaskStatus.RUNNING}  # held by the dead

    survivor = processes.worker(concurrency=2, lease_duration=lease, poll_interval=0.2)
    wait_until(lambda: count_success(dsn, schema) == 2, 60, "the tasks to be run again")
    runs = pg_read_runs(tmp_path)
    for key in keys:
        (_, first_pid), (second_at, second_pid) = sorted(
            (at, pid) for k, pid, at in runs if k == key
        )
        assert (first_pid, second_pid) == (doomed.pid, survivor.pid)
        assert second_at > killed_at  # not before its holder was gone
    assert set(store_tasks(dsn, schema)) == set(ids)
    assert results(dsn, schema) == {key: key for key in keys}


def test_a_worker_recovers_from_terminated_sessions(
    processes: Processes, dsn: str, schema: str, tmp_path: Path
) -> None:
    n = 3_000
    name = f"omniq_test_{uuid.uuid4().hex[:8]}"

    async def enqueue() -> None:
        async with AsyncOmniQ(settings(dsn, schema)) as omniq:
            await omniq.enqueue_many(
                [Call("tests.tasks:pg_log_run", (i, str(tmp_path))) for i in range(n)]
            )

    trio.run(enqueue)
    worker = processes.worker(with_application_name(dsn, name), concurrency=4, poll_interval=0.2)
    terminated = 0
    for step in (1, 2, 3):
        wait_until(
            lambda step=step: count_success(dsn, schema) >= step * n // 4,  # type: ignore[misc]
            120,
            f"{step}/4 of the tasks to succeed",
        )
        terminated += terminate(dsn, name)
    assert terminated >= 3
    wait_until(lambda: count_success(dsn, schema) == n, 120, "every task to succeed")
    assert worker.poll() is None, "the worker kept running"
    executions = collections.Counter(key for key, _, _ in pg_read_runs(tmp_path))
    assert set(executions) == {str(i) for i in range(n)}  # none lost
    # A task whose outcome was being written when its session ended may run
    # again (at-least-once), but only those.
    assert sum(executions.values()) - n <= 3 * 64
