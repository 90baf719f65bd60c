"""What a store knows beside its tasks: queue controls, cron schedules, live workers.

Part of the task index (``_index.py``), changed by its events like the tasks
are, so the journal writes it down and replays it the same way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import attrs

from ..models import RateLimit, ScheduleInfo, WorkerInfo
from ._events import (
    Event,
    QueueLimited,
    QueuePaused,
    ScheduleFired,
    SchedulesRecorded,
    WorkerSeen,
)
from ._rules import starts_allowed

__all__ = ["Controls", "QueueControl"]


@attrs.define(eq=False)
class QueueControl:
    """One queue's pause switch and rate limit, with the starts the limit counts."""

    paused: bool = False
    limit: RateLimit | None = None
    #: Start times of its latest claims (at most ``limit.max_starts``), oldest first.
    starts: deque[float] = attrs.field(factory=deque)

    def allowed(self, now: float) -> int | None:
        """How many may start at ``now`` (``None``: no limit); 0 when paused."""
        if self.paused:
            return 0
        if self.limit is None:
            return None
        return starts_allowed(self.limit, self.starts, now)

    def free_at(self) -> float | None:
        """When the rate limit next lets one start, if it is full."""
        if self.limit is None or len(self.starts) < self.limit.max_starts:
            return None
        return self.starts[-self.limit.max_starts] + self.limit.per

    def started(self, at: float, count: int) -> None:
        if self.limit is None:
            return
        self.starts.extend([at] * count)
        while len(self.starts) > self.limit.max_starts:
            self.starts.popleft()

    @property
    def idle(self) -> bool:
        """Holds nothing worth keeping."""
        return not self.paused and self.limit is None


@attrs.define(eq=False)
class Controls:
    """Queue controls by name, schedules by name (with their last fired slots), workers by id."""

    queues: dict[str, QueueControl] = attrs.field(factory=dict)
    schedules: dict[str, ScheduleInfo] = attrs.field(factory=dict)
    #: The latest slot fired per schedule name (kept apart from the definitions,
    #: which pools overwrite, so that a slot is never fired twice).
    fired: dict[str, float] = attrs.field(factory=dict)
    workers: dict[str, WorkerInfo] = attrs.field(factory=dict)

    def queue(self, name: str) -> QueueControl | None:
        return self.queues.get(name)

    def is_paused(self, name: str) -> bool:
        control = self.queues.get(name)
        return control is not None and control.paused

    def pause(self, name: str, paused: bool) -> None:
        self._control(name).paused = paused
        self._drop_if_idle(name)

    def set_limit(self, name: str, limit: RateLimit | None, starts: Iterable[float] = ()) -> None:
        control = self._control(name)
        control.limit = limit
        control.starts.extend(starts)
        if limit is None:
            control.starts.clear()
        else:
            while len(control.starts) > limit.max_starts:
                control.starts.popleft()
        self._drop_if_idle(name)

    def snapshot(self) -> list[Event]:
        """Events that rebuild these controls from nothing (a compacted journal)."""
        events: list[Event] = []
        for name, control in self.queues.items():
            if control.paused:
                events.append(QueuePaused(name, True))
            if control.limit is not None:
                events.append(QueueLimited(name, control.limit, tuple(control.starts)))
        if self.schedules:
            events.append(SchedulesRecorded(tuple(self.schedules.values())))
        events.extend(ScheduleFired(name, slot) for name, slot in self.fired.items())
        events.extend(WorkerSeen(info) for info in self.workers.values())
        return events

    def started(self, starts: Iterable[tuple[str, int]], at: float) -> None:
        """Tasks of these queues (name, how many) started at ``at``."""
        for name, count in starts:
            control = self.queues.get(name)
            if control is not None:
                control.started(at, count)

    def last_fired(self, name: str) -> float | None:
        return self.fired.get(name)

    def fire(self, name: str, slot: float) -> None:
        self.fired[name] = max(slot, self.fired.get(name, slot))

    def record_schedules(self, schedules: Iterable[ScheduleInfo]) -> None:
        for info in schedules:
            if info.last_slot is not None:
                self.fire(info.name, info.last_slot)
            self.schedules[info.name] = info

    def schedule_list(self) -> list[ScheduleInfo]:
        return [
            attrs.evolve(info, last_slot=self.fired.get(info.name, info.last_slot))
            for _, info in sorted(self.schedules.items())
        ]

    def live_workers(self, now: float) -> list[WorkerInfo]:
        live = [w for w in self.workers.values() if w.expires_at >= now]
        return sorted(live, key=lambda w: (w.started_at, w.id))

    def _control(self, name: str) -> QueueControl:
        control = self.queues.get(name)
        if control is None:
            control = self.queues[name] = QueueControl()
        return control

    def _drop_if_idle(self, name: str) -> None:
        if self.queues[name].idle:
            del self.queues[name]
