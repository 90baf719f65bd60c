"""How long each dashboard page takes to render over a store of N tasks.

    python -m benchmarks.dashboard                        # file journal, 100,000 tasks
    python -m benchmarks.dashboard --tasks 1000000
    python -m benchmarks.dashboard --backend postgres --dsn postgresql://postgres@127.0.0.1/test

Fills a fresh store with ``--tasks`` tasks (a third finished: succeeded, one
in ten of those failed; the rest pending), then requests every page through
the ASGI app in-process (no socket, no browser) and prints the median and
the slowest of ``--repeat`` renders of each. Figures are printed, never
asserted; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import trio

from omniq_trio import AsyncOmniQ, Call, Settings, TaskError
from omniq_trio.dashboard import Access, create_app
from omniq_trio.store import Outcome

from .tasks import noop

BATCH = 5_000
WORKER = "bench:1:dashboard"
TOKEN = "bench"


async def fill(omniq: AsyncOmniQ, n: int) -> tuple[str, str]:
    """``n`` tasks, a third of them finished; the ids of a succeeded and a failed one."""
    store = omniq.store
    done = 0
    ok_id = failed_id = ""
    while done < n:
        size = min(BATCH, n - done)
        ids = await omniq.enqueue_many([Call(noop, (), {}) for _ in range(size)])
        finished = ids[: size // 3]
        now = omniq.clock.now()
        claimed = await store.claim(WORKER, now=now, limit=len(finished), lease_until=now + 600)
        outcomes = []
        for i, task in enumerate(claimed):
            if i % 10 == 9:
                error = TaskError("builtins.ValueError", "bad input", "Traceback ...\n")
                outcomes.append(Outcome.failure(task.id, WORKER, now, error))
                failed_id = task.id
            else:
                outcomes.append(Outcome.success(task.id, WORKER, now))
                ok_id = task.id
        await store.record(outcomes)
        done += size
        print(f"\r  filled {done:,} / {n:,}", end="", flush=True)
    print()
    return ok_id, failed_id


async def time_pages(omniq: AsyncOmniQ, ok_id: str, failed_id: str, repeat: int) -> None:
    access = Access.create(token=TOKEN, no_token=False, bind_host="127.0.0.1", environ={})
    app = create_app(omniq, access=access)
    pages = {
        "overview": "/",
        "overview json": "/api/overview",
        "tasks": "/tasks",
        "tasks, failed": "/tasks?status=failed",
        "tasks, one function": "/tasks?func=benchmarks.tasks:noop",
        "tasks, id prefix": f"/tasks?id={ok_id[:4]}",
        "task (succeeded)": f"/tasks/{ok_id}",
        "task (failed)": f"/tasks/{failed_id}",
        "workers": "/workers",
    }
    headers = {"authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8765", headers=headers
    ) as client:
        print(f"  {'page':<22}{'median':>10}{'slowest':>10}")
        for name, path in pages.items():
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                response = await client.get(path)
                times.append(time.perf_counter() - start)
            if response.status_code != 200:
                print(f"  {name:<22}{response.status_code}: {response.text.strip()[:70]}")
                continue
            median, slowest = statistics.median(times) * 1000, max(times) * 1000
            print(f"  {name:<22}{median:>8.1f}ms{slowest:>8.1f}ms")


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="omniq-bench-dashboard-"))
    if args.backend == "postgres":
        settings = Settings(
            backend="postgres", dsn=args.dsn, postgres_schema=f"bench_dashboard_{os.getpid()}"
        )
    else:
        settings = Settings(backend=args.backend, base_dir=workdir, fsync="never")
    print(f"{args.backend}, {args.tasks:,} tasks")
    try:
        async with AsyncOmniQ(settings) as omniq:
            start = time.perf_counter()
            ok_id, failed_id = await fill(omniq, args.tasks)
            print(f"  filled in {time.perf_counter() - start:.1f}s")
            if args.backend == "postgres":
                # statistics as autovacuum keeps them once it has seen the fill: right
                # after a bulk load the planner would take a million pending tasks
                # for none and sort them all for a listing by function
                import psycopg

                with psycopg.connect(args.dsn, autocommit=True) as conn:
                    conn.execute(f'ANALYZE "{settings.postgres_schema}".tasks')
            if args.backend == "memory":
                await time_pages(omniq, ok_id, failed_id, args.repeat)
                return
        # reopened, as a dashboard process started after the workers would be
        omniq = AsyncOmniQ(settings)
        start = time.perf_counter()
        await omniq.open()
        print(f"  opened in {time.perf_counter() - start:.1f}s")
        async with omniq:
            await time_pages(omniq, ok_id, failed_id, args.repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if args.backend == "postgres":
            import psycopg

            with psycopg.connect(args.dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{settings.postgres_schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--backend", choices=["memory", "file", "postgres"], default="file")
    parser.add_argument(
        "--dsn",
        default=os.environ.get(
            "OMNIQ_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--repeat", type=int, default=5, help="renders of each page")
    trio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
