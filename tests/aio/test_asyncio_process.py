"""An asyncio program enqueues into the file journal; a worker process runs the tasks.

All results arrive, and a ticker on the event loop shows that the loop was
never blocked while the client opened the store, enqueued and waited: a
blocking client would stall it for a whole task run at a time (each task
takes ``NAP`` seconds). The bound on the ticker's gaps is loose on purpose
(a loaded two-core machine deschedules a process now and then): this checks
that nothing blocks, not how fast anything is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from omniq_trio import AsyncioOmniQ, Call, Settings, TaskStatus
from omniq_trio.config import ENV_PREFIX
from tests.conftest import ROOT

#: How long each task runs in the worker: what a blocking wait would stall the loop for.
NAP = 0.3
TASKS = 24
#: The ticker's period, and the longest gap between two ticks that passes.
TICK = 0.005
MAX_GAP = 0.1


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(
        PYTHONPATH=str(ROOT),
        OMNIQ_BACKEND="file",
        OMNIQ_BASE_DIR=str(tmp_path / "data"),
        OMNIQ_CONCURRENCY="8",
        OMNIQ_POLL_INTERVAL="0.05",
        OMNIQ_LOG_LEVEL="WARNING",
        OMNIQ_IMPORTS="tests.aio.aio_tasks",  # the functions the worker may run
    )
    code = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # graceful: its tasks have all finished
    assert proc.wait(timeout=30) == 0


async def ticker(gaps: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(TICK)
        gaps.append(loop.time() - before - TICK)


def test_results_arrive_and_the_loop_never_blocks(
    tmp_path: Path, worker: subprocess.Popen[bytes]
) -> None:
    settings = Settings(backend="file", base_dir=tmp_path / "data", poll_interval=0.05)

    async def main() -> tuple[list[object], list[float]]:
        gaps: list[float] = []
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(gaps, stop))
        async with AsyncioOmniQ(settings) as omniq:
            ids = await omniq.enqueue_many(
                Call("tests.aio.aio_tasks:nap", (i, NAP)) for i in range(TASKS // 2)
            )
            ids += [
                await omniq.enqueue("tests.aio.aio_tasks:nap", i, NAP)
                for i in range(TASKS // 2, TASKS)
            ]
            results = await asyncio.gather(
                *(omniq.get_result(task_id, wait=True, timeout=60) for task_id in ids)
            )
            assert all(r is not None and r.status is TaskStatus.SUCCESS for r in results)
        stop.set()
        await ticking
        return [r.value for r in results if r is not None], gaps

    values, gaps = asyncio.run(main())

    assert values == list(range(TASKS))
    assert len(gaps) > 10 and max(gaps) < MAX_GAP, sorted(gaps)[-5:]
