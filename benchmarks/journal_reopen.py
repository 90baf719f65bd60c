"""Reopening a large journal, and the memory its index takes.

    python -m benchmarks.journal_reopen [--records 1000000]

Writes a segment of ``--records`` events the way a busy queue leaves one
(40% enqueues, 30% claims, 30% completions, in batches of 100), then times
``JournalStore.open()`` (replay into the in-memory index) and reports the
resident memory that index takes per task. A second run measures a journal
of pending tasks only (all enqueues), the memory-per-pending-task figure.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import trio

from omniq_trio.models import Task
from omniq_trio.store import JournalStore
from omniq_trio.store._events import Claimed, Completed, Event, Put
from omniq_trio.store._journal import _files
from omniq_trio.store._journal._frames import HEADER, encode_batch
from omniq_trio.store._journal._records import encode_event

T0 = 1_700_000_000.0
BATCH = 100


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _events(records: int, pending_only: bool) -> list[Event]:
    if pending_only:
        puts, done = records, 0
    else:
        puts = records * 4 // 10
        done = (records - puts) // 2
    tasks = [
        Task(id=uuid.uuid4().hex, func="benchmarks.tasks:noop", eta=T0, created_at=T0)
        for _ in range(puts)
    ]
    events: list[Event] = [Put(t) for t in tasks]
    for t in tasks[:done]:
        events.append(Claimed((t.id,), "host:1:abc", T0 + 30, T0))
        events.append(Completed(t.id, "host:1:abc", None, T0 + 1))
    return events


def write_journal(base_dir: Path, events: list[Event]) -> int:
    _files.create_dir(base_dir)
    path = _files.segment_path(base_dir, 1)
    with open(path, "wb") as f:
        f.write(HEADER)
        for i in range(0, len(events), BATCH):
            f.write(encode_batch([encode_event(e) for e in events[i : i + BATCH]]))
    return path.stat().st_size


async def reopen(base_dir: Path) -> tuple[float, float, int]:
    gc.collect()
    before = _rss_mb()
    start = time.perf_counter()
    store = JournalStore(base_dir)
    await store.open()
    elapsed = time.perf_counter() - start
    gc.collect()
    grown = _rss_mb() - before
    tasks = len((await store.list_tasks()).tasks)
    await store.aclose()
    return elapsed, grown, tasks


def run(records: int, pending_only: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix="omniq-reopen-"))
    try:
        events = _events(records, pending_only)
        size = write_journal(base, events)
        del events
        gc.collect()
        elapsed, grown, tasks = trio.run(reopen, base)
        kind = "pending enqueues only" if pending_only else "40% enqueue / 30% claim / 30% done"
        print(f"{records:,} records ({kind}), {size / 2**20:,.0f} MB on disk:")
        print(
            f"  reopen (replay into the index): {elapsed:.2f} s "
            f"({records / elapsed:,.0f} records/s)"
        )
        print(
            f"  index memory: {grown:,.0f} MB for {tasks:,} tasks = "
            f"{grown * 2**20 / tasks:,.0f} bytes/task"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    run(args.records, pending_only=False)
    run(args.records // 10 * 1, pending_only=True)


if __name__ == "__main__":
    main()
