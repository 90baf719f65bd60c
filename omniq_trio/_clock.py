"""Wall-clock time for stored timestamps, kept in step with trio's clock.

Every timer in omniq_trio runs on trio's clock; only timestamps that are
stored (created_at, eta, lease_until) are wall-clock times, and they all come
from here. When the running trio clock is a ``trio.testing.MockClock``, wall
time is derived from it, so a schedule of hours runs in milliseconds under
``autojump_clock`` and every eta, backoff and lease lines up exactly.
"""

from __future__ import annotations

import sys
import time
import weakref
from typing import cast

import trio

__all__ = ["Clock"]


class Clock:
    """The source of wall-clock time: ``time.time()``, or virtual under MockClock.

    Under MockClock the virtual wall clock reads ``time.time()`` when first
    read; with ``start`` (seconds since the epoch) it reads ``start`` at the
    MockClock's time 0 instead, so that a test of a cron schedule can run on
    the day of a DST change, and every client made with such a clock shares
    one timeline. Real clocks ignore ``start``.
    """

    def __init__(self, start: float | None = None) -> None:
        # wall time minus trio time, per mock clock, fixed at first use
        self._anchors: weakref.WeakKeyDictionary[trio.abc.Clock, float] = (
            weakref.WeakKeyDictionary()
        )
        self._start = start

    def now(self) -> float:
        """Seconds since the epoch."""
        try:
            clock = trio.lowlevel.current_clock()
        except RuntimeError:  # not inside trio (a worker thread, sync code)
            return time.time()
        # trio.testing is looked up, not imported: importing it pulls in pytest
        # when installed, which doubles the start-up time of every omniq-trio
        # command; and a MockClock in use means trio.testing is imported already.
        testing = sys.modules.get("trio.testing")
        if testing is None or not isinstance(clock, testing.MockClock):
            return time.time()
        clock = cast(trio.abc.Clock, clock)
        anchor = self._anchors.get(clock)
        if anchor is None:
            anchor = time.time() - clock.current_time() if self._start is None else self._start
            self._anchors[clock] = anchor
        return anchor + clock.current_time()

    def trio_deadline(self, wall_time: float) -> float:
        """The trio-clock deadline at which the wall clock reads ``wall_time``."""
        return trio.current_time() + (wall_time - self.now())


#: The clock omniq_trio uses unless one is passed in.
DEFAULT_CLOCK = Clock()
