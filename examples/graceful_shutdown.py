"""Graceful shutdown with signals: a worker process that finishes what it can on SIGTERM.

``omniq_trio.serve`` runs a worker pool until SIGINT or SIGTERM. The first
signal stops it gracefully: no new claims, running tasks get
``shutdown_timeout`` seconds to finish, then are cancelled and go back to the
queue with no attempt charged. A second signal stops it at once.

    python examples/graceful_shutdown.py                    # Ctrl-C (or kill) to stop
    python examples/graceful_shutdown.py --signal-after 0.5 # sends itself SIGTERM
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import trio

import omniq_trio
from omniq_trio import AsyncOmniQ, Settings

SETTINGS = Settings(
    backend="file",
    base_dir=Path("./omniq_data"),
    concurrency=3,
    shutdown_timeout=1.0,  # the grace period running tasks get after the signal
)


async def work(seconds: float) -> str:
    await trio.sleep(seconds)
    return f"worked {seconds}s"


async def signal_self_after(seconds: float) -> None:
    await trio.sleep(seconds)
    print(f"sending SIGTERM to myself after {seconds}s")
    os.kill(os.getpid(), signal.SIGTERM)


async def main(signal_after: float | None) -> None:
    async with AsyncOmniQ(SETTINGS) as omniq:
        ids = {
            "short": await omniq.enqueue(work, 0.2),  # done before the signal
            "medium": await omniq.enqueue(work, 1.0),  # finishes within the grace period
            "long": await omniq.enqueue(work, 60),  # cut off at the deadline, requeued
            "later": await omniq.enqueue(work, 0.1, delay=600),  # not due: never claimed
        }

        async with trio.open_nursery() as nursery:
            # serve installs the signal handlers and returns when the pool has stopped
            pool = await nursery.start(omniq_trio.serve, SETTINGS)
            print(f"worker running (concurrency {pool.concurrency}); stop it with Ctrl-C")
            if signal_after is not None:
                nursery.start_soon(signal_self_after, signal_after)
        # (signal_self_after is done by now: serve only returns after the signal)

        print(f"worker stopped: {pool.statistics().tasks_processed} run(s) finished")
        for name, task_id in ids.items():
            task = await omniq.get_task(task_id)
            print(f"{name}: {task.status.value}, attempts={task.attempts}")


if __name__ == "__main__":
    after = (
        float(sys.argv[sys.argv.index("--signal-after") + 1])
        if "--signal-after" in sys.argv
        else None
    )
    trio.run(main, after)
