"""A process the crash tests start and kill. ``python -m tests.journal._crash_child MODE DIR ...``

It prints each task id on its own line once ``enqueue`` has returned (that
is, once the journal acknowledged it), flushing every time, so that what the
parent reads after a SIGKILL is exactly what was acknowledged.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Settings
from omniq_trio.store import JournalStore, Outcome
from tests.journal.crash_tasks import mark


async def produce(base_dir: Path, runs_file: str, producers: int, limit: int) -> None:
    counter = itertools.count()
    async with AsyncOmniQ(Settings(backend="file", base_dir=base_dir)) as omniq:

        async def producer(n: int) -> None:
            while (i := next(counter)) < limit:
                task_id = await omniq.enqueue(mark, f"{os.getpid()}-{n}-{i}", runs_file)
                print(task_id, flush=True)

        async with trio.open_nursery() as nursery:
            for n in range(producers):
                nursery.start_soon(producer, n)


async def churn_and_compact(base_dir: Path) -> None:
    """Enqueue, finish half, compact; over and over, until killed."""
    from omniq_trio.testing import T0, make_task

    async with JournalStore(base_dir, compact_min_records=20) as store:
        for round_ in itertools.count():
            tasks = [make_task() for _ in range(20)]
            await store.enqueue(tasks)
            for task in tasks:
                print(task.id, flush=True)
            claimed = await store.claim(f"w{round_}", now=T0, limit=10, lease_until=T0 + 30)
            await store.record([Outcome.success(t.id, f"w{round_}", T0, 1) for t in claimed])
            await store.compact()


def main() -> None:
    mode, base_dir = sys.argv[1], Path(sys.argv[2])
    if mode == "produce":
        trio.run(produce, base_dir, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "compact":
        trio.run(churn_and_compact, base_dir)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
