"""Task functions for the sync wrapper's tests (run in the test process, memory backend)."""

from __future__ import annotations

import threading

import trio

_lock = threading.Lock()
_started: dict[str, threading.Event] = {}


def started(key: str) -> threading.Event:
    """The event :func:`hold` sets when its run with ``key`` has begun."""
    with _lock:
        return _started.setdefault(key, threading.Event())


def add(a: int, b: int) -> int:
    return a + b


async def hold(key: str, seconds: float) -> str:
    """Say it has started, then take ``seconds``."""
    started(key).set()
    await trio.sleep(seconds)
    return key
