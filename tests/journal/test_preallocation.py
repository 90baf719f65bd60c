"""Preallocated segments: the zeros after the frames are "no more frames", never damage;
and where the durable sync runs.

A store grows its segment in chunks of zeros ahead of its writes. Copying the
directory while a store has it open gives what a crash (SIGKILL) leaves: a
segment with a preallocated tail.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniq_trio.errors import JournalCorruptError
from omniq_trio.models import TaskStatus
from omniq_trio.store import JournalStore, Outcome, repair_journal
from omniq_trio.store._journal import _fileio, _files, _room
from omniq_trio.store._journal._durability import INLINE_SYNC_MAX
from omniq_trio.store._journal._frames import encode_batch, scan
from omniq_trio.testing import T0, make_task

W = "worker"

events = st.lists(
    st.dictionaries(
        st.sampled_from("abc"), st.text(max_size=20) | st.integers(-(2**63), 2**63 - 1)
    ),
    min_size=1,
    max_size=4,
)
batches = st.lists(events, min_size=1, max_size=5)


def encode(batch: list[dict[str, object]]) -> bytes:
    return encode_batch([orjson.dumps(event) for event in batch])


def segment(base: Path) -> Path:
    (number,) = _files.list_segments(base)
    return _files.segment_path(base, number)


def crash_copy(base: Path, to: Path) -> Path:
    """The directory as a crash would leave it (the store that has it open is not closed)."""
    shutil.copytree(base, to, ignore=shutil.ignore_patterns("wake", "*.lock"))
    return to


async def ids(store: JournalStore) -> list[str]:
    return [t.id for t in (await store.list_tasks()).tasks]


# ----------------------------------------------------------------- the frames


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_no_run_of_eight_zeros_inside_frames(all_batches: list[list[dict[str, object]]]) -> None:
    # what a read that stops at such a run (read_frames) relies on
    assert _fileio.ZERO_RUN not in b"".join(encode(b) for b in all_batches)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.integers(0, 5000))
def test_zeros_after_the_frames_are_a_clean_end(
    all_batches: list[list[dict[str, object]]], zeros: int
) -> None:
    data = b"".join(encode(b) for b in all_batches)
    found = scan(data + bytes(zeros), 32, tolerate_holes=False)
    assert len(found.batches) == len(all_batches)
    assert found.end == 32 + len(data) and found.bad_offset is None and not found.damaged


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, events, st.data())
def test_a_torn_frame_followed_by_zeros_is_torn(
    earlier: list[list[dict[str, object]]], last: list[dict[str, object]], data: st.DataObject
) -> None:
    head, tail = b"".join(encode(b) for b in earlier), encode(last)
    cut = data.draw(st.integers(1, len(tail) - 1))
    found = scan(head + tail[:cut] + bytes(data.draw(st.integers(0, 3000))))
    assert len(found.batches) == len(earlier)
    assert found.end == len(head) and found.torn and found.bad_offset == len(head)


def test_a_batch_without_its_last_frame_then_zeros_is_torn() -> None:
    first = encode([{"a": 1}])
    big = encode_batch([b'"' + b"x" * (3 << 20) + b'"'] * 2)  # two frames: "+" then "."
    more = big[: 8 + (3 << 20) + 3]  # the first frame whole ...
    assert scan(more[:-1]).torn
    found = scan(first + more + bytes(1 << 16))  # ... and the rest never written
    assert found.end == len(first) and found.torn and len(found.batches) == 1


def test_zeros_then_a_valid_frame_is_damage_unless_holes_are_tolerated() -> None:
    first, second = encode([{"a": 1}]), encode([{"b": 2}])
    data = first + bytes(1 << 20) + second  # a megabyte of zeros: searched quickly
    assert scan(data).damaged
    tolerated = scan(data, tolerate_holes=True)
    assert tolerated.torn and tolerated.end == len(first)


def test_read_frames_stops_in_the_zeros(tmp_path: Path) -> None:
    frames = b"".join(encode([{"i": i}]) for i in range(2000))
    path = tmp_path / "f"
    path.write_bytes(frames + bytes(8 << 20))
    fd = os.open(path, os.O_RDONLY)
    try:
        read = _fileio.read_frames(fd, 0)
        assert read.startswith(frames) and len(read) < len(frames) + (1 << 20)
        assert not _fileio.has_data_at(fd, len(frames))
        assert _fileio.has_data_at(fd, 0)
        assert not _fileio.has_data_at(fd, path.stat().st_size)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the store


async def test_a_store_preallocates_and_trims_when_it_closes(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as store:
        await store.enqueue([make_task()])
        assert os.fstat(store._segment_fd).st_size >= _room.PREALLOCATE > store._offset
        end = store._offset
    assert segment(tmp_path).stat().st_size == end


async def test_a_crashed_preallocated_journal_reopens_with_everything(tmp_path: Path) -> None:
    async with JournalStore(tmp_path / "a") as store:
        enqueued = [make_task() for _ in range(20)]
        for task in enqueued:
            await store.enqueue([task])
        claimed = await store.claim(W, now=T0, limit=5, lease_until=T0 + 30)
        await store.record([Outcome.success(t.id, W, T0 + 1, "ok") for t in claimed])
        crashed = crash_copy(tmp_path / "a", tmp_path / "b")
        end = store._offset
    assert segment(crashed).stat().st_size > end  # the zeros are there
    async with JournalStore(crashed) as store:
        assert await ids(store) == [t.id for t in enqueued]
        assert (await store.stats(now=T0)).counts[TaskStatus.SUCCESS] == 5
        await store.enqueue([more := make_task()])  # written over the zeros
        assert store._offset > end
    async with JournalStore(crashed) as store:
        assert await ids(store) == [t.id for t in enqueued] + [more.id]
    report = repair_journal(crashed, dry_run=True)
    assert report.damaged_at is None


async def test_other_stores_catch_up_over_a_preallocated_tail(tmp_path: Path) -> None:
    # two stores on one directory, as two processes: their own descriptors and locks
    async with JournalStore(tmp_path) as one, JournalStore(tmp_path) as two:
        first = make_task()
        await one.enqueue([first])
        assert await ids(two) == [first.id]  # read without a lock
        second = make_task()
        await two.enqueue([second])  # appended after the first's frames, not the file's end
        assert await ids(one) == [first.id, second.id]
        (claimed,) = await one.claim(W, now=T0, limit=1, lease_until=T0 + 30)
        await one.record([Outcome.success(claimed.id, W, T0 + 1, "done")])
        assert (await two.get_result(first.id)) is not None
        assert one._offset == two._offset
    async with JournalStore(tmp_path) as store:
        assert await ids(store) == [first.id, second.id]


async def test_a_torn_write_over_the_zeros_is_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with JournalStore(tmp_path / "a") as store:
        await store.enqueue([kept := make_task()])
        end = store._offset
        crashed = crash_copy(tmp_path / "a", tmp_path / "b")
    path = segment(crashed)
    size = path.stat().st_size
    torn = encode([{"a": "a write that never completed"}])
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, torn[: len(torn) // 2], end)  # a header, half a payload, then zeros
    finally:
        os.close(fd)
    assert path.stat().st_size == size
    with caplog.at_level(logging.WARNING, "omniq_trio"):
        async with JournalStore(crashed) as store:
            assert await ids(store) == [kept.id]
            await store.enqueue([added := make_task()])
    assert "torn write" in caplog.text
    async with JournalStore(crashed) as store:
        assert await ids(store) == [kept.id, added.id]


async def test_damage_before_a_preallocated_tail_still_raises(tmp_path: Path) -> None:
    async with JournalStore(tmp_path / "a") as store:
        for _ in range(4):
            await store.enqueue([make_task()])
        middle = store._offset // 2
        crashed = crash_copy(tmp_path / "a", tmp_path / "b")
    path = segment(crashed)
    data = bytearray(path.read_bytes())
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError):
        await JournalStore(crashed).open()


async def test_frames_that_end_exactly_where_the_allocation_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_room, "PREALLOCATE", 1)  # allocate exactly what each write needs
    async with JournalStore(tmp_path / "a") as store, JournalStore(tmp_path / "a") as other:
        for _ in range(3):
            await store.enqueue([make_task()])
            assert os.fstat(store._segment_fd).st_size == store._offset
            await other.enqueue([make_task()])
            assert os.fstat(other._segment_fd).st_size == other._offset
        assert await ids(store) == await ids(other)
        crashed = crash_copy(tmp_path / "a", tmp_path / "b")
        expected = await ids(store)
    async with JournalStore(crashed) as store:
        assert await ids(store) == expected


async def test_compaction_moves_to_a_new_segment_without_the_zeros(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as store, JournalStore(tmp_path) as other:
        tasks = [make_task() for _ in range(30)]
        for task in tasks:
            await store.enqueue([task])
        claimed = await store.claim(W, now=T0, limit=20, lease_until=T0 + 30)
        await store.record([Outcome.success(t.id, W, T0 + 1, "ok") for t in claimed])
        await store.purge(finished_before=T0 + 2, failed_before=T0 + 2)
        old = store._segment
        await store.compact()
        assert store._segment == old + 1
        await store.enqueue([late := make_task()])  # preallocates the new segment
        assert os.fstat(store._segment_fd).st_size > store._offset
        await other.enqueue([later := make_task()])  # another process follows it there
        expected = [t.id for t in tasks[20:]] + [late.id, later.id]
        assert await ids(store) == await ids(other) == expected
    async with JournalStore(tmp_path) as store:
        assert await ids(store) == expected


async def test_without_preallocation_appends_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "not here")

    monkeypatch.setattr(os, "posix_fallocate", cannot)
    async with JournalStore(tmp_path) as store:
        for _ in range(3):
            await store.enqueue([make_task()])
            assert os.fstat(store._segment_fd).st_size == store._offset
        assert not store._room.possible
        expected = await ids(store)
    async with JournalStore(tmp_path) as store:
        assert await ids(store) == expected


async def test_a_failed_preallocation_does_not_fail_the_commit(tmp_path: Path) -> None:
    async with JournalStore(tmp_path) as store:
        with _fileio.injected_faults() as faults:
            faults.fail("allocate", errno.ENOSPC)
            await store.enqueue([first := make_task()])  # the write itself fits
            assert os.fstat(store._segment_fd).st_size == store._offset
            await store.enqueue([second := make_task()])  # preallocates again
            assert os.fstat(store._segment_fd).st_size > store._offset
            assert faults.calls["allocate"] == 2
    async with JournalStore(tmp_path) as store:
        assert await ids(store) == [first.id, second.id]


# ------------------------------------------------------ where the sync runs


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The functions run through ``trio.to_thread.run_sync``, with every sync fast."""
    hops: list[object] = []
    real = trio.to_thread.run_sync

    async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(trio.to_thread, "run_sync", counted)
    monkeypatch.setattr(_fileio, "durable_sync", lambda fd: None)  # always fast
    return hops


