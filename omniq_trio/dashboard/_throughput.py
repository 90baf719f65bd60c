"""Throughput over the last minutes, from the store's counts sampled over time.

The store keeps counts, not a history: the dashboard samples the SUCCESS and
FAILED counts (every few seconds, and on every overview read) and files each
increase under the time bucket it was seen in. Purges and manual retries lower
the counts; a decrease counts as nothing rather than as negative work. A
repeating task's runs go back to PENDING and so are not counted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, final

import attrs
import trio

from ..models import TaskStatus

__all__ = ["Bucket", "Throughput"]

_logger = logging.getLogger("omniq_trio.dashboard")

#: Seconds covered by one bar of the chart.
BUCKET_SECONDS: Final = 10.0
#: Bars on the chart: 60 of 10 s are the last ten minutes.
BUCKETS: Final = 60
#: Seconds between the samples taken while nobody reads the overview.
SAMPLE_INTERVAL: Final = 5.0


@attrs.frozen
class Bucket:
    """Tasks that finished in ``[start, start + seconds)``."""

    start: float
    seconds: float
    succeeded: int
    failed: int
    #: whether the dashboard was sampling then (no: the bar is unknown, not zero)
    sampled: bool

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


@final
class Throughput:
    """Finished tasks per time bucket, built from successive count samples."""

    def __init__(self, *, bucket_seconds: float = BUCKET_SECONDS, buckets: int = BUCKETS) -> None:
        self.bucket_seconds = bucket_seconds
        self.buckets = buckets
        self._since: float | None = None
        self._last: tuple[int, int] | None = None
        # bucket number (start // bucket_seconds) -> [succeeded, failed]
        self._counts: dict[int, list[int]] = {}

    @property
    def since(self) -> float | None:
        """When the first sample was taken."""
        return self._since

    def record(self, at: float, counts: Mapping[TaskStatus, int]) -> None:
        """Take a sample of the store's counts, read at wall-clock time ``at``."""
        current = (counts.get(TaskStatus.SUCCESS, 0), counts.get(TaskStatus.FAILED, 0))
        if self._since is None:
            self._since = at
        if self._last is not None:
            succeeded = max(0, current[0] - self._last[0])
            failed = max(0, current[1] - self._last[1])
            if succeeded or failed:
                slot = self._counts.setdefault(self._number(at), [0, 0])
                slot[0] += succeeded
                slot[1] += failed
        self._last = current
        oldest = self._number(at) - self.buckets
        for number in [n for n in self._counts if n <= oldest]:
            del self._counts[number]

    def series(self, now: float) -> list[Bucket]:
        """The last :attr:`buckets` buckets, oldest first, the last one holding ``now``."""
        last = self._number(now)
        since = math.inf if self._since is None else self._since
        out = []
        for number in range(last - self.buckets + 1, last + 1):
            start = number * self.bucket_seconds
            succeeded, failed = self._counts.get(number, (0, 0))
            sampled = start + self.bucket_seconds > since
            out.append(Bucket(start, self.bucket_seconds, succeeded, failed, sampled))
        return out

    def per_minute(self, now: float) -> float | None:
        """Tasks finished per minute over the last minute (``None`` before any sample)."""
        if self._since is None:
            return None
        window = 60.0
        first = self._number(now - window) + 1
        done = sum(sum(c) for n, c in self._counts.items() if first <= n)
        covered = min(window, max(now - self._since, self.bucket_seconds))
        return done * 60.0 / covered

    def _number(self, at: float) -> int:
        return math.floor(at / self.bucket_seconds)

    async def run(
        self,
        read: Callable[[], Awaitable[tuple[float, Mapping[TaskStatus, int]]]],
        *,
        interval: float = SAMPLE_INTERVAL,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Sample ``read()`` (``(at, counts)``) every ``interval`` seconds, until cancelled.

        A failed read is logged and skipped: the pages say what is wrong, and
        the chart goes on once the store answers again.
        """
        task_status.started()
        while True:
            try:
                self.record(*await read())
            except Exception:
                _logger.warning(
                    "throughput sample failed; retrying in %ss", interval, exc_info=True
                )
            await trio.sleep(interval)
