"""A worker on a real full file system (a small tmpfs): it carries on once space is freed,
and exits with status 75 if the disk stays full for ``store_failure_timeout``.

These tests mount a tmpfs, so they need root (CI runs as root); they are skipped where
mounting is not permitted. They run real processes and wait on what those write.
"""

from __future__ import annotations

import collections
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from omniq_trio import AsyncOmniQ, Settings, TaskStatus
from omniq_trio.store import JournalStore
from tests.conftest import ROOT
from tests.journal.crash_tasks import mark

N = 200
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMNIQ_LOG_LEVEL": "WARNING"}


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_up(mount_point: Path) -> Path:
    """Write a file until the file system is full; return it."""
    ballast = mount_point / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return ballast


def enqueue(base_dir: Path, runs: Path) -> list[str]:
    async def run() -> list[str]:
        async with AsyncOmniQ(Settings(backend="file", base_dir=base_dir)) as omniq:
            return [await omniq.enqueue(mark, f"t{i}", str(runs), 0.001) for i in range(N)]

    return trio.run(run)


def statuses(base_dir: Path) -> collections.Counter[TaskStatus]:
    async def read() -> collections.Counter[TaskStatus]:
        async with JournalStore(base_dir) as store:
            return collections.Counter(t.status for t in (await store.list_tasks()).tasks)

    return trio.run(read)


def worker(base_dir: Path, log: Path, **settings: object) -> subprocess.Popen[bytes]:
    env = {
        **ENV,
        "OMNIQ_POLL_INTERVAL": "0.05",
        **{f"OMNIQ_{k.upper()}": str(v) for k, v in settings.items()},
    }
    command = [sys.executable, "-m", "omniq_trio", "worker", "--base-dir", str(base_dir)]
    command += ["--concurrency", "4", "--import", "tests.journal.crash_tasks"]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stderr=out, stdout=out)


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the worker has logged ``text`` (its readiness signal)."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"the worker exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} in:\n{log.read_text()}"
        time.sleep(0.05)


def test_a_worker_on_a_full_disk_carries_on_once_space_is_freed(
    tiny_fs: Path, tmp_path: Path
) -> None:
    base, runs, log = tiny_fs / "journal", tmp_path / "runs", tmp_path / "worker.log"
    ids = enqueue(base, runs)
    ballast = fill_up(tiny_fs)
    proc = worker(base, log, store_failure_timeout=120)
    try:
        wait_for_line(log, "the store is failing", proc)  # it met the full disk ...
        ballast.unlink()  # ... and space comes back
        deadline = time.monotonic() + 120
        while (counts := statuses(base))[TaskStatus.SUCCESS] < N:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"stuck at {counts}:\n{log.read_text()}"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()
    text = log.read_text()
    assert "No space left on device" in text
    assert "reopened after a failure" in text and "available again" in text
    assert sum(statuses(base).values()) == len(ids)


def test_a_worker_whose_disk_stays_full_exits_with_status_75(tiny_fs: Path, tmp_path: Path) -> None:
    base, runs, log = tiny_fs / "journal", tmp_path / "runs", tmp_path / "worker.log"
    ids = enqueue(base, runs)
    fill_up(tiny_fs)
    proc = worker(base, log, store_failure_timeout=1)
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 75, text
    assert "store_failure_timeout" in text and "status 75" in text
    counts = statuses(base)
    assert sum(counts.values()) == len(ids), "nothing acknowledged was lost"
