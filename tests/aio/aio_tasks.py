"""Task functions for the asyncio client's tests (``"tests.aio.aio_tasks:<name>"``)."""

from __future__ import annotations

import threading
from typing import Any

import trio


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


async def nap(value: Any, seconds: float) -> Any:
    """Return ``value`` after ``seconds`` (a task that keeps a worker busy)."""
    await trio.sleep(seconds)
    return value


class Blocker:
    """A task argument whose pickling blocks the thread doing it until released.

    With ``serializer="pickle"``, enqueueing one holds the client's trio thread
    inside ``enqueue`` until the test says so.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __reduce__(self) -> tuple[Any, ...]:
        self.entered.set()
        self.release.wait(30)
        return (str, ("blocked",))
