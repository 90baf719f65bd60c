"""PostgreSQL with several workers: one queue, three worker processes, nothing run twice.

Starts three worker processes (``omniq_trio.serve``, configured through
``OMNIQ_*`` variables, as a service would be), enqueues 300 tasks from this
process and waits for all of them. Each task returns the pid of the process
that ran it, so the output shows the work spread over the workers. The
workers could as well run on other machines: PostgreSQL coordinates them.

    python examples/postgres_workers.py postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Call, Settings, TaskStatus

HERE = Path(__file__).resolve().parent
SCHEMA = "omniq_example"  # tables live in their own schema
WORKERS = 3
TASKS = 300


def whoami(n: int) -> int:
    """The task: report which worker process ran it."""
    return os.getpid()


def start_workers(dsn: str) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "OMNIQ_BACKEND": "postgres",
        "OMNIQ_DSN": dsn,
        "OMNIQ_POSTGRES_SCHEMA": SCHEMA,
        "OMNIQ_CONCURRENCY": "4",
        "OMNIQ_LOG_LEVEL": "WARNING",
        # the workers run the functions of this module (this file, imported by
        # its module name): tasks name them by path, "postgres_workers:whoami"
        "OMNIQ_IMPORTS": "postgres_workers",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    code = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
    return [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(WORKERS)]


async def main(dsn: str) -> None:
    settings = Settings(backend="postgres", dsn=dsn, postgres_schema=SCHEMA)
    workers = start_workers(dsn)
    try:
        async with AsyncOmniQ(settings) as omniq:
            ids = await omniq.enqueue_many(
                [Call("postgres_workers:whoami", (n,)) for n in range(TASKS)]
            )
            print(f"enqueued {len(ids)} tasks for {WORKERS} worker processes")
            pids: Counter[int] = Counter()
            for task_id in ids:
                result = await omniq.get_result(task_id, wait=True, timeout=60)
                assert result is not None and result.status is TaskStatus.SUCCESS
                pids[result.value] += 1
            print(f"all {sum(pids.values())} tasks succeeded, each run once")
            print(f"worker processes that took part: {len(pids)}")
            await omniq.purge(older_than=0)  # leave the example's schema empty
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)  # a graceful stop
        for worker in workers:
            worker.wait(timeout=30)
    print("workers stopped")


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else os.environ["OMNIQ_TEST_POSTGRES_DSN"])
