"""Scheduling: run later (delay, eta), run again and again (interval), run first (priority).

Times are shortened to fractions of a second; the whole run takes about one
second. Each task prints when it runs, relative to the start.

    python examples/scheduling.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Call, Settings

_started = 0.0


async def say(what: str) -> str:
    print(f"  +{trio.current_time() - _started:.1f}s  {what}")
    return what


async def main() -> None:
    global _started
    _started = trio.current_time()
    settings = Settings(backend="file", base_dir=Path("./omniq_data"))
    async with AsyncOmniQ(settings) as omniq:
        # run once, later: a delay in seconds (or a timedelta) ...
        await omniq.enqueue(say, "delay=0.5", delay=0.5)
        # ... or at an aware datetime (naive ones are refused)
        eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.75)
        await omniq.enqueue(say, "eta=now+0.75s", eta=eta)
        # run every 0.25 s from now on, until cancelled
        ticker = await omniq.enqueue(say, "interval=0.25", interval=0.25)
        # among tasks due at once, higher priority runs first (then FIFO);
        # enqueue_many stores them in one write
        await omniq.enqueue_many(
            [Call(say, (f"priority={p}",), priority=p, delay=0.1) for p in (0, 5, 1)]
        )

        async with trio.open_nursery() as nursery:
            workers = omniq.worker(concurrency=1)  # one at a time: the order shows
            await nursery.start(workers.run)
            await trio.sleep(0.9)
            print(f"cancel the interval task: {await omniq.cancel(ticker)}")
            await workers.stop()

        task = await omniq.get_task(ticker)
        print(f"the interval task is {task.status.value}")


if __name__ == "__main__":
    trio.run(main)
