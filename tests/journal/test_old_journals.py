"""A journal written by omniq_trio 0.1 opens: it is upgraded to format 2 once, crash-safely,
and reads back as 0.1 left it (the fixture and how it was made: ``fixtures/``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from omniq_trio.models import TaskError, TaskStatus
from omniq_trio.store import JournalStore
from omniq_trio.store._journal import _files
from omniq_trio.store._journal._frames import HEADER, HEADER_V1

FIXTURE = Path(__file__).parent / "fixtures" / "journal-0.1"
T0 = 1_700_000_000.0
W = "host:1:abc"
ERROR = TaskError("builtins.ValueError", "boom", "Traceback ...\nValueError: boom\n")


def tid(name: str) -> str:
    return f"{name:0<32}"


def copy_fixture(tmp_path: Path) -> Path:
    base = tmp_path / "journal"
    shutil.copytree(FIXTURE, base)
    return base


async def check_state(store: JournalStore) -> None:
    tasks = {t.id: t for t in (await store.list_tasks()).tasks}
    assert set(tasks) == {
        tid(n)
        for n in (
            "done",
            "failed",
            "repeats",
            "purged",
            "pending",
            "retrying",
            "running",
            "released",
            "cancelled",
            "retried",
            "late",
        )
    }
    status = {name: tasks[tid(name)].status for name in ("done", "failed", "repeats", "purged")}
    assert status == {
        "done": TaskStatus.SUCCESS,
        "failed": TaskStatus.FAILED,
        "repeats": TaskStatus.PENDING,
        "purged": TaskStatus.SUCCESS,  # 0.1's purge after a compaction found nothing
    }
    done = tasks[tid("done")]
    assert (done.args, done.kwargs, done.finished_at) == ((1, "two"), {"k": [3]}, T0 + 4)
    result = await store.get_result(done.id)
    assert result is not None and (result.value, result.attempts) == ({"answer": 42}, 1)
    failed = await store.get_result(tid("failed"))
    assert failed is not None and (failed.status, failed.error) == (TaskStatus.FAILED, ERROR)
    repeats = tasks[tid("repeats")]
    assert (repeats.eta, repeats.interval, repeats.attempts) == (T0 + 60, 60.0, 0)
    run = await store.get_result(repeats.id)
    assert run is not None and (run.value, run.attempts, run.finished_at) == ("run 1", 1, T0 + 3)
    pending = tasks[tid("pending")]
    assert (pending.status, pending.priority, pending.eta) == (TaskStatus.PENDING, 5, T0 + 100)
    retrying = tasks[tid("retrying")]
    assert (retrying.status, retrying.eta, retrying.attempts, retrying.error) == (
        TaskStatus.RETRYING,
        T0 + 20,
        1,
        ERROR,
    )
    running = tasks[tid("running")]
    assert (running.status, running.worker_id, running.lease_until) == (
        TaskStatus.RUNNING,
        W,
        T0 + 40,
    )
    assert tasks[tid("released")].status is TaskStatus.PENDING
    assert tasks[tid("cancelled")].status is TaskStatus.CANCELLED
    retried = tasks[tid("retried")]
    assert (retried.status, retried.attempts, retried.eta) == (TaskStatus.PENDING, 0, T0 + 14)
    assert await store.get_result(retried.id) is None
    late = await store.get_result(tid("late"))
    assert late is not None and (late.status, late.value) == (TaskStatus.SUCCESS, [1, 2])
    # it goes on working: the due ones are claimed in order
    claimed = await store.claim("w", now=T0 + 60, limit=10, lease_until=T0 + 90)
    assert [t.id for t in claimed] == [
        tid(n) for n in ("released", "retried", "retrying", "repeats")
    ]


async def test_a_0_1_journal_is_upgraded_and_reads_back(tmp_path: Path) -> None:
    base = copy_fixture(tmp_path)
    assert (base / "journal-00000002.log").read_bytes().startswith(HEADER_V1)
    async with JournalStore(base) as store:
        await check_state(store)
    # upgraded once: format 2, with its checkpoint; the 0.1 segment is gone
    assert _files.list_segments(base) == [3]
    assert (base / "journal-00000003.log").read_bytes().startswith(HEADER)
    assert (base / "journal-00000003.ckpt").exists()


async def test_an_interrupted_upgrade_is_done_again(tmp_path: Path) -> None:
    """Killed while writing the format-2 segment: the 0.1 one is still whole and complete."""
    base = copy_fixture(tmp_path)
    (base / "journal-00000003.log.4242.tmp").write_bytes(HEADER + b"half a segment")
    (base / "journal-00000003.ckpt").write_bytes(b"a checkpoint of it")
    async with JournalStore(base) as store:
        await check_state(store)
    assert _files.list_segments(base) == [3]
    assert not list(base.glob("*.tmp"))