async def test_the_sync_runs_on_the_loop_only_while_syncs_are_fast_and_nothing_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hops: list[object]
) -> None:
    async with JournalStore(tmp_path) as store:
        hops.clear()
        await store.enqueue([make_task()])
        assert hops == []  # alone: synced on the loop
        store._sync_took = INLINE_SYNC_MAX * 2  # the last sync was slow
        await store.enqueue([make_task()])
        assert hops == [store._timed_sync]
        await store.enqueue([make_task()])  # the one in the thread was fast again
        assert hops == [store._timed_sync]
        statistics = trio.lowlevel.current_statistics

        def busy() -> Any:  # another task is ready to run
            return attrs.evolve(statistics(), tasks_runnable=1)

        monkeypatch.setattr(trio.lowlevel, "current_statistics", busy)
        await store.enqueue([make_task()])
        assert hops == [store._timed_sync] * 2


async def test_a_process_that_claims_syncs_in_a_thread(tmp_path: Path, hops: list[object]) -> None:
    async with JournalStore(tmp_path) as store:
        await store.enqueue([make_task()])
        hops.clear()
        # a claim was written since the last sync: executors are about, keep the loop free
        (claimed,) = await store.claim(W, now=T0, limit=1, lease_until=T0 + 30)
        await store.record([Outcome.success(claimed.id, W, T0 + 1)])
        assert hops == [store._timed_sync]
        await store.enqueue([make_task()])  # nothing claimed since that sync: on the loop
        assert hops == [store._timed_sync]


