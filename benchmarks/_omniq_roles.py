"""The omniq_trio side of ``benchmarks/compare.py``: one role per process.

    python -m benchmarks._omniq_roles produce --n N [--producers P] [--func F]
    python -m benchmarks._omniq_roles worker
    python -m benchmarks._omniq_roles monitor --n N
    python -m benchmarks._omniq_roles latency --samples S

Settings come from the ``OMNIQ_*`` variables the conductor sets (the file
journal, ``fsync="always"``, concurrency 4, default ``poll_interval``), as
``omniq-trio worker`` would read them.
"""

from __future__ import annotations

import argparse
import time

import trio

import omniq_trio
from omniq_trio import AsyncOmniQ, Settings, TaskStatus

from ._procs import say, wait_for_go
from .tasks import since


async def produce(n: int, producers: int, func: str) -> None:
    """Enqueue ``n`` tasks one at a time, from ``producers`` concurrent trio tasks."""
    async with AsyncOmniQ(Settings.from_env()) as omniq:
        say("ready")
        await trio.to_thread.run_sync(wait_for_go)

        async def producer(count: int) -> None:
            for _ in range(count):
                await omniq.enqueue(func)

        start = time.time()
        async with trio.open_nursery() as nursery:
            for i in range(producers):
                nursery.start_soon(producer, n // producers + (i < n % producers))
        end = time.time()
    say("result", {"n": n, "start": start, "end": end})


async def work() -> None:
    """``omniq-trio worker``: ``serve`` until SIGINT; says when its pool runs."""
    async with trio.open_nursery() as nursery:
        await nursery.start(omniq_trio.serve, Settings.from_env())
        say("ready", {"at": time.time()})


async def monitor(n: int, interval: float) -> None:
    """Hold the store open and look at the counts every ``interval`` until ``n`` succeeded;
    then report when the first of them started and the last finished."""
    async with AsyncOmniQ(Settings.from_env()) as omniq:
        say("ready")
        polls = 0
        while (await omniq.stats()).counts[TaskStatus.SUCCESS] < n:
            polls += 1
            await trio.sleep(interval)
        done = await omniq.list_tasks(TaskStatus.SUCCESS)
    say(
        "result",
        {
            "first_start": min(t.started_at or 0.0 for t in done),
            "last_finish": max(t.finished_at or 0.0 for t in done),
            "polls": polls,
        },
    )


async def latency(samples: int, gap: float) -> None:
    """Enqueue a task every ``gap`` seconds; each reports how long it waited to start."""
    async with AsyncOmniQ(Settings.from_env()) as omniq:
        say("ready")
        await trio.to_thread.run_sync(wait_for_go)
        # one run first: the worker has then looked at the journal and waits
        await omniq.get_result(await omniq.enqueue(since, time.time()), wait=True, timeout=60)
        ids = []
        for _ in range(samples):
            ids.append(await omniq.enqueue(since, time.time()))
            await trio.sleep(gap)
        waited = []
        for task_id in ids:
            result = await omniq.get_result(task_id, wait=True, timeout=60)
            assert result is not None and result.status is TaskStatus.SUCCESS, result
            waited.append(result.value * 1000)
    say("result", {"latencies_ms": waited})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["produce", "worker", "monitor", "latency"])
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--func", default="benchmarks.tasks:noop")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.005)
    args = parser.parse_args()
    if args.role == "produce":
        trio.run(produce, args.n, args.producers, args.func)
    elif args.role == "worker":
        trio.run(work)
    elif args.role == "monitor":
        trio.run(monitor, args.n, args.interval)
    else:
        trio.run(latency, args.samples, args.gap)


if __name__ == "__main__":
    main()
