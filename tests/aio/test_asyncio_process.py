"""An asyncio program enqueues into the file journal; a worker process runs the tasks.

All results arrive, and the loop is never blocked while the client opens the
store, enqueues and waits. The witness is structural: no blocking wait (an
event, a condition, a queue, a future's result, a sleep) is ever entered on
the loop's thread. A ticker on the loop also shows it kept running, with a
bound far above any scheduling hiccup of a loaded two-core machine but below
what a blocking client would cost (the ``TASKS`` runs of ``NAP`` seconds, in
batches of the worker's concurrency): it checks that nothing blocks, not how
fast anything is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from omniq_trio import AsyncioOmniQ, Call, Settings, TaskStatus
from omniq_trio.config import ENV_PREFIX
from tests.conftest import ROOT

#: How long each task runs in the worker: what a blocking wait would stall the loop for.
NAP = 0.3
TASKS = 24
#: The ticker's period, and the longest gap between two ticks that passes.
TICK = 0.005
MAX_GAP = 3 * NAP


def _blocks(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether this call of a waiting primitive may wait."""
    if name == "Future.result":
        return not args[0].done()
    if name == "sleep":
        return bool(args and args[0] > 0)
    if name == "Queue.get":
        return bool(kwargs.get("block", args[1] if len(args) > 1 else True))
    timeout = kwargs.get("timeout", args[1] if len(args) > 1 else None)
    return timeout is None or timeout > 0


def _starting_a_thread() -> bool:
    """``Thread.start`` waits (microseconds) for the new thread to run, as asyncio's
    own executors do when they start one: not a wait for work."""
    frame: types.FrameType | None = sys._getframe(2)
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_code.co_name == "start" and frame.f_code.co_filename == threading.__file__:
            return True
        frame = frame.f_back
    return False


@contextmanager
def blocking_waits_on(thread_id: int) -> Iterator[list[str]]:
    """Record every wait that may block entered on thread ``thread_id``."""
    entered: list[str] = []
    patched = [
        (threading.Event, "wait", "Event.wait"),
        (threading.Condition, "wait", "Condition.wait"),
        (queue.Queue, "get", "Queue.get"),
        (concurrent.futures.Future, "result", "Future.result"),
        (time, "sleep", "sleep"),
    ]
    originals = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patched]

    def guard(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wait(*args: Any, **kwargs: Any) -> Any:
            if (
                threading.get_ident() == thread_id
                and _blocks(name, args, kwargs)
                and not _starting_a_thread()
            ):
                entered.append(name)
            return original(*args, **kwargs)

        return wait

    for (owner, attr, name), (_, _, original) in zip(patched, originals, strict=True):
        setattr(owner, attr, guard(name, original))
    try:
        yield entered
    finally:
        for owner, attr, original in originals:
            setattr(owner, attr, original)


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

    with blocking_waits_on(threading.get_ident()) as blocking:
        values, gaps = asyncio.run(main())

    assert values == list(range(TASKS))
    assert blocking == [], "the loop's thread waited"
    assert len(gaps) > 10 and max(gaps) < MAX_GAP, sorted(gaps)[-5:]
