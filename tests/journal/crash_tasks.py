"""Task functions run by worker subprocesses in the crash tests.

Each writes ``token pid`` to the runs file as it starts: that line is the
parent's signal that a worker process runs tasks (and whose run it was).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import trio

#: How often a waiting task looks at the file it waits for (seconds).
LOOK_EVERY = 0.01


def _started(token: str, runs_file: str) -> None:
    with open(runs_file, "a") as f:
        f.write(f"{token} {os.getpid()}\n")


async def _until(condition: Callable[[], bool]) -> None:
    """Look until ``condition`` holds; another process makes it so (no trio.Event reaches)."""
    while True:
        if condition():
            return
        await trio.sleep(LOOK_EVERY)


async def mark(token: str, runs_file: str, seconds: float = 0.005) -> str:
    """Record that this run happened (one line per run), then take ``seconds``."""
    _started(token, runs_file)
    await trio.sleep(seconds)
    return token


async def hold(token: str, runs_file: str, gate: str) -> str:
    """Record the run, then keep running until the file ``gate`` exists: a worker
    killed after this started was surely killed while a task ran."""
    _started(token, runs_file)
    await _until(Path(gate).exists)
    return token


async def meet(token: str, runs_file: str, count: int) -> str:
    """Record the run, then wait until ``count`` runs of ``meet`` have started.
    With more meetings than one worker runs at once, every worker takes part."""
    _started(token, runs_file)
    lines = Path(runs_file).read_text
    await _until(lambda: sum(line.startswith("meet") for line in lines().splitlines()) >= count)
    return token
