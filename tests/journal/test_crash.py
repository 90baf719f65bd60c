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
from collections.abc import Callable
from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Settings, TaskStatus
from omniq_trio.store import JournalStore
from omniq_trio.store._journal import _files
from tests.conftest import ROOT
from tests.journal.crash_tasks import hold, mark, meet

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


def stop_gracefully(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """SIGINT each (each has run a task, so its signal handlers are in place); their exit codes."""
    for proc in procs:
        proc.send_signal(signal.SIGINT)
    return [proc.wait(timeout=PATIENCE) for proc in procs]


#: Generous bound for anything a process must do; only a hang would reach it.
PATIENCE = 60.0


def runs_of(runs: Path) -> list[tuple[str, int]]:
    """``(token, pid)`` of every run started so far, in order."""
    text = runs.read_text() if runs.exists() else ""
    return [(token, int(pid)) for token, pid in (line.split() for line in text.splitlines())]


def wait_for_runs(runs: Path, proc: subprocess.Popen[bytes], token: str, more: int) -> None:
    """Until ``proc`` has started the task ``token``, then ``more`` runs besides."""
    deadline = time.monotonic() + PATIENCE
    while True:
        mine = [t for t, pid in runs_of(runs) if pid == proc.pid]
        if token in mine and len(mine) > more:
            return
        assert proc.poll() is None, f"the worker exited ({proc.returncode})"
        assert time.monotonic() < deadline, f"{token} never started ({len(mine)} runs)"
        time.sleep(0.02)


def worker(base_dir: Path, **settings: object) -> subprocess.Popen[bytes]:
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
    if hasattr(os, "posix_fallocate"):  # killed, so nobody trimmed the preallocated zeros
        (number,) = _files.list_segments(tmp_path)
        assert _files.segment_path(tmp_path, number).read_bytes().endswith(bytes(64))
    stored = read_store(tmp_path)
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged tasks lost (seed {SEED})"
    assert len(stored) == len(set(stored))
    assert all(status is TaskStatus.PENDING for status in stored.values())


def test_tasks_finish_exactly_once_in_the_store_despite_killed_workers(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    runs = tmp_path / "runs"
    n, kills = 300, 5
    gates = [tmp_path / f"gate{k}" for k in range(kills)]

    async def enqueue(*calls: tuple[Callable[..., object], tuple[object, ...], int]) -> list[str]:
        async with AsyncOmniQ(Settings(backend="file", base_dir=tmp_path)) as omniq:
            return [await omniq.enqueue(f, *args, priority=p) for f, args, p in calls]

    ids = trio.run(enqueue, *((mark, (f"t{i}", str(runs), 0.03), 0) for i in range(n)))
    held: list[str] = []
    for k in range(kills):
        # a task that runs first (priority) and until its gate opens: a kill any
        # time after it started (and some other runs) lands while it runs
        held += trio.run(enqueue, (hold, (f"hold{k}", str(runs), str(gates[k])), 1))
        proc = worker(tmp_path, lease_duration=1.0)
        wait_for_runs(runs, proc, f"hold{k}", more=rng.randrange(20))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=PATIENCE)
        assert read_store(tmp_path)[held[k]] is TaskStatus.RUNNING
        gates[k].touch()  # its next run, once its lease expires, ends at once
    proc = worker(tmp_path, lease_duration=1.0)
    try:
        tasks = wait_until_all_done(tmp_path, n + kills)
    finally:
        assert stop_gracefully([proc]) == [0]
    assert set(tasks) == {*ids, *held}
    assert all(status is TaskStatus.SUCCESS for status in tasks.values()), collections.Counter(
        tasks.values()
    )

    async def results() -> list[object]:
        async with AsyncOmniQ(Settings(backend="file", base_dir=tmp_path)) as omniq:
            return [(await omniq.get_result(i)) for i in ids]

    assert [r.value for r in trio.run(results)] == [f"t{i}" for i in range(n)]  # type: ignore[attr-defined]
    executions = collections.Counter(token for token, _ in runs_of(runs))
    assert set(executions) == {f"t{i}" for i in range(n)} | {f"hold{k}" for k in range(kills)}
    assert all(executions[f"hold{k}"] >= 2 for k in range(kills))  # killed once, then run again
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
    meetings = 5  # one more than a worker runs at once: both must run one

    async def enqueue() -> list[str]:
        async with AsyncOmniQ(Settings(backend="file", base_dir=tmp_path)) as omniq:
            return [
                await omniq.enqueue(meet, f"meet{i}", str(runs), meetings) for i in range(meetings)
            ]

    met = trio.run(enqueue)
    workers = [worker(tmp_path) for _ in range(2)]
    try:
        producers = [child("produce", str(tmp_path), str(runs), "4", "500") for _ in range(2)]
        acked = []
        for producer in producers:
            out, _ = producer.communicate(timeout=PATIENCE)
            assert producer.returncode == 0
            acked += out.split()
        assert len(acked) == 1000
        tasks = wait_until_all_done(tmp_path, 1000 + meetings)
    finally:
        codes = stop_gracefully(workers)
    assert codes == [0, 0]
    assert set(tasks) == {*acked, *met}
    assert all(status is TaskStatus.SUCCESS for status in tasks.values())
    lines = runs_of(runs)
    executions = collections.Counter(token for token, _ in lines)
    # no task was claimed twice: leases were live throughout, so each ran once
    assert len(executions) == 1000 + meetings and set(executions.values()) == {1}
    assert {pid for token, pid in lines if token.startswith("meet")} == {p.pid for p in workers}
