"""Retries and timeouts: what a flaky, a broken and a slow task end up as.

Backoff is shortened to tenths of a second so the whole run takes about two
seconds (the defaults wait 1 s, 2 s, 4 s ... up to 300 s between attempts).

    python examples/retries_and_timeouts.py
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Settings

#: runs of each task so far, by label (the worker runs in this process)
RUNS: Counter[str] = Counter()


async def flaky(label: str, failures: int) -> str:
    """Fails ``failures`` times, then works: a network call on a bad day."""
    RUNS[label] += 1
    if RUNS[label] <= failures:
        raise ConnectionError(f"{label}: connection reset (run {RUNS[label]})")
    return f"{label}: ok on run {RUNS[label]}"


async def slow(label: str, seconds: list[float]) -> str:
    """Takes ``seconds[n]`` on its n-th run."""
    RUNS[label] += 1
    await trio.sleep(seconds[min(RUNS[label], len(seconds)) - 1])
    return f"{label}: finished on run {RUNS[label]}"


async def main() -> None:
    settings = Settings(
        backend="file",
        base_dir=Path("./omniq_data"),
        retry_backoff=0.1,  # first retry after 0.1 s, then 0.2 s, 0.4 s ...
        retry_backoff_max=1.0,
        retry_jitter=0,  # exact waits, for a predictable demo
    )
    async with AsyncOmniQ(settings) as omniq:
        ids = {
            # max_retries=3: up to 4 runs; this one needs 3
            "flaky": await omniq.enqueue(flaky, "flaky", failures=2, max_retries=3),
            # never works: FAILED after 1 + 2 runs, with the last error stored
            "broken": await omniq.enqueue(flaky, "broken", failures=99, max_retries=2),
            # a timeout fails the task without a retry...
            "slow": await omniq.enqueue(slow, "slow", [5.0], timeout=0.3, max_retries=2),
            # ...unless it asks for one
            "slow-then-fast": await omniq.enqueue(
                slow, "slow-then-fast", [5.0, 0.1], timeout=0.3, max_retries=1,
                retry_on_timeout=True,
            ),
        }  # fmt: skip
        async with trio.open_nursery() as nursery:
            workers = omniq.worker(concurrency=4)
            await nursery.start(workers.run)
            for label, task_id in ids.items():
                result = await omniq.get_result(task_id, wait=True, timeout=10)
                assert result is not None
                outcome = result.value if result.ok else result.error
                print(f"{label}: {result.status.value} after {result.attempts} run(s): {outcome}")

            # A FAILED task can be run again by hand, with a fresh retry budget
            # (its old result is dropped, so get_result waits for the new one).
            await omniq.retry(ids["broken"])
            result = await omniq.get_result(ids["broken"], wait=True, timeout=10)
            assert result is not None
            print(f"broken, retried by hand: {result.status.value} after {RUNS['broken']} runs")
            await workers.stop()


if __name__ == "__main__":
    trio.run(main)
