"""Quickstart in sync code: the blocking ``OmniQ`` from plain threads, no trio in sight.

Enqueue from the main thread, run a worker pool in a background thread, read
the results, stop the pool. Runs against the file journal in ./omniq_data.

    python examples/quickstart_sync.py
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from omniq_trio import OmniQ, Settings


def resize(image: str, width: int) -> dict[str, object]:
    """A task: any module-level function. Sync tasks run in worker threads."""
    time.sleep(0.1)  # pretend to work
    return {"image": image, "width": width}


def main() -> None:
    settings = Settings(backend="file", base_dir=Path("./omniq_data"))
    with OmniQ(settings) as omniq:  # closes the store on the way out
        ids = [omniq.enqueue(resize, f"photo-{i}.png", width=640) for i in range(4)]
        print(f"enqueued {len(ids)} tasks")

        workers = omniq.worker(concurrency=2)
        thread = threading.Thread(target=workers.start, daemon=True)
        thread.start()

        for task_id in ids:
            result = omniq.get_result(task_id, wait=True, timeout=10)
            print(f"{task_id[:8]}: {result.status.value} -> {result.value}")

        workers.stop(timeout=5.0)  # returns once the pool has stopped
        thread.join(timeout=3.0)
        print(f"workers stopped: {workers.statistics().tasks_succeeded} tasks succeeded")


if __name__ == "__main__":
    main()
