"""The processes of ``benchmarks.journal_scale``, each run as ``python -S _scale_roles.py ROLE``.

They use only the public store API (and import nothing from this tree), so
that the same roles measure another source tree of omniq_trio (``--tree``,
first on ``PYTHONPATH``). They print the file of the omniq_trio they run,
so that the parent can check which tree it measured.

* ``build DIR N``: enqueue N pending no-op tasks in batches; prints "done".
* ``open DIR [listings]``: open the journal once; prints ``{"open": s, "tasks": n,
  "rss_mb": ..., "stats": s}``, with ``listings`` also the time of a page of each
  listing a dashboard shows.
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


async def open_once(base_dir: Path, listings: bool) -> None:
    start = time.perf_counter()
    store = JournalStore(base_dir)
    await store.open()
    elapsed = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    stats = await store.stats(now=T0)
    report = {"open": elapsed, "tasks": stats.total, "rss_mb": rss}
    report["stats"] = time.perf_counter() - start
    if listings:
        report["listings"] = await _listings(store)
    await store.aclose()
    print(json.dumps(report), flush=True)


async def _listings(store: JournalStore) -> dict[str, float]:
    """Seconds for a page of 50 of each listing a dashboard shows (worst of three)."""
    newest = (await store.list_tasks(limit=1, newest_first=True)).tasks[0]
    queries: dict[str, dict[str, object]] = {
        "newest first": {"newest_first": True},
        "oldest first": {},
        "pending, newest first": {"status": "pending", "newest_first": True},
        "failed (none)": {"status": "failed", "newest_first": True},
        "queue": {"queue": "default", "newest_first": True},
        "function": {"func": "benchmarks.tasks:noop", "newest_first": True},
        "unknown function": {"func": "app:nothing"},
        "id prefix": {"id_prefix": newest.id[:6]},
    }
    times: dict[str, float] = {}
    for name, query in queries.items():
        worst = 0.0
        for _ in range(3):
            start = time.perf_counter()
            await store.list_tasks(limit=50, **query)  # type: ignore[arg-type]
            worst = max(worst, time.perf_counter() - start)
        times[name] = worst
    # page 200 (after 10,000 tasks), by cursor
    cursor = None
    for _ in range(200):
        page = await store.list_tasks(limit=50, cursor=cursor, newest_first=True)
        cursor = page.next_cursor
    start = time.perf_counter()
    await store.list_tasks(limit=50, cursor=cursor, newest_first=True)
    times["page 201 by cursor"] = time.perf_counter() - start
    return times


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
    import omniq_trio

    print(f"using {Path(omniq_trio.__file__).parent.parent}", file=sys.stderr, flush=True)
    if role == "build":
        trio.run(build, Path(base_dir), int(rest[0]))
    elif role == "open":
        trio.run(open_once, Path(base_dir), rest == ["listings"])
    elif role == "produce":
        trio.run(produce, Path(base_dir))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
