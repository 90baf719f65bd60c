"""``SyncThreads``: the long-lived threads sync tasks run in.

The pool-level behaviour (timeouts, stop deadlines, the concurrency bound as
users see them) is tested with real pools in test_retries, test_stop and
test_concurrency; these tests hold the thread runner to the same promises directly.
"""

from __future__ import annotations

import contextvars
import threading
from functools import partial

import pytest
import trio
import trio.testing

from omniq_trio import AsyncOmniQ, TaskStatus
from omniq_trio.worker._threads import SyncThreads
from tests.runtime.conftest import SETTINGS, running

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def square(i: int) -> tuple[int, int]:
    """``i * i``, and the thread that worked it out."""
    return i * i, threading.get_ident()


class Gate:
    """A thread blocks in :meth:`block` until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.thread: threading.Thread | None = None

    def block(self) -> str:
        self.thread = threading.current_thread()
        self.entered.set()
        assert self.opened.wait(timeout=60)
        return "late"


async def test_values_and_context_reach_the_caller(autojump_clock: trio.abc.Clock) -> None:
    threads, limiter = SyncThreads(), trio.CapacityLimiter(2)
    VAR.set("caller")

    def read_and_set() -> str:
        seen = VAR.get()
        VAR.set("thread")  # a copy of the caller's context: the caller keeps its value
        return seen

    assert await threads.run(read_and_set, slot=limiter) == "caller"
    assert VAR.get() == "caller"
    assert threading.current_thread() is threading.main_thread()
    assert await threads.run(threading.get_ident, slot=limiter) != threading.get_ident()


def read_var() -> list[str]:
    """A sync task: the value of VAR it sees, and the thread it runs in."""
    return [VAR.get(), threading.current_thread().name]


async def test_a_sync_task_sees_the_context_of_its_executor(
    autojump_clock: trio.abc.Clock,
) -> None:
    VAR.set("set before the pool started")  # executors inherit it, and hand it on
    async with AsyncOmniQ(SETTINGS.evolve(sync_tasks="thread")) as omniq:
        task_id = await omniq.enqueue(read_var)
        async with running(omniq):
            result = await omniq.get_result(task_id, wait=True)
    assert result is not None and result.status is TaskStatus.SUCCESS
    assert result.value == ["set before the pool started", "omniq-trio sync tasks"]


async def test_an_exception_in_the_call_reaches_the_caller(autojump_clock: trio.abc.Clock) -> None:
    threads, limiter = SyncThreads(), trio.CapacityLimiter(1)

    def boom() -> None:
        raise ValueError("boom")

    def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(ValueError, match="boom"):
        await threads.run(boom, slot=limiter)
    with pytest.raises(SystemExit):
        await threads.run(leave, slot=limiter)
    # the lane survives its calls' exceptions, and the slot came back each time
    assert await threads.run(lambda: 7, slot=limiter) == 7
    assert limiter.borrowed_tokens == 0


async def test_many_calls_share_at_most_concurrency_threads(
    autojump_clock: trio.abc.Clock,
) -> None:
    threads, limiter = SyncThreads(), trio.CapacityLimiter(4)
    results: dict[int, tuple[int, int]] = {}

    async def caller(first: int) -> None:
        for i in range(first, 400, 8):
            results[i] = await threads.run(partial(square, i), slot=limiter)

    async with trio.open_nursery() as nursery:
        for first in range(8):
            nursery.start_soon(caller, first)
    assert {i: square for i, (square, _) in results.items()} == {i: i * i for i in range(400)}
    assert len({ident for _, ident in results.values()}) <= 4
    assert limiter.borrowed_tokens == 0


async def test_no_more_calls_run_at_once_than_the_slot_allows(
    autojump_clock: trio.abc.Clock,
) -> None:
    threads, limiter = SyncThreads(), trio.CapacityLimiter(3)
    # each group of three completes only if three run at once
    barrier = threading.Barrier(3)
    lock = threading.Lock()
    running = peak = 0

    def meet() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            barrier.wait(timeout=30)
        finally:
            with lock:
                running -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(9):
            nursery.start_soon(lambda: threads.run(meet, slot=limiter))
    assert peak == 3


async def test_a_timed_out_call_keeps_its_slot_until_its_thread_returns(
    autojump_clock: trio.abc.Clock,
) -> None:
    threads, limiter, gate = SyncThreads(), trio.CapacityLimiter(2), Gate()
    with trio.move_on_after(5) as scope:
        await threads.run(gate.block, slot=limiter)
    assert scope.cancelled_caught
    assert trio.current_time() == 5.0
    # the caller moved on; the thread has not, and holds its slot
    assert limiter.borrowed_tokens == 1
    # the other slot runs calls meanwhile, in another thread
    assert await threads.run(lambda: "next", slot=limiter) == "next"
    assert limiter.borrowed_tokens == 1
    gate.opened.set()
    # both slots free up once the stuck thread returns (its result dropped)
    await limiter.acquire_on_behalf_of("one")
    await limiter.acquire_on_behalf_of("two")
    assert set(limiter.statistics().borrowers) == {"one", "two"}


def test_a_thread_that_never_returns_does_not_hold_up_the_end_of_the_run() -> None:
    threads, gate = SyncThreads(), Gate()

    async def main() -> None:
        limiter = trio.CapacityLimiter(1)
        # the stop deadline: the caller is cancelled while the call runs
        with trio.move_on_after(3.0):
            await threads.run(gate.block, slot=limiter)
        assert trio.current_time() == 3.0
        assert limiter.borrowed_tokens == 1

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # the run is over; the thread ends once its call does, with nobody to tell
    assert gate.entered.wait(timeout=60)
    gate.opened.set()
    assert gate.thread is not None
    gate.thread.join(timeout=60)
    assert not gate.thread.is_alive()


async def test_a_cancelled_wait_for_a_slot_runs_nothing(autojump_clock: trio.abc.Clock) -> None:
    threads, limiter, gate = SyncThreads(), trio.CapacityLimiter(1), Gate()
    calls: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: threads.run(gate.block, slot=limiter))
        await trio.to_thread.run_sync(gate.entered.wait, 60)
        with trio.move_on_after(1.0):
            await threads.run(lambda: calls.append("ran"), slot=limiter)
        gate.opened.set()
    assert calls == []
    assert limiter.borrowed_tokens == 0
