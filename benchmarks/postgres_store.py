"""The PostgreSQL store's verbs alone, without the runtime: enqueue, claim + record, stats.

    python -m benchmarks.postgres_store --dsn postgresql://postgres@127.0.0.1/test
    python -m benchmarks.postgres_store --dsn ... --n 20000 --claimers 4 --finished 1000000

Workload: ``--n`` tasks enqueued in batches of 100; then ``--claimers``
concurrent loops in one process, each claiming ``--limit`` tasks and recording
their success in one call, until none are left (one store object, so their
statements share transactions as a worker pool's do). ``--finished`` rows of
finished tasks are inserted first (and analyzed) so that statements run over a
large table; ``stats`` is timed over it. Figures are printed, never asserted;
the schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import psycopg
import trio

from omniq_trio.store import Outcome
from omniq_trio.store._postgres import PostgresStore
from omniq_trio.testing import T0, make_task


def _fill_finished(dsn: str, schema: str, count: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".tasks (id, func, args, kwargs, status, priority, eta, '
            "max_retries, retry_on_timeout, attempts, created_at, finished_at) "
            f"SELECT 'done' || g, 'f', '[]', '{{}}', 'success', 0, {T0}, 0, false, 1, {T0}, "
            f"{T0} FROM generate_series(1, {count}) g"
        )
        conn.execute(f'VACUUM ANALYZE "{schema}".tasks')


async def run(args: argparse.Namespace) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        async with PostgresStore(args.dsn, schema=schema) as store:
            if args.finished:
                _fill_finished(args.dsn, schema, args.finished)
            tasks = [make_task() for _ in range(args.n)]
            start = time.perf_counter()
            for i in range(0, len(tasks), 100):
                await store.enqueue(tasks[i : i + 100])
            enqueued = time.perf_counter() - start
            print(f"enqueue (batches of 100): {args.n / enqueued:>10,.0f} tasks/s")

            done = 0

            async def claimer(worker: str) -> None:
                nonlocal done
                while claimed := await store.claim(
                    worker, now=T0, limit=args.limit, lease_until=T0 + 30
                ):
                    outcomes = [Outcome.success(t.id, worker, T0 + 1, None) for t in claimed]
                    await store.record(outcomes)
                    done += len(claimed)

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for i in range(args.claimers):
                    nursery.start_soon(claimer, f"w{i}")
            worked = time.perf_counter() - start
            print(
                f"claim + record ({args.claimers} claimers, limit {args.limit}): "
                f"{done / worked:>10,.0f} tasks/s"
            )
            times = []
            for _ in range(5):
                start = time.perf_counter()
                stats = await store.stats(now=T0)
                times.append(time.perf_counter() - start)
            print(
                f"stats over {stats.total:,} tasks: median {statistics.median(times) * 1e3:.2f} ms"
            )
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--finished", type=int, default=0)
    trio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
