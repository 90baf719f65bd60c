"""Enqueue and processing throughput, enqueue-to-start latency, and memory.

    python -m benchmarks.throughput                       # file journal, fsync always and never
    python -m benchmarks.throughput --backend memory
    python -m benchmarks.throughput --backend postgres --dsn postgresql://postgres@127.0.0.1/test
    python -m benchmarks.throughput --n 10000 --n 100000 --workers 1 --workers 4

Workload (as in the project's bar): N no-op tasks enqueued by one producer,
then processed by worker(s) of concurrency 4. Figures are printed, never
asserted. With ``--workers 1`` the worker runs **in the producer's process**
(in-process figures); more workers run ``omniq_trio.serve`` in subprocesses.
For the topology users deploy (producer, worker and monitor processes), side
by side with huey, see ``benchmarks/compare.py``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from omniq_trio import AsyncOmniQ, Call, Settings, TaskStatus

from .tasks import noop, since

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1_000
PRODUCERS = 8


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>10,.0f} tasks/s"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _wait_all_done(omniq: AsyncOmniQ, n: int, poll: float = 0.05) -> None:
    # polls the store rather than waiting on an event: the work may be done
    # by other processes
    while True:
        # While tasks are still waiting to be claimed (an index lookup), we are
        # not done; only then are the counts read (on PostgreSQL they fold the
        # count changes the workers appended, a write of its own).
        if (
            await omniq.store.next_due(now=time.time()) is None
            and (await omniq.stats()).counts[TaskStatus.SUCCESS] >= n
        ):
            return
        await trio.sleep(poll)


def _spawn_workers(
    count: int, settings_env: dict[str, str], concurrency: int
) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        **settings_env,
        "OMNIQ_CONCURRENCY": str(concurrency),
        "OMNIQ_LOG_LEVEL": "WARNING",
        # the functions these workers run (a worker runs only registered tasks)
        "OMNIQ_IMPORTS": "benchmarks.tasks",
    }
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    code = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
    return [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(count)]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=60)


async def bench_enqueue(settings: Settings, n: int) -> None:
    async with AsyncOmniQ(settings) as omniq:
        start = time.perf_counter()
        for i in range(0, n, BATCH):
            await omniq.enqueue_many([Call(noop)] * min(BATCH, n - i))
        batched = time.perf_counter() - start
    async with AsyncOmniQ(settings) as omniq:
        per_producer = max(1, min(n, 20_000) // PRODUCERS)

        async def producer() -> None:
            for _ in range(per_producer):
                await omniq.enqueue(noop)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(PRODUCERS):
                nursery.start_soon(producer)
        single = time.perf_counter() - start
    print(f"  enqueue, batches of {BATCH:,}:        {_rate(n, batched)}")
    print(
        f"  enqueue, one at a time, {PRODUCERS} producers: "
        f"{_rate(per_producer * PRODUCERS, single)}"
    )


async def bench_process(
    settings: Settings, n: int, workers: int, concurrency: int, env: dict[str, str]
) -> None:
    async with AsyncOmniQ(settings) as omniq:
        for i in range(0, n, BATCH):
            await omniq.enqueue_many([Call(noop)] * min(BATCH, n - i))
        rss_before = _rss_mb()
        if workers == 1:
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                pool = omniq.worker(concurrency=concurrency, poll_interval=0.05)
                await nursery.start(pool.run)
                await _wait_all_done(omniq, n)
                elapsed = time.perf_counter() - start
                await pool.stop()
        else:
            procs = _spawn_workers(workers, env, concurrency)
            start = time.perf_counter()
            try:
                await _wait_all_done(omniq, n)
                elapsed = time.perf_counter() - start
            finally:
                _stop(procs)
        where = (
            "1 worker in the producer's process (in-process)"
            if workers == 1
            else f"{workers} worker processes"
        )
        print(
            f"  process, {where} x concurrency {concurrency}: "
            f"{_rate(n, elapsed)}"
            f"   (rss {rss_before:,.0f} MB with {n:,} tasks in the store)"
        )


async def _trickle(omniq: AsyncOmniQ, samples: int) -> list[float]:
    """Enqueue a task every 5 ms; each reports how long it waited to start (ms)."""
    ids = []
    for _ in range(samples):
        ids.append(await omniq.enqueue(since, time.time()))
        await trio.sleep(0.005)
    latencies = []
    for task_id in ids:
        result = await omniq.get_result(task_id, wait=True, timeout=30)
        assert result is not None
        latencies.append(result.value * 1000)
    return latencies


async def bench_latency(settings: Settings, samples: int) -> None:
    async with AsyncOmniQ(settings) as omniq, trio.open_nursery() as nursery:
        pool = omniq.worker(concurrency=4, poll_interval=1.0)
        await nursery.start(pool.run)
        latencies = await _trickle(omniq, samples)
        await pool.stop()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"  latency enqueue->start, idle worker in-process: p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms"
    )


async def bench_latency_remote(settings: Settings, env: dict[str, str], samples: int) -> None:
    """As :func:`bench_latency`, with the worker in another process: only the
    store's own notifications (PostgreSQL's LISTEN/NOTIFY) can wake it."""
    (proc,) = _spawn_workers(1, env, 4)
    try:
        async with AsyncOmniQ(settings) as omniq:
            # the worker is up, and has settled into waiting, once it has run this
            warm_up = await omniq.enqueue(since, time.time())
            await omniq.get_result(warm_up, wait=True, timeout=60)
            await trio.sleep(0.2)
            latencies = await _trickle(omniq, samples)
    finally:
        _stop([proc])
    q = statistics.quantiles(latencies, n=100)
    print(
        f"  latency enqueue->start, idle worker in another process: p50 {q[49]:.2f} ms, "
        f"p99 {q[98]:.2f} ms"
    )


async def memory_per_task(settings: Settings, n: int) -> None:
    async with AsyncOmniQ(settings) as omniq:
        await omniq.enqueue_many([Call(noop)])
        before = _rss_mb()
        for i in range(0, n, BATCH):
            await omniq.enqueue_many([Call(noop)] * min(BATCH, n - i))
        after = _rss_mb()
    print(
        f"  memory per pending no-op task: {(after - before) * 2**20 / n:,.0f} bytes "
        f"(RSS growth / {n:,})"
    )


def _settings_for(
    args: argparse.Namespace, fsync: str, base_dir: Path, tag: str
) -> tuple[Settings, dict[str, str]]:
    if args.backend == "postgres":
        # a schema name is an identifier: the tag's "-" (no fsync policy) is not allowed
        schema = f"bench_{tag}_{os.getpid()}".replace("-", "x")
        env = {"OMNIQ_BACKEND": "postgres", "OMNIQ_DSN": args.dsn, "OMNIQ_POSTGRES_SCHEMA": schema}
        return Settings(backend="postgres", dsn=args.dsn, postgres_schema=schema), env
    directory = base_dir / tag
    env = {"OMNIQ_BACKEND": args.backend, "OMNIQ_BASE_DIR": str(directory), "OMNIQ_FSYNC": fsync}
    if fsync == "-":
        return Settings(backend=args.backend, base_dir=directory), env
    return Settings(backend=args.backend, base_dir=directory, fsync=fsync), env  # type: ignore[arg-type]


async def _drop_schema(settings: Settings) -> None:
    if settings.backend != "postgres":
        return
    import psycopg

    with psycopg.connect(settings.dsn or "", autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{settings.postgres_schema}" CASCADE')


async def _run(
    args: argparse.Namespace, fsync: str, base: Path, tag: str, bench: Any, *extra: Any
) -> None:
    """Run one benchmark on a fresh store (a new directory or schema)."""
    settings, env = _settings_for(args, fsync, base, tag)
    try:
        await bench(settings, env, *extra)
    finally:
        await _drop_schema(settings)


async def main(args: argparse.Namespace) -> None:
    fsyncs = args.fsync or (["always", "never"] if args.backend == "file" else ["-"])
    versions = f"python {sys.version.split()[0]}, trio {trio.__version__}"
    print(f"omniq_trio throughput: backend={args.backend}, {versions}")
    base = Path(tempfile.mkdtemp(prefix="omniq-bench-"))
    try:
        # first, while the heap is still small: RSS growth is then the index's own
        await _run(args, fsyncs[0], base, "mem", _memory, max(args.n))
        for fsync in fsyncs:
            print(f"\nfsync={fsync}" if args.backend == "file" else "")
            for n in args.n:
                print(f" N = {n:,}")
                await _run(args, fsync, base, f"enq_{n}_{fsync}", _enqueue, n)
                for workers in args.workers:
                    tag = f"proc{workers}_{n}_{fsync}"
                    await _run(args, fsync, base, tag, _process, n, workers, args.concurrency)
            await _run(args, fsync, base, f"lat_{fsync}", _latency, args.latency_samples)
            if args.backend == "postgres":  # the backend that wakes other processes
                await _run(args, fsync, base, "latr", _latency_remote, args.latency_samples)
        print(f"\npeak RSS of this process: {_peak_rss_mb():,.0f} MB")
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _enqueue(settings: Settings, env: dict[str, str], n: int) -> None:
    await bench_enqueue(settings, n)


async def _process(
    settings: Settings, env: dict[str, str], n: int, workers: int, concurrency: int
) -> None:
    await bench_process(settings, n, workers, concurrency, env)


async def _latency(settings: Settings, env: dict[str, str], samples: int) -> None:
    await bench_latency(settings, samples)


async def _latency_remote(settings: Settings, env: dict[str, str], samples: int) -> None:
    await bench_latency_remote(settings, env, samples)


async def _memory(settings: Settings, env: dict[str, str], n: int) -> None:
    await memory_per_task(settings, n)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["memory", "file", "postgres"], default="file")
    parser.add_argument(
        "--dsn",
        default=os.environ.get(
            "OMNIQ_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--n", type=int, action="append", help="tasks per run (repeatable)")
    parser.add_argument(
        "--workers", type=int, action="append", help="worker processes (repeatable)"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--fsync", action="append", choices=["always", "interval", "never"])
    parser.add_argument("--latency-samples", type=int, default=200)
    args = parser.parse_args(argv)
    args.n = args.n or [10_000, 100_000]
    args.workers = args.workers or [1]
    if args.backend == "memory" and args.workers != [1]:
        parser.error("the memory backend lives in one process: --workers 1 only")
    return args


if __name__ == "__main__":
    trio.run(main, parse_args())
