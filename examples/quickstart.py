"""Quickstart: enqueue tasks, run a worker pool in the same trio program, read the results.

Runs against the file journal in ./omniq_data (created on first use).

    python examples/quickstart.py
"""

from __future__ import annotations

from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Settings


async def resize(image: str, width: int) -> dict[str, object]:
    """A task: any module-level function, async or not."""
    await trio.sleep(0.1)  # pretend to work
    return {"image": image, "width": width}


def checksum(text: str) -> int:
    """Sync tasks run in worker threads."""
    return sum(text.encode()) % 65_536


async def main() -> None:
    settings = Settings(backend="file", base_dir=Path("./omniq_data"))
    async with AsyncOmniQ(settings) as omniq:
        ids = [await omniq.enqueue(resize, f"photo-{i}.png", width=640) for i in range(5)]
        ids.append(await omniq.enqueue(checksum, "hello, world"))
        print(f"enqueued {len(ids)} tasks")

        async with trio.open_nursery() as nursery:
            workers = omniq.worker(concurrency=4)
            await nursery.start(workers.run)  # returns once the pool is running
            for task_id in ids:
                result = await omniq.get_result(task_id, wait=True, timeout=10)
                assert result is not None
                print(f"{task_id[:8]}: {result.status.value} -> {result.value}")
            await workers.stop()
        print(f"done: {workers.statistics().tasks_succeeded} tasks succeeded")


if __name__ == "__main__":
    trio.run(main)
