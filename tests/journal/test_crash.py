"""Crash safety with real processes killed by SIGKILL, and several processes on one journal.

These are the tests allowed to wait on real time: they run real processes.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Settings, TaskStatus
from omniq_trio.store import JournalStore
from omniq_trio.store._journal import _files
from tests.conftest import ROOT
from tests.journal.crash_tasks import mark

SEED = int(os.environ.get("OMNIQ_CRASH_SEED", random.randrange(10**6)))
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMNIQ_LOG_LEVEL": "WARNING"}


def child(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.journal._crash_child", *args],
        cwd=ROOT,
        env=env or ENV,
        stdout=subprocess.PIPE,
        text=True,
    )


#: Seconds a worker process surely needs to start and install its signal handlers.
STARTUP = 2.0


def stop_gracefully(procs: list[subprocess.Popen[str]], started: float) -> list[int]:
    """SIGINT each (once it has surely started); their exit codes."""
    time.sleep(max(0.0, started + STARTUP - time.monotonic()))
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    return [proc.wait(timeout=30) for proc in procs]


def worker(base_dir: Path, **settings: object) -> subprocess.Popen[str]:
    env = {
        **ENV,
        "OMNIQ_BACKEND": "file",
        "OMNIQ_BASE_DIR": str(base_dir),
        "OMNIQ_CONCURRENCY": "4",
        "OMNIQ_POLL_INTERVAL": "0.05",
        "OMNIQ_IMPORTS": "tests.journal.crash_tasks",
        **{f"OMNIQ_{k.upper()}": str(v) for k, v in settings.items()},
    }
    code = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)


def kill_after(proc: subprocess.Popen[str], seconds: float) -> list[str]:
    """SIGKILL ``proc`` ``seconds`` after its first line (its start-up takes a while on a
    loaded machine); return the lines it printed (all acknowledged)."""
    assert proc.stdout is not None
    first = proc.stdout.readline()
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return (first + out).split()


def read_store(base_dir: Path) -> dict[str, TaskStatus]:
    async def read() -> dict[str, TaskStatus]:
        async with JournalStore(base_dir) as store:
            return {t.id: t.status for t in (await store.list_tasks()).tasks}

    return trio.run(read)


def wait_until_all_done(base_dir: Path, n: int, timeout: float = 60) -> dict[str, TaskStatus]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = read_store(base_dir)
        done = sum(status is TaskStatus.SUCCESS for status in tasks.values())
        if done == n or time.monotonic() > deadline:
            return tasks
        time.sleep(0.1)


def test_acknowledged_enqueues_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    acked: list[str] = []
    for _ in range(4):
        producer = child("produce", str(tmp_path), str(tmp_path / "runs"), "8", "1000000")
        acked += kill_after(producer, rng.uniform(0.0, 1.0))
    assert acked, "the producers acknowledged nothing before they were killed"
    stored = read_store(tmp_path)
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged tasks lost (seed {SEED})"
    assert len(stored) == len(set(stored))
    assert all(status is TaskStatus.PENDING for status in stored.values())


def test_tasks_finish_exactly_once_in_the_store_despite_killed_workers(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    runs = tmp_path / "runs"
    n = 300

    async def enqueue() -> list[str]:
        async with AsyncOmniQ(Settings(backend="file", base_dir=tmp_path)) as omniq:
            return [await omniq.enqueue(mark, f"t{i}", str(runs), 0.03) for i in range(n)]

    ids = trio.run(enqueue)
    interrupted = 0
    for _ in range(5):
        proc = worker(tmp_path, lease_duration=1.0)
        time.sleep(rng.uniform(0.8, 1.6))  # start-up, then some work
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        interrupted += TaskStatus.RUNNING in read_store(tmp_path).values()
    assert interrupted, "no kill landed while tasks were running"
    proc, started = worker(tmp_path, lease_duration=1.0), time.monotonic()
    try:
        tasks = wait_until_all_done(tmp_path, n)
    finally:
        assert stop_gracefully([proc], started) == [0]
    assert set(tasks) == set(ids) and len(tasks) == n
    assert all(status is TaskStatus.SUCCESS for status in tasks.values()), collections.Counter(
        tasks.values()
    )

    async def results() -> list[object]:
        async with AsyncOmniQ(Settings(backend="file", base_dir=tmp_path)) as omniq:
            return [(await omniq.get_result(i)) for i in ids]

    assert [r.value for r in trio.run(results)] == [f"t{i}" for i in range(n)]  # type: ignore[attr-defined]
    executions = collections.Counter(line.split()[0] for line in runs.read_text().splitlines())
    assert set(executions) == {f"t{i}" for i in range(n)}
    reruns = sum(count - 1 for count in executions.values())
    print(f"seed {SEED}: {reruns} re-runs after kills (at-least-once)")


def test_killed_during_compaction_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    acked: list[str] = []
    for _ in range(4):
        proc = child("compact", str(tmp_path))
        acked += kill_after(proc, rng.uniform(0.0, 0.8))
        stored = read_store(tmp_path)
        assert set(acked) <= set(stored), f"lost acknowledged tasks (seed {SEED})"
        assert len(_files.list_segments(tmp_path)) == 1
        assert not list(tmp_path.glob("*.tmp"))


def test_two_workers_and_two_producers_share_one_journal(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    workers, started = [worker(tmp_path) for _ in range(2)], time.monotonic()
    try:
        producers = [child("produce", str(tmp_path), str(runs), "4", "500") for _ in range(2)]
        acked = []
        for producer in producers:
            out, _ = producer.communicate(timeout=60)
            assert producer.returncode == 0
            acked += out.split()
        assert len(acked) == 1000
        tasks = wait_until_all_done(tmp_path, 1000)
    finally:
        codes = stop_gracefully(workers, started)
    assert codes == [0, 0]
    assert set(tasks) == set(acked)
    assert all(status is TaskStatus.SUCCESS for status in tasks.values())
    lines = [line.split() for line in runs.read_text().splitlines()]
    executions = collections.Counter(token for token, _ in lines)
    # no task was claimed twice: leases were live throughout, so each ran once
    assert len(executions) == 1000 and set(executions.values()) == {1}
    assert len({pid for _, pid in lines}) == 2, "both workers took part"
