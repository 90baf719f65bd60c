"""Checkpoints: open = the newest checkpoint + the tail after it; a damaged, truncated or
mismatched checkpoint is ignored for a full replay; readers take no lock; compaction keeps
what others commit while it writes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from omniq_trio.models import Progress, RateLimit, ScheduleInfo, TaskStatus, WorkerInfo
from omniq_trio.store import JournalStore, Outcome
from omniq_trio.store._journal import _fileio, _files, _maintenance
from omniq_trio.testing import T0, make_task
from omniq_trio.testing._store_kit import ERROR

W = "worker"


async def varied(store: JournalStore) -> None:
    """Tasks in every state, and every kind of control."""
    tasks = [
        make_task(queue="q1", priority=2, unique_key="u1"),
        make_task(queue="q2", eta=T0 + 100),
        make_task(interval=60.0),
        make_task(max_retries=1, headers={"traceparent": "00-abc-01"}),
        make_task(args=(1, [2]), kwargs={"k": "v"}),
        make_task(max_lost_runs=0),
        make_task(),
    ]
    await store.enqueue(tasks)
    claimed = await store.claim(W, now=T0, limit=10, lease_until=T0 + 30)
    assert len(claimed) == 6
    await store.set_progress(tasks[0].id, worker_id=W, progress=Progress(0.5, "half", T0))
    await store.record(
        [
            Outcome.next_run(tasks[2].id, W, T0 + 1, T0 + 60, value="run 1"),
            Outcome.retry(tasks[3].id, W, T0 + 1, ERROR, T0 + 5),
            Outcome.success(tasks[4].id, W, T0 + 1, {"done": True}),
        ]
    )
    await store.reclaim_expired(now=T0 + 31)  # 0 and 5 were still held: 5 fails, 0 requeued
    await store.cancel(tasks[6].id, at=T0 + 2)
    await store.pause_queue("q2", paused=True)
    await store.set_queue_limit("q1", RateLimit(5, 60.0))
    await store.fire_schedule("nightly", slot=T0, task=make_task(unique_key="nightly@1"))
    await store.register_schedules(
        [ScheduleInfo("nightly", "tests.tasks:noop", "0 3 * * *", next_slot=T0 + 86_400)]
    )
    await store.register_worker(
        WorkerInfo(W, "host", 1, 4, None, T0, T0, T0 + 10_000, running=(tasks[0].id,))
    )


async def state(store: JournalStore) -> list[object]:
    tasks = (await store.list_tasks()).tasks
    return [
        [(t, await store.get_result(t.id)) for t in tasks],
        await store.stats(now=T0 + 50),
        await store.list_queues(),
        await store.list_schedules(),
        await store.list_workers(now=T0),
        await store.next_due(now=T0 + 50),
        (await store.list_tasks(status=TaskStatus.PENDING, newest_first=True, limit=2)).tasks,
    ]


def checkpoint(base: Path) -> Path:
    return _files.checkpoint_path(base, _files.list_segments(base)[-1])


async def test_a_checkpoint_and_its_tail_read_back_as_the_whole_segment(tmp_path: Path) -> None:
    async with JournalStore(tmp_path, checkpoint_records=10) as store:
        await varied(store)
        await store._maintenance.wait_idle()
        assert checkpoint(tmp_path).exists()
        await store.enqueue([make_task(queue="after")])  # a tail after the checkpoint
        expected = await state(store)
    async with JournalStore(tmp_path) as store:
        assert store._maintenance._checkpointed > 0, "opened from the checkpoint"
        assert await state(store) == expected
        (claimed,) = await store.claim(
            W, now=T0 + 60, limit=1, lease_until=T0 + 90, queues={"after": 1}
        )
        assert claimed.queue == "after"
        expected = await state(store)
    checkpoint(tmp_path).unlink()
    async with JournalStore(tmp_path) as store:  # the whole segment says the same
        assert store._maintenance._checkpointed == 0
        assert await state(store) == expected


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    ["a flipped byte in a section", "a flipped byte in the meta", "truncated", "garbage"],
)
async def test_a_bad_checkpoint_is_ignored_for_a_full_replay(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with JournalStore(tmp_path, checkpoint_records=10) as store:
        await varied(store)
        await store._maintenance.wait_idle()
        expected = await state(store)
    path = checkpoint(tmp_path)
    size = path.stat().st_size
    if damage == "a flipped byte in a section":
        flip(path, size - 100)
    elif damage == "a flipped byte in the meta":
        flip(path, 40)
    elif damage == "truncated":
        os.truncate(path, size // 2)
    else:
        path.write_bytes(b"not a checkpoint at all")
    with caplog.at_level(logging.WARNING, "omniq_trio"):
        async with JournalStore(tmp_path) as store:
            assert await state(store) == expected
    assert "ignoring checkpoint" in caplog.text and "replaying the whole segment" in caplog.text


async def test_a_checkpoint_that_no_longer_matches_its_segment_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with JournalStore(tmp_path, checkpoint_records=10) as store:
        await varied(store)
        await store._maintenance.wait_idle()
    saved = checkpoint(tmp_path).read_bytes()
    covered = orjson.loads(saved[16 : 16 + int.from_bytes(saved[8:12], "little")])["end"]
    segment = _files.segment_path(tmp_path, _files.list_segments(tmp_path)[-1])
    async with JournalStore(tmp_path) as store:
        await store.enqueue([make_task()])
    # cut back below what the checkpoint covers (a repair would), keep the checkpoint
    os.truncate(segment, covered - 10)
    checkpoint(tmp_path).write_bytes(saved)
    with caplog.at_level(logging.WARNING, "omniq_trio"):
        async with JournalStore(tmp_path) as store:
            await store.list_tasks()
    assert "no longer holds what it covers" in caplog.text


async def test_readers_take_no_lock(tmp_path: Path) -> None:
    """While a writer holds the exclusive lock, another store opens and reads."""
    async with JournalStore(tmp_path, checkpoint_records=10) as store:
        await varied(store)
        await store._maintenance.wait_idle()
        await store.enqueue([make_task()])
        expected = await state(store)
    fd = _files.open_lock(tmp_path)
    _fileio.lock(fd, exclusive=True)
    read_while_locked = trio.Event()
    try:

        async def release_later() -> None:
            with trio.move_on_after(30):  # a guard: the reader should not need it
                await read_while_locked.wait()
            _fileio.unlock(fd)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(release_later)
            async with JournalStore(tmp_path) as reader:
                got = await state(reader)
                read_while_locked.set()
    finally:
        os.close(fd)
    assert got == expected
    assert read_while_locked.is_set()


async def test_commits_made_while_a_compaction_writes_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with JournalStore(tmp_path) as one, JournalStore(tmp_path) as two:
        await varied(one)
        late = [make_task(), make_task()]
        real = trio.to_thread.run_sync

        async def run_sync(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if (
                fn.__qualname__
                == f"{_maintenance.Maintenance._compact.__qualname__}.<locals>.write"
            ):
                await two.enqueue(late[:1])  # committed before the snapshot is written ...
                result = await real(fn, *args, **kwargs)
                await two.enqueue(late[1:])  # ... and after, before the switch
                return result
            return await real(fn, *args, **kwargs)

        monkeypatch.setattr(trio.to_thread, "run_sync", run_sync)
        number = _files.list_segments(tmp_path)[-1]
        await one.compact()
        monkeypatch.undo()
        assert _files.list_segments(tmp_path) == [number + 1]
        ids = {t.id for t in (await one.list_tasks()).tasks}
        assert {t.id for t in late} <= ids
        assert {t.id for t in (await two.list_tasks()).tasks} == ids
    async with JournalStore(tmp_path) as store:
        assert {t.id for t in (await store.list_tasks()).tasks} == ids
