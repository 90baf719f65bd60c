"""Task functions run by worker subprocesses in the crash tests."""

from __future__ import annotations

import os

import trio


async def mark(token: str, runs_file: str, seconds: float = 0.005) -> str:
    """Record that this run happened (one line per run), then take ``seconds``."""
    with open(runs_file, "a") as f:
        f.write(f"{token} {os.getpid()}\n")
    await trio.sleep(seconds)
    return token
