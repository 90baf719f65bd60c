"""Task functions of the task-control tests (cancel, context, progress), ``ctl_*``.

They report to :data:`LOG` (reset per test by :func:`fresh_log`); sync ones
may run in worker threads, so it is guarded by a lock, and they wait on
threading events the test opens.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import attrs
import trio

from omniq_trio import current_task


@attrs.define(eq=False)
class ControlLog:
    """What the ``ctl_*`` tasks did, in order: ``(label, what)``."""

    events: list[tuple[str, str]] = attrs.Factory(list)
    #: the context fields each run saw, in order
    contexts: list[dict[str, Any]] = attrs.Factory(list)
    #: opened by a test to let sync tasks blocked in ``ctl_sync_gate`` go on
    gate: threading.Event = attrs.Factory(threading.Event)
    _lock: threading.Lock = attrs.Factory(threading.Lock)

    def add(self, label: str, what: str) -> None:
        with self._lock:
            self.events.append((label, what))

    def saw(self, label: str, what: str) -> bool:
        with self._lock:
            return (label, what) in self.events


LOG = ControlLog()


def fresh_log() -> ControlLog:
    """A new log for the runs that start from now on (one per test)."""
    global LOG
    LOG.gate.set()  # threads of the earlier test may finish
    LOG = ControlLog()
    return LOG


async def ctl_wait(label: str, seconds: float = 1000.0) -> str:
    """Sleep ``seconds``, noting its start, and its ``finally`` however it ends."""
    log = LOG
    log.add(label, "start")
    try:
        await trio.sleep(seconds)
        log.add(label, "end")
        return label
    finally:
        log.add(label, "finally")


def ctl_sync_gate(label: str) -> str:
    """Block its thread until the test opens the gate; then note whether it was cancelled."""
    log = LOG
    ctx = current_task()
    log.add(label, "start")
    assert log.gate.wait(timeout=60)
    log.add(label, "cancelled" if ctx.cancelled else "not cancelled")
    return label


def _fields() -> dict[str, Any]:
    ctx = current_task()
    return {
        "id": ctx.id,
        "func": ctx.func,
        "queue": ctx.queue,
        "attempt": ctx.attempt,
        "max_retries": ctx.max_retries,
        "created_at": ctx.created_at,
        "eta": ctx.eta,
        "worker_id": ctx.worker_id,
        "cancelled": ctx.cancelled,
    }


async def ctl_context(failures: int) -> str:
    """Note its context; fail on the first ``failures`` attempts."""
    fields = _fields()
    LOG.contexts.append(fields)
    if fields["attempt"] <= failures:
        raise ValueError(f"attempt {fields['attempt']} fails")
    return "ok"


async def ctl_context_in_child() -> int:
    """Read the context from a child task of its own nursery."""
    seen: list[int] = []

    async def child() -> None:
        seen.append(current_task().attempt)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)
    return seen[0]


def ctl_sync_context() -> dict[str, Any]:
    """Note its context from its thread and enqueue a follow-up from there."""
    fields = _fields()
    LOG.contexts.append(fields)
    follow_up = current_task().enqueue_sync(ctl_child, "from-sync")
    return {"attempt": fields["attempt"], "follow_up": follow_up}


async def ctl_enqueue_follow_up() -> str:
    """Enqueue a follow-up task; return its id."""
    return await current_task().enqueue(ctl_child, "from-async", delay=5)


async def ctl_fail_once(label: str) -> str:
    """Fail the first time it runs for ``label``."""
    first = not LOG.saw(label, "ran")
    LOG.add(label, "ran")
    if first:
        raise ValueError(f"first run of {label}")
    return label


def ctl_child(label: str) -> str:
    LOG.add(label, "child")
    return label


async def ctl_progress(label: str) -> str:
    """Report 0.25, then 0.5 and 0.75 a tenth of a second later, 1.0 half a second
    after the first; then wait."""
    ctx = current_task()
    await ctx.report_progress(0.25, "first")
    await trio.sleep(0.1)
    await ctx.report_progress(0.5)
    await ctx.report_progress(0.75, "third")
    LOG.add(label, "reported")
    await trio.sleep(0.4)
    await ctx.report_progress(1.0, "done")
    await trio.sleep(10)
    return label


def ctl_sync_progress(label: str) -> str:
    """Report from its thread, then wait for the gate."""
    ctx = current_task()
    ctx.report_progress_sync(0.5, "half")
    LOG.add(label, "reported")
    assert LOG.gate.wait(timeout=60)
    return label


async def ctl_bad_progress(fraction: Any) -> None:
    """Report a bad fraction (the run fails with ProgressError); ``"NaN!"`` is NaN."""
    await current_task().report_progress(math.nan if fraction == "NaN!" else fraction)
