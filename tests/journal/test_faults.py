"""A failing disk, injected at the journal's one file seam (``_fileio.py``): a failed write,
durable sync or read fails what it carried, loses nothing acknowledged, reports nothing
unacknowledged as done, and the store heals itself once the disk works again."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from omniq_trio.errors import StoreError
from omniq_trio.store import JournalStore, Outcome
from omniq_trio.store._journal import _fileio
from omniq_trio.store._journal._durability import FIRST_BACKOFF
from omniq_trio.testing import T0, make_task

W = "worker"


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[_fileio.Faults]:
    """Injected faults, and the journal's blocking calls run inline (no worker threads:
    MockClock would jump while one runs), so that every time is exact."""

    async def inline(fn: Callable[..., Any], *args: Any, **_: Any) -> Any:
        return fn(*args)

    monkeypatch.setattr(trio.to_thread, "run_sync", inline)
    with _fileio.injected_faults() as plan:
        yield plan


async def ids(store: JournalStore) -> list[str]:
    return [t.id for t in (await store.list_tasks()).tasks]


async def test_a_full_disk_fails_the_write_and_the_store_heals(
    tmp_path: Path,
    faults: _fileio.Faults,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with JournalStore(tmp_path) as store:
        kept = [make_task() for _ in range(3)]
        await store.enqueue(kept)
        faults.fail("write", errno.ENOSPC)
        with caplog.at_level(logging.WARNING, "omniq_trio"):
            with pytest.raises(StoreError, match="No space left") as caught:
                await store.enqueue([make_task()])
            assert isinstance(caught.value.__cause__, OSError)
            # until the backoff has passed, calls fail at once, saying when it reopens
            start = trio.current_time()
            with pytest.raises(StoreError, match=r"reopened in 0\.1s"):
                await store.list_tasks()
            await trio.sleep(FIRST_BACKOFF)
            assert await ids(store) == [t.id for t in kept]  # reopened from disk
        assert trio.current_time() == start + FIRST_BACKOFF
        assert "reopening it from disk" in caplog.text and "reopened after a failure" in caplog.text
        more = make_task()
        await store.enqueue([more])
    async with JournalStore(tmp_path) as store:
        assert await ids(store) == [t.id for t in [*kept, more]]


async def test_a_failed_sync_reports_nothing_as_done(
    tmp_path: Path, faults: _fileio.Faults, autojump_clock: trio.testing.MockClock
) -> None:
    async with JournalStore(tmp_path) as store:
        task = make_task()
        await store.enqueue([task])
        await store.claim(W, now=T0, limit=1, lease_until=T0 + 30)
        faults.fail("sync", errno.EIO)
        lost = make_task()
        with pytest.raises(StoreError, match="Input/output error"):
            await store.enqueue([lost])
        await trio.sleep(FIRST_BACKOFF)
        # the enqueue that was not acknowledged is not there after the recovery; nor
        # the claim before it, never synced (claims need not survive: the task runs again)
        assert await ids(store) == [task.id]
        assert (await store.get_task(task.id)).status.value == "pending"
        (claimed,) = await store.claim(W, now=T0 + 1, limit=1, lease_until=T0 + 31)
        await store.record([Outcome.success(claimed.id, W, T0 + 2, "ok")])
    async with JournalStore(tmp_path) as store:
        assert await ids(store) == [task.id]
        result = await store.get_result(task.id)
        assert result is not None and result.value == "ok"


async def test_a_disk_that_keeps_failing_backs_off_further(
    tmp_path: Path, faults: _fileio.Faults, autojump_clock: trio.testing.MockClock
) -> None:
    async with JournalStore(tmp_path) as store:
        faults.fail("write", errno.ENOSPC, count=None)
        attempts: list[float] = []
        for _ in range(5):
            with pytest.raises(StoreError):
                await store.enqueue([make_task()])
            attempts.append(trio.current_time())
            with pytest.raises(StoreError, match="reopened in"):
                await store.list_tasks()
            await trio.sleep(30)
        faults.clear()
        await store.enqueue([made := make_task()])
        assert await ids(store) == [made.id]


async def test_a_failed_read_fails_the_call_and_heals(
    tmp_path: Path, faults: _fileio.Faults, autojump_clock: trio.testing.MockClock
) -> None:
    async with JournalStore(tmp_path) as store:
        task = make_task(args=("payload",))
        await store.enqueue([task])
    async with JournalStore(tmp_path) as store:
        store._index.payloads._cache.clear()  # type: ignore[attr-defined]
        faults.fail("read", errno.EIO)
        with pytest.raises(StoreError, match="Input/output error"):
            await store.get_task(task.id)  # its payload is read back from the file
        await trio.sleep(FIRST_BACKOFF)
        assert (await store.get_task(task.id)).args == ("payload",)


async def test_faults_hit_the_chosen_call(tmp_path: Path) -> None:
    with _fileio.injected_faults() as plan:
        path = tmp_path / "f"
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        try:
            plan.fail("write", errno.EIO, after=2, count=2)
            _fileio.write_all(fd, b"a")
            _fileio.write_all(fd, b"b")
            for _ in range(2):
                with pytest.raises(OSError) as caught:
                    _fileio.write_all(fd, b"x")
                assert caught.value.errno == errno.EIO
            _fileio.write_all(fd, b"c")
            assert plan.calls["write"] == 5
            assert path.read_bytes() == b"abc"
        finally:
            os.close(fd)
