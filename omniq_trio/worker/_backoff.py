"""How long a failed task waits before its next attempt."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

__all__ = ["next_interval_eta", "retry_delay"]


def retry_delay(
    attempts: int,
    *,
    base: float,
    cap: float,
    jitter: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Capped exponential backoff with jitter: ``min(cap, base * 2**attempts)``,
    shortened by a random fraction of at most ``jitter``.

    ``attempts`` is the number of runs that failed before this one, so the
    first retry waits about ``base``.
    """
    # 2**attempts overflows a float past ~1024; the cap has long applied by then
    delay = cap if attempts >= 64 else min(cap, base * 2.0**attempts)
    return delay * (1.0 - jitter * rand())


def next_interval_eta(eta: float, interval: float, now: float) -> float:
    """The first slot of the grid ``eta + k * interval`` (k >= 1) that is after ``now``.

    Slots missed while the task ran long or no worker was up are skipped, not
    run in a burst.
    """
    if now < eta:
        return eta + interval
    return eta + (math.floor((now - eta) / interval) + 1) * interval
