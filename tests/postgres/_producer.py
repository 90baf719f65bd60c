"""A producer process for the PostgreSQL process tests.

``python -m tests.postgres._producer FIRST COUNT RUNS_DIR`` enqueues
``tests.tasks:pg_log_run(n, RUNS_DIR)`` for n in FIRST .. FIRST+COUNT-1, in
small batches, with settings from ``OMNIQ_*`` variables.
"""

from __future__ import annotations

import sys

import trio

from omniq_trio import AsyncOmniQ, Call

BATCH = 50


async def main(first: int, count: int, runs_dir: str) -> None:
    async with AsyncOmniQ() as omniq:
        for start in range(first, first + count, BATCH):
            stop = min(start + BATCH, first + count)
            await omniq.enqueue_many(
                [Call("tests.tasks:pg_log_run", (n, runs_dir)) for n in range(start, stop)]
            )


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
