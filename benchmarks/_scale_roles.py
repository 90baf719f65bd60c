"""The processes of ``benchmarks.journal_scale``, each run as ``python -m benchmarks._scale_roles``.

They use only the public store API, so that the same roles measure another
source tree of omniq_trio (``--tree``: put first on ``PYTHONPATH``).

* ``build DIR N``: enqueue N pending no-op tasks in batches; prints "done".
* ``open DIR``: open the journal once; prints ``{"open": s, "tasks": n, "rss_mb": ...}``.
* ``produce DIR``: print "ready", then enqueue one task at a time, awaiting each,
  until stdin closes; then print the ``[start, latency]`` of each enqueue as JSON
  (monotonic clock, which is system-wide on Linux).
"""

from __future__ import annotations

import json
import resource
import sys
import time
import uuid
from pathlib import Path

import trio

from omniq_trio.models import Task
from omniq_trio.store import JournalStore

BATCH = 10_000
T0 = 1_700_000_000.0


def _task() -> Task:
    return Task(id=uuid.uuid4().hex, func="benchmarks.tasks:noop", eta=T0, created_at=T0)


async def build(base_dir: Path, n: int) -> None:
    async with JournalStore(base_dir) as store:
        for start in range(0, n, BATCH):
            await store.enqueue([_task() for _ in range(min(BATCH, n - start))])
        # let background checkpoints finish, where the tree has them
        maintenance = getattr(store, "_maintenance", None)
        if maintenance is not None:
            await maintenance.wait_idle()
    print("done", flush=True)


async def open_once(base_dir: Path) -> None:
    start = time.perf_counter()
    store = JournalStore(base_dir)
    await store.open()
    elapsed = time.perf_counter() - start
    stats = await store.stats(now=T0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    await store.aclose()
    print(json.dumps({"open": elapsed, "tasks": stats.total, "rss_mb": rss}), flush=True)


async def produce(base_dir: Path) -> None:
    latencies: list[tuple[float, float]] = []
    async with JournalStore(base_dir) as store:
        await store.enqueue([_task()])
        print("ready", flush=True)
        done = trio.Event()

        async def watch_stdin() -> None:
            await trio.to_thread.run_sync(sys.stdin.read)
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_stdin)
            while not done.is_set():
                start = time.monotonic()
                await store.enqueue([_task()])
                latencies.append((start, time.monotonic() - start))
                await trio.sleep(0.002)
    print(json.dumps(latencies), flush=True)


def main() -> None:
    role, base_dir, *rest = sys.argv[1:]
    if role == "build":
        trio.run(build, Path(base_dir), int(rest[0]))
    elif role == "open":
        trio.run(open_once, Path(base_dir))
    elif role == "produce":
        trio.run(produce, Path(base_dir))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
