"""The seed's "Async Workers" example (run-workers.md, Starting Workers), on trio.

``asyncio.create_task(workers.start())`` becomes ``nursery.start_soon``;
``asyncio.wait_for(worker_task, timeout=2.0)`` becomes ``trio.fail_after``
around the end of the nursery. Runs for 3 seconds rather than the seed's 30.

    python examples/async_workers.py
"""

from __future__ import annotations

from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Settings

settings = Settings(backend="file", base_dir=Path("./omniq_data"))


async def main() -> None:
    omniq = AsyncOmniQ(settings)

    # Create workers
    workers = omniq.worker(concurrency=2, poll_interval=1.0)

    with trio.fail_after(3 + 2.0):
        async with trio.open_nursery() as nursery:
            # Start in background
            nursery.start_soon(workers.start)

            # Workers run until stopped
            print("Workers running...")
            await trio.sleep(3)

            # Stop gracefully
            await workers.stop()
    print(f"Workers stopped after {workers.uptime:.1f}s")
    await omniq.aclose()


if __name__ == "__main__":
    trio.run(main)
