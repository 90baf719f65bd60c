"""Credits: how many tasks a pool may claim now, in all and from each of its queues.

A pool has one credit per executor; the poller takes the free ones before it
claims and an executor gives its credit back when its run ends, so a pool
never holds more claimed tasks than its concurrency. A pool given per-queue
caps (``queues={"emails": 2, "default": 4}``) also counts its running tasks
per capped queue, and asks the store for at most the room each queue has
left: it never runs more than a cap of that queue's tasks at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import attrs
import trio
from trio_util import AsyncValue

from ..models import Task

__all__ = ["Budget", "Credits"]


@attrs.frozen
class Budget:
    """What the poller may claim: ``held`` tasks in all, at most ``queues[name]`` from
    each queue named (``None``: from any queue)."""

    held: int
    queues: dict[str, int] | None
    #: Some queue of the pool is left out because it is at its cap: when a run
    #: of it ends (:meth:`Credits.room_version` moves) there may be work to claim.
    capped: bool = False


class Credits:
    """Free run slots of a pool, and the room left under each queue's cap."""

    def __init__(self, concurrency: int, queues: Mapping[str, int | None] | None) -> None:
        self._free = concurrency
        #: None: every queue; else the queues claimed from, with their caps
        self._queues = None if queues is None else dict(queues)
        self._running: Counter[str] = Counter()
        # moves whenever a credit comes back
        self._version = AsyncValue(0)

    @property
    def room_version(self) -> int:
        """A counter that moves whenever a run ends (a credit or a queue's room frees)."""
        return self._version.value  # type: ignore[no-any-return]

    async def take(self) -> Budget:
        """Wait until a task can be claimed, then take every free credit. A checkpoint."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._free:
                budget = self._budget(self._free)
                if budget.queues is None or budget.queues:
                    self._free = 0
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return budget
            await self.wait_for_room(self.room_version)

    async def wait_for_room(self, seen: int) -> None:
        """Return once :attr:`room_version` has moved from ``seen``."""
        await self._version.wait_value(lambda version: version != seen)

    def give_back(self, count: int) -> None:
        """Return credits taken but not used (fewer tasks claimed than held). Only the
        poller takes credits, so no one waits for these."""
        self._free += count

    def started(self, tasks: list[Task]) -> None:
        """Count claimed tasks against their queues' caps."""
        queues = self._queues
        if queues is None:
            return
        for task in tasks:
            if queues.get(task.queue) is not None:
                self._running[task.queue] += 1

    def release(self, task: Task) -> None:
        """A run of ``task`` ended: its credit, and its room in its queue, are free again."""
        self._free += 1
        queues = self._queues
        if queues is not None and queues.get(task.queue) is not None:
            self._running[task.queue] -= 1
        self._version.value += 1

    def _budget(self, held: int) -> Budget:
        queues = self._queues
        if queues is None:
            return Budget(held, None)
        budgets: dict[str, int] = {}
        capped = False
        for name, cap in queues.items():
            room = held if cap is None else min(held, cap - self._running[name])
            if room > 0:
                budgets[name] = room
            else:
                capped = True
        return Budget(held, budgets, capped)
