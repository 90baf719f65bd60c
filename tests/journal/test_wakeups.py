"""Cross-process wake-ups of the journal (store/_journal/_wakeup.py).

Two stores on one directory stand for two processes where that is enough
(each has sockets of its own); the process tests run real ones and wait on
lines they print, never on a guessed sleep. Every wait here is an hour long
unless woken: a test that passes was woken.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from omniq_trio import AsyncOmniQ, Settings, TaskStatus
from omniq_trio.store import Change, JournalStore
from omniq_trio.store._journal import _wakeup
from omniq_trio.store._journal._wakeup import WAKE_DIR, Wakeups
from omniq_trio.testing import T0, make_task
from tests.conftest import ROOT

HOUR = 3600.0
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMNIQ_LOG_LEVEL": "WARNING"}


def sockets(base: Path, letter: str = "") -> list[str]:
    wake = base / WAKE_DIR
    return sorted(n for n in os.listdir(wake) if n.startswith(letter)) if wake.exists() else []


def owners(base: Path) -> list[tuple[str, int]]:
    """(kind letter, pid) of each socket in the wake directory."""
    return [(name.split("-")[0], int(name.split("-")[1])) for name in sockets(base)]


async def listening(store: JournalStore, change: Change) -> int:
    """Bind ``store``'s socket for ``change`` (the first wait returns at once); the version."""
    seen = store.change_version(change)
    await store.wait_for_change(change, seen, trio.current_time() + HOUR)
    assert store.change_version(change) != seen
    return store.change_version(change)


# ------------------------------------------------------------- between two stores


async def test_a_commit_wakes_a_waiter_of_another_store_at_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        JournalStore(tmp_path, fsync="never") as waiter,
        JournalStore(tmp_path, fsync="never") as producer,
    ):
        seen = await listening(waiter, Change.WORK)
        assert owners(tmp_path) == [("w", os.getpid())]
        (path,) = (tmp_path / WAKE_DIR).iterdir()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # tasks' business: the owner's only
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter.wait_for_change, Change.WORK, seen, start + HOUR)
            await trio.testing.wait_all_tasks_blocked()
            await producer.enqueue([make_task()])
        assert trio.current_time() == start  # woken, not timed out
        assert len(await waiter.claim("w", now=T0, limit=5, lease_until=T0 + 30)) == 1


async def test_finished_tasks_wake_result_waiters_and_not_work_waiters(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        JournalStore(tmp_path, fsync="never") as producer,
        JournalStore(tmp_path, fsync="never") as worker,
    ):
        task = make_task()
        await producer.enqueue([task])
        await worker.claim("w", now=T0, limit=1, lease_until=T0 + 30)
        finished = await listening(producer, Change.FINISHED)
        work = await listening(producer, Change.WORK)
        await worker.complete(task.id, worker_id="w", value=1, at=T0 + 1)
        assert producer.change_version(Change.FINISHED) == finished + 1
        assert producer.change_version(Change.WORK) == work
        # and a store does not wake itself through its own sockets
        await producer.enqueue([make_task()])
        assert producer.change_version(Change.WORK) == work + 1  # the local notification only


async def test_a_new_waiter_polls_once_while_senders_may_not_know_it(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # senders look at the wake directory every REFRESH seconds: one that
    # looked just before a waiter appeared does not send to it until it looks
    # again, so the new waiter's first real wait ends after 2 * REFRESH
    monkeypatch.setattr(_wakeup, "REFRESH", 10.0)  # real seconds: no look again in this test
    async with (
        JournalStore(tmp_path, fsync="never") as waiter,
        JournalStore(tmp_path, fsync="never") as producer,
    ):
        await producer.enqueue([make_task()])  # the producer has looked: nobody waits
        start = trio.current_time()
        seen = await listening(waiter, Change.WORK)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter.wait_for_change, Change.WORK, seen, start + HOUR)
            await trio.testing.wait_all_tasks_blocked()
            await producer.enqueue([make_task()])  # not sent: the producer's list is stale
        assert trio.current_time() == start + 20.0
        # the next wait is not cut short
        seen = waiter.change_version(Change.WORK)
        await waiter.wait_for_change(Change.WORK, seen, trio.current_time() + HOUR)
        assert trio.current_time() == start + 20.0 + HOUR


