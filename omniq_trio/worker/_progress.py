"""The progress writer: stores what running tasks report, throttled, off their path.

A task's ``report_progress`` hands its report here and goes on (no store
round trip, no fsync on its path). The writer stores a task's first report at
once, then at most one per :data:`PROGRESS_INTERVAL`, the latest report
winning; what is still waiting when the run ends is dropped (the run's end
says more than its progress did).
"""

from __future__ import annotations

import math
from typing import Final, final

import trio

from ..errors import LeaseLostError, TaskNotFoundError
from ..logging import worker_logger
from ..models import Progress
from ..store import Store

__all__ = ["PROGRESS_INTERVAL", "ProgressWriter"]

#: Seconds (trio time) between two writes of one task's progress.
PROGRESS_INTERVAL: Final = 1.0


@final
class ProgressWriter:
    """One pool's writer of progress reports (all on its trio thread)."""

    def __init__(self, store: Store, worker_id: str, *, interval: float = PROGRESS_INTERVAL):
        self._store = store
        self._worker_id = worker_id
        self._interval = interval
        #: the latest report not yet written, per task
        self._pending: dict[str, Progress] = {}
        #: when (trio time) each task's progress may next be written
        self._next_at: dict[str, float] = {}
        self._wake = trio.Event()

    def submit(self, task_id: str, progress: Progress) -> None:
        """Take a report of a running task (replacing one not yet written)."""
        self._pending[task_id] = progress
        self._wake.set()

    def forget(self, task_id: str) -> None:
        """The task's run ended: drop what it reported and has not been written."""
        self._pending.pop(task_id, None)
        self._next_at.pop(task_id, None)

    async def run(self) -> None:
        """Write reports as they come, until cancelled."""
        while True:
            now = trio.current_time()
            due = [t for t in self._pending if self._next_at.get(t, -math.inf) <= now]
            for task_id in due:
                progress = self._pending.pop(task_id, None)
                if progress is None:  # its run ended while an earlier write was out
                    continue
                self._next_at[task_id] = trio.current_time() + self._interval
                await self._write(task_id, progress)
            if due:
                continue
            wake_at = min((self._next_at[t] for t in self._pending), default=math.inf)
            self._wake = trio.Event()
            with trio.move_on_at(wake_at):
                await self._wake.wait()

    async def _write(self, task_id: str, progress: Progress) -> None:
        try:
            await self._store.set_progress(task_id, worker_id=self._worker_id, progress=progress)
        except (LeaseLostError, TaskNotFoundError):
            pass  # cancelled or finished meanwhile: its progress no longer matters
        except Exception as exc:
            worker_logger.warning("could not store the progress of task %s: %s", task_id, exc)
