"""The journal on disk: recovery, damage, repair, compaction, sharing, permissions."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from omniq_trio.errors import JournalCorruptError, StoreClosedError
from omniq_trio.models import TaskStatus
from omniq_trio.store import JournalStore, Outcome, repair_journal
from omniq_trio.store._journal import _fileio, _files
from omniq_trio.testing import T0, make_task

W = "worker"


async def fill(store: JournalStore, n: int) -> list[str]:
    """Enqueue ``n`` tasks, one batch each; run and finish every other one."""
    ids = []
    for _ in range(n):
        task = make_task()
        await store.enqueue([task])
        ids.append(task.id)
    claimed = await store.claim(W, now=T0, limit=n, lease_until=T0 + 30)
    await store.record([Outcome.success(t.id, W, T0 + 1, t.id) for t in claimed[::2]])
    return ids


def segment(base: Path) -> Path:
    (number,) = _files.list_segments(base)
    return _files.segment_path(base, number)


async def snapshot(store: JournalStore) -> list[object]:
    return [(t, await store.get_result(t.id)) for t in (await store.list_tasks()).tasks]


async def test_torn_tail_is_cut_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with JournalStore(tmp_path) as store:
        await fill(store, 5)
        before = await snapshot(store)
    path = segment(tmp_path)
    intact = path.read_bytes()
    with path.open("ab") as f:
        f.write(b"\x40\x00\x00\x00garbage that never became a record")
    with caplog.at_level(logging.WARNING, "omniq_trio"):
        async with JournalStore(tmp_path) as store:
            assert await snapshot(store) == before
    assert "torn write" in caplog.text and str(len(intact)) in caplog.text
    assert path.read_bytes() == intact


async def test_damage_before_the_tail_raises_and_changes_nothing(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as store:
        await fill(store, 6)
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    offset = len(data) // 3
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError) as caught:
        await JournalStore(tmp_path).open()
    assert caught.value.path == path
    assert caught.value.offset <= offset
    assert str(path) in str(caught.value) and "repair" in str(caught.value)
    assert path.read_bytes() == bytes(data)


async def test_repair_keeps_everything_before_the_damage(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as store:
        first = make_task()
        await store.enqueue([first])
        damaged_from = store._offset  # the end of its frames (the file is preallocated)
        await fill(store, 4)
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[damaged_from + 12] ^= 0xFF  # inside the payload of the second batch
    path.write_bytes(bytes(data))

    dry = await trio.to_thread.run_sync(lambda: repair_journal(tmp_path, dry_run=True))
    assert (dry.damaged_at, dry.kept, dry.records_kept) == (damaged_from, damaged_from, 1)
    assert dry.cut == len(data) - damaged_from and "would cut" in str(dry)
    assert path.read_bytes() == bytes(data)

    done = await trio.to_thread.run_sync(lambda: repair_journal(tmp_path))
    assert done.saved_to is not None and done.saved_to.read_bytes() == bytes(data[damaged_from:])
    async with JournalStore(tmp_path) as store:
        assert [t.id for t in (await store.list_tasks()).tasks] == [first.id]
    again = await trio.to_thread.run_sync(lambda: repair_journal(tmp_path))
    assert again.damaged_at is None and "intact" in str(again)


async def test_compaction_keeps_the_state_and_drops_the_history(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as store:
        await fill(store, 20)
        await store.purge(finished_before=T0 + 2, failed_before=T0 + 2)
        before = await snapshot(store)
        size = segment(tmp_path).stat().st_size
        await store.compact()
        assert await snapshot(store) == before
        assert segment(tmp_path).stat().st_size < size
        await store.enqueue([make_task()])  # appends go to the new segment
        after = await snapshot(store)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    async with JournalStore(tmp_path) as store:
        assert await snapshot(store) == after


async def test_compaction_happens_by_itself_when_dead_records_dominate(tmp_path: Path) -> None:
    async with JournalStore(tmp_path, compact_min_records=50, compact_threshold=0.5) as store:
        first = _files.list_segments(tmp_path)
        for _ in range(40):
            await fill(store, 2)
        await store.purge(finished_before=T0 + 2, failed_before=T0 + 2)
        await store._maintenance.wait_idle()  # compactions run in the background
        assert _files.list_segments(tmp_path) != first
        assert len(_files.list_segments(tmp_path)) == 1
        assert store._records < 2 * len((await store.list_tasks()).tasks) + 50


async def test_leftovers_of_an_interrupted_compaction_are_cleared(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as store:
        ids = await fill(store, 3)
    old = segment(tmp_path)
    # killed after writing the temp file / after the rename, before the unlink
    (tmp_path / "journal-00000002.log.tmp").write_bytes(b"half a snapshot")
    async with JournalStore(tmp_path) as store:
        assert [t.id for t in (await store.list_tasks()).tasks] == ids
        await store.compact()
    new = segment(tmp_path)
    os.link(new, tmp_path / "journal-00000009.log")  # a newer complete segment wins
    new.rename(old)  # and an older one next to it is dropped
    async with JournalStore(tmp_path) as store:
        assert [t.id for t in (await store.list_tasks()).tasks] == ids
    assert _files.list_segments(tmp_path) == [9]


async def test_two_stores_on_one_directory_see_each_other(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as one, JournalStore(tmp_path) as two:
        task = make_task()
        await one.enqueue([task])
        (claimed,) = await two.claim(W, now=T0, limit=5, lease_until=T0 + 30)
        assert claimed.id == task.id
        assert (await one.get_task(task.id)).status is TaskStatus.RUNNING
        await one.compact()
        await two.complete(task.id, worker_id=W, value=7, at=T0 + 1)
        result = await one.get_result(task.id)
        assert result is not None and result.value == 7
        assert _files.list_segments(tmp_path) == [2]


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
async def test_every_fsync_policy_keeps_what_was_acknowledged(tmp_path: Path, policy: str) -> None:
    async with JournalStore(tmp_path, fsync=policy) as store:  # type: ignore[arg-type]
        ids = await fill(store, 10)
    async with JournalStore(tmp_path, fsync=policy) as store:  # type: ignore[arg-type]
        assert [t.id for t in (await store.list_tasks()).tasks] == ids


async def test_files_are_private_to_their_owner(tmp_path: Path) -> None:
    base = tmp_path / "data"
    async with JournalStore(base) as store:
        await fill(store, 1)
        await store.compact()
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    for path in base.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / "journal-00000001.log").write_bytes(b"hello, world\n")
    with pytest.raises(JournalCorruptError, match="bad header"):
        await JournalStore(tmp_path).open()


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = JournalStore(tmp_path)
    with pytest.raises(StoreClosedError):
        await store.list_tasks()
    await store.open()
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreClosedError):
        await store.enqueue([make_task()])


async def test_interval_policy_syncs_soon_after_the_last_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    synced_at: list[float] = []
    real = os.fdatasync

    async def inline(fn: Callable[..., Any], *args: Any, **_: Any) -> Any:
        # no worker threads: MockClock would jump while one runs
        return fn(*args)

    monkeypatch.setattr(trio.to_thread, "run_sync", inline)

    def fdatasync(fd: int) -> None:
        synced_at.append(trio.current_time())
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    async with JournalStore(tmp_path, fsync="interval", fsync_interval=0.5) as store:
        await store.enqueue([make_task()])
        start = trio.current_time()
        await store.enqueue([make_task()])  # within the interval: acknowledged unsynced ...
        assert synced_at == [start]
        await trio.sleep(10)
    # ... and synced when the interval ends, with no further write
    assert synced_at[:2] == [start, start + 0.5]


async def test_a_damaged_snapshot_is_not_mistaken_for_a_torn_tail(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as store:
        await fill(store, 5)
        await store.compact()
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the snapshot's last batch, before the seal
    path.write_bytes(bytes(data))
    # its checkpoint covers it: the damage is found when the damaged task is read ...
    async with JournalStore(tmp_path) as store:
        with pytest.raises(JournalCorruptError) as caught:
            await store.list_tasks()
        assert caught.value.path == path
    # ... and, without the checkpoint, by the replay of the whole segment at open
    _files.checkpoint_path(tmp_path, _files.list_segments(tmp_path)[-1]).unlink()
    with pytest.raises(JournalCorruptError):
        await JournalStore(tmp_path).open()
    assert path.read_bytes() == bytes(data)


async def test_a_claim_reads_its_tasks_records_in_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [make_task(args=[i]) for i in range(4)]
    async with JournalStore(tmp_path) as store:
        for task in tasks:
            await store.enqueue([task])
    reads: list[int] = []
    real = _fileio.pread

    def counted(fd: int, size: int, offset: int) -> bytes:
        reads.append(size)
        return real(fd, size, offset)

    async with JournalStore(tmp_path) as store:
        store._index.payloads._cache.clear()  # type: ignore[attr-defined]  # as after a long run
        monkeypatch.setattr(_fileio, "pread", counted)
        claimed = await store.claim("w", now=T0, limit=4, lease_until=T0 + 30)
        monkeypatch.undo()
        # one read of the four records (the rest: the few bytes that say nobody appended)
        assert len([size for size in reads if size > len(_fileio.ZERO_RUN)]) == 1
        assert sorted(t.id for t in claimed) == sorted(t.id for t in tasks)
        for task in claimed:
            assert task == await store.get_task(task.id)
