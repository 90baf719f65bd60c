"""Task functions the ``omniq-trio`` tests enqueue and their worker processes run."""

from __future__ import annotations

import trio


def add(a: int, b: int) -> int:
    return a + b


def boom(message: str) -> None:
    raise ValueError(message)


async def slow(marker: str, seconds: float) -> str:
    """Create ``marker`` (the run has started), then take ``seconds``."""
    await trio.Path(marker).touch()
    await trio.sleep(seconds)
    return "slept"


async def hang_first_run(marker: str) -> str:
    """The first run creates ``marker`` and never ends; a later run returns at once."""
    if await trio.Path(marker).exists():
        return "second run"
    await trio.Path(marker).touch()
    await trio.sleep_forever()
    raise AssertionError("unreachable")
