"""Reopening a large journal: a full replay, then from its checkpoint; the index's memory.

    python -m benchmarks.journal_reopen [--records 1000000]

Writes a segment of ``--records`` events the way a busy queue leaves one
(40% enqueues, 30% claims, 30% completions, in batches of 100), then, each in
this process:

* **replay**: ``JournalStore.open()`` with no checkpoint: every event is
  decoded and applied (what a journal written by 0.1, or one whose checkpoint
  was lost, costs once); the store then writes a checkpoint in the background;
* **checkpoint**: ``open()`` again: the checkpoint is loaded, no event replayed;

and the resident memory the index takes per task. A second run measures a
journal of pending tasks only (all enqueues): the memory per pending task.
For fresh processes, many tasks and a producer meanwhile, see
``benchmarks.journal_scale``.
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
from omniq_trio.store import JournalStore, Outcome
from omniq_trio.store._events import Claimed, Event, Put
from omniq_trio.store._journal import _files
from omniq_trio.store._journal._frames import BatchBuilder, new_header
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
        events.append(Outcome.success(t.id, "host:1:abc", T0 + 1))
    return events


def write_journal(base_dir: Path, events: list[Event]) -> int:
    _files.create_dir(base_dir)
    path = _files.segment_path(base_dir, 1)
    header, _ = new_header()
    with open(path, "wb") as f:
        f.write(header)
        for i in range(0, len(events), BATCH):
            builder = BatchBuilder(f.tell())
            for event in events[i : i + BATCH]:
                builder.add(encode_event(event))
            f.write(builder.finish())
    return path.stat().st_size


async def reopen(base_dir: Path) -> tuple[float, float, float, int]:
    gc.collect()
    before = _rss_mb()
    start = time.perf_counter()
    store = JournalStore(base_dir, checkpoint_records=1)  # a checkpoint after the replay
    await store.open()
    replayed = time.perf_counter() - start
    gc.collect()
    grown = _rss_mb() - before
    tasks = (await store.stats(now=T0)).total
    await store._maintenance.wait_idle()  # the checkpoint the replay asked for
    await store.aclose()
    start = time.perf_counter()
    store = JournalStore(base_dir)
    await store.open()
    from_checkpoint = time.perf_counter() - start
    await store.aclose()
    return replayed, from_checkpoint, grown, tasks


def run(records: int, pending_only: bool) -> None:
    base = Path(tempfile.mkdtemp(prefix="omniq-reopen-"))
    try:
        events = _events(records, pending_only)
        size = write_journal(base, events)
        del events
        gc.collect()
        replayed, from_checkpoint, grown, tasks = trio.run(reopen, base)
        kind = "pending enqueues only" if pending_only else "40% enqueue / 30% claim / 30% done"
        print(f"{records:,} records ({kind}), {size / 2**20:,.0f} MB on disk:")
        print(f"  full replay: {replayed:.2f} s ({records / replayed:,.0f} records/s)")
        print(f"  from the checkpoint: {from_checkpoint:.2f} s")
        print(
            f"  index memory (after the replay): {grown:,.0f} MB for {tasks:,} tasks = "
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
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    run(args.records, pending_only=False)
    run(args.records // 10 * 1, pending_only=True)


if __name__ == "__main__":
    main()