async def test_without_the_mechanism_waiters_poll(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_unix_sockets(*args: object) -> socket.socket:
        raise OSError(97, "Address family not supported by protocol")

    monkeypatch.setattr(socket, "socket", no_unix_sockets)  # as _wakeup calls it
    async with (
        JournalStore(tmp_path, fsync="never") as waiter,
        JournalStore(tmp_path, fsync="never") as producer,
    ):
        seen = waiter.change_version(Change.WORK)
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter.wait_for_change, Change.WORK, seen, start + 5.0)
            await trio.testing.wait_all_tasks_blocked()
            await producer.enqueue([make_task()])  # sends nothing, and does not fail
        assert trio.current_time() == start + 5.0  # the poll deadline
        assert len(await waiter.claim("w", now=T0, limit=5, lease_until=T0 + 30)) == 1
    assert sockets(tmp_path) == []


async def test_a_dead_target_is_removed_and_a_full_one_skipped(tmp_path: Path) -> None:
    wake = tmp_path / WAKE_DIR
    wake.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(wake / "w-1-dead.sock"))
    dead.close()  # as a killed process leaves it: the file, nobody bound
    full = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    full.bind(str(wake / "w-2-full.sock"))  # bound, never read
    woken: list[Change] = []
    sender = Wakeups(tmp_path, woken.append)
    try:
        for _ in range(5_000):  # far more than a datagram queue holds: none of it blocks
            sender.announce([Change.WORK])
        assert sockets(tmp_path) == ["w-2-full.sock"]
        assert full.recv(8) == b"w"
    finally:
        full.close()
        sender.close()
    assert woken == []


async def test_socket_paths_longer_than_sun_path_work(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    base = tmp_path / ("d" * 120)
    async with JournalStore(base, fsync="never") as waiter, JournalStore(base) as producer:
        seen = await listening(waiter, Change.WORK)
        await producer.enqueue([make_task()])
        assert waiter.change_version(Change.WORK) == seen + 1
    assert sockets(base) == []  # each store removes its own on close


# ---------------------------------------------------------------- real processes


def _read_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The next line ``proc`` prints; fails (rather than hangs) if none comes."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no line from process {proc.pid} within {timeout}s"
    return proc.stdout.readline().strip()


def _start_waiter(base: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.journal._wake_child", str(base)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )


async def test_a_waiter_in_another_process_is_woken_and_a_dead_one_is_cleared(
    tmp_path: Path,
) -> None:
    children = [_start_waiter(tmp_path) for _ in range(2)]
    alive, doomed = children
    try:
        assert [_read_line(child) for child in children] == ["listening"] * 2
        assert len(sockets(tmp_path, "w-")) == 2
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=60)
        async with JournalStore(tmp_path) as producer:
            await producer.enqueue([make_task()])
            assert _read_line(alive) == "woken"
            # the dead process's socket went with the first send to it
            assert owners(tmp_path) == [("w", alive.pid)]
            await producer.enqueue([make_task()])
            assert _read_line(alive) == "woken"
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=60)


def _start_worker(base: Path) -> subprocess.Popen[bytes]:
    env = {
        **ENV,
        "OMNIQ_BACKEND": "file",
        "OMNIQ_BASE_DIR": str(base),
        "OMNIQ_CONCURRENCY": "2",
        "OMNIQ_POLL_INTERVAL": str(HOUR),  # only a wake-up can start the second task
        "OMNIQ_IMPORTS": "tests.tasks",
    }
    code = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)


async def _until_listening(base: Path, letter: str, pid: int) -> None:
    """Readiness: the worker has bound its socket for ``letter`` (it is waiting)."""
    deadline = time.monotonic() + 60
    while not any(n.startswith(f"{letter}-{pid}-") for n in sockets(base)):
        assert time.monotonic() < deadline, "the worker never started waiting"
        await trio.sleep(0.01)


async def test_a_worker_started_after_the_enqueue_runs_it_and_is_woken_after(
    tmp_path: Path,
) -> None:
    settings = Settings(backend="file", base_dir=tmp_path, poll_interval=HOUR)
    async with AsyncOmniQ(settings) as omniq:
        first = await omniq.enqueue("tests.tasks:rt_echo", 1)
        worker = _start_worker(tmp_path)
        try:
            # this process waits for results with an hour's poll interval too:
            # the worker's commits wake it
            result = await omniq.get_result(first, wait=True, timeout=60)
            assert result is not None and result.status is TaskStatus.SUCCESS
            await _until_listening(tmp_path, "w", worker.pid)
            second = await omniq.enqueue("tests.tasks:rt_echo", 2)
            result = await omniq.get_result(second, wait=True, timeout=60)
            assert result is not None and result.status is TaskStatus.SUCCESS
        finally:
            worker.send_signal(signal.SIGINT)
            assert worker.wait(timeout=60) == 0
    assert sockets(tmp_path) == []  # both processes removed theirs
