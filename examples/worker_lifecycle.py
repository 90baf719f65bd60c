"""The seed's "Complete Example" (run-workers.md, Worker Lifecycle), on trio.

Enqueues ten tasks on the file journal, starts a pool of four, runs until
SIGINT or SIGTERM, stops gracefully and reports the results. ``--run-for S``
sends itself the shutdown signal after S seconds, for a run that ends alone.

    python examples/worker_lifecycle.py            # Ctrl-C to stop
    python examples/worker_lifecycle.py --run-for 2
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ
from omniq_trio.config import Settings


def process_task(data: str) -> dict[str, str]:
    """Example task function."""
    print(f"Processing: {data}")
    return {"status": "completed", "data": data}


async def main(run_for: float | None = None) -> None:
    # Initialize OmniQ
    settings = Settings(backend="file", base_dir=Path("./omniq_data"))
    omniq = AsyncOmniQ(settings)

    # Create worker pool
    workers = omniq.worker(concurrency=4, poll_interval=1.0)

    # Setup shutdown handling
    shutdown_event = trio.Event()

    async def on_signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for _ in signals:
                print("\nShutdown signal received...")
                shutdown_event.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(on_signals)
        if run_for is not None:
            nursery.start_soon(_signal_self_after, run_for)

        # Enqueue some work
        task_ids = []
        for i in range(10):
            task_id = await omniq.enqueue(process_task, f"item-{i}")
            task_ids.append(task_id)

        print(f"Enqueued {len(task_ids)} tasks")

        # Start workers
        async with trio.open_nursery() as workers_nursery:
            workers_nursery.start_soon(workers.start)
            print("Workers started (concurrency=4)")

            # Run until shutdown
            await shutdown_event.wait()

            # Graceful shutdown
            print("\nStopping workers...")
            with trio.fail_after(5.0):
                await workers.stop()

        print("Workers stopped")
        nursery.cancel_scope.cancel()

    # Check results
    results = []
    for task_id in task_ids:
        result = await omniq.get_result(task_id)
        if result:
            results.append(result)

    print(f"\nCompleted {len(results)} tasks")
    await omniq.aclose()


async def _signal_self_after(seconds: float) -> None:
    await trio.sleep(seconds)
    signal.raise_signal(signal.SIGINT)


if __name__ == "__main__":
    run_for = float(sys.argv[sys.argv.index("--run-for") + 1]) if "--run-for" in sys.argv else None
    trio.run(main, run_for)