async def test_a_claim_leading_a_batch_does_not_wait_for_its_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the poller would otherwise hold back the tasks it claimed for a sync it
    # does not need, because an outcome joined its batch
    gate = threading.Event()
    monkeypatch.setattr(_fileio, "durable_sync", lambda fd: gate.wait(10))
    async with JournalStore(tmp_path) as store:
        gate.set()
        first, second = make_task(), make_task()
        await store.enqueue([first, second])
        (running,) = await store.claim(W, now=T0, limit=1, lease_until=T0 + 30)
        gate.clear()
        claimed: list[str] = []
        recorded: list[object] = []

        async def claim() -> None:
            claimed.extend(t.id for t in await store.claim(W, now=T0, limit=1, lease_until=T0))

        async def record() -> None:
            recorded.extend(await store.record([Outcome.success(running.id, W, T0 + 1)]))

        async with trio.open_nursery() as nursery:
            # hold the writes back so that the claim and then the outcome queue up:
            # the claim leads the next batch, the outcome in it
            await store._io_lock.acquire()
            nursery.start_soon(functools.partial(store.release, [], worker_id=W))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(claim)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(record)
            await trio.testing.wait_all_tasks_blocked()
            store._io_lock.release()
            await trio.testing.wait_all_tasks_blocked()  # the outcome's sync hangs
            assert claimed == [second.id]
            assert recorded == []
            gate.set()
        assert recorded == [None]
        assert (await store.get_task(running.id)).status is TaskStatus.SUCCESS
