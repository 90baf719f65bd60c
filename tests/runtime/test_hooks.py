"""Hooks: what they see of enqueues and runs, every way a run ends, and that a hook
that raises, hangs or lags harms nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from omniq_trio import AsyncOmniQ, ConfigError, TaskStatus
from omniq_trio._hook_delivery import HOOK_BUFFER, HOOK_TIMEOUT, HookDelivery
from omniq_trio.errors import TaskTimeoutError, UnregisteredTaskError, WorkerLostError
from omniq_trio.hooks import HookEvent, RunEnded, RunOutcome, RunStarted, TaskEnqueued
from tests.runtime import monitor_tasks
from tests.runtime.conftest import SETTINGS, running
from tests.runtime.monitor_tasks import mon_fail, mon_sleep

LEASE = 3.0


def _name(kind: type[BaseException]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


class Recorder:
    """A sync hook that keeps what it sees, with the trio time it saw it."""

    def __init__(self) -> None:
        self.events: list[HookEvent] = []
        self.times: list[float] = []

    def __call__(self, event: HookEvent) -> None:
        self.events.append(event)
        self.times.append(trio.current_time())

    def ended(self) -> dict[str, RunEnded]:
        return {e.task.id: e for e in self.events if isinstance(e, RunEnded)}

    def kinds(self, task_id: str) -> list[str]:
        out = []
        for e in self.events:
            if e.task.id != task_id:
                continue
            out.append(e.outcome.value if isinstance(e, RunEnded) else type(e).__name__)
        return out


async def test_enqueues_are_seen_once_stored_and_a_collapsed_call_is_not(
    autojump_clock: trio.abc.Clock,
) -> None:
    seen = Recorder()
    async with AsyncOmniQ(SETTINGS, hooks=[seen]) as omniq:
        first = await omniq.enqueue(mon_sleep, 1.0, unique_key="k")
        again = await omniq.enqueue(mon_sleep, 2.0, unique_key="k")
        assert again == first
        (stored,) = [e for e in seen.events if isinstance(e, TaskEnqueued)]
        assert stored.task == await omniq.get_task(first)
        assert stored.task.status is TaskStatus.PENDING


async def test_a_run_is_seen_to_start_and_end_with_its_wait_and_duration(
    autojump_clock: trio.abc.Clock,
) -> None:
    seen = Recorder()
    async with AsyncOmniQ(SETTINGS, hooks=[seen]) as omniq:
        task_id = await omniq.enqueue(mon_sleep, 1.5)
        t0 = omniq.clock.now()
        await trio.sleep(2.0)  # due, waiting for a worker
        async with running(omniq) as pool:
            await omniq.get_result(task_id, wait=True)
        enqueued, started, ended = seen.events
        assert isinstance(enqueued, TaskEnqueued)
        assert isinstance(started, RunStarted)
        assert isinstance(ended, RunEnded)
        assert (started.task.id, started.worker_id, started.at) == (task_id, pool.worker_id, t0 + 2)
        assert started.task.status is TaskStatus.RUNNING
        assert started.wait == 2.0
        assert (ended.outcome, ended.duration, ended.at, ended.error) == (
            RunOutcome.SUCCESS,
            1.5,
            t0 + 3.5,
            None,
        )
        assert seen.times == [0.0, 2.0, 3.5]


async def test_every_way_a_run_ends(autojump_clock: trio.abc.Clock) -> None:
    seen = Recorder()
    settings = SETTINGS.evolve(lease_duration=LEASE, max_lost_runs=0)
    async with AsyncOmniQ(settings, hooks=[seen]) as omniq:
        ok = await omniq.enqueue(mon_sleep, 1.0)
        failed = await omniq.enqueue(mon_fail)
        retried = await omniq.enqueue(mon_fail, max_retries=1)
        timed_out = await omniq.enqueue(mon_sleep, 10.0, timeout=2.0)
        unregistered = await omniq.enqueue("tests.runtime.monitor_tasks:nowhere")
        now = omniq.clock.now()
        lost = await omniq.enqueue(mon_sleep, 1.0, priority=1)  # claimed first
        (claimed,) = await omniq.store.claim("dead", now=now, limit=1, lease_until=now + 1.0)
        assert claimed.id == lost
        async with running(omniq, concurrency=8) as pool:
            for task_id in (ok, failed, retried, timed_out, unregistered, lost):
                await omniq.get_result(task_id, wait=True)
            # released mid-run, it runs again at once (in this pool, under the same
            # worker id): the first run's outcome is taken, the second's refused
            taken = await omniq.enqueue(mon_sleep, 0.5)
            await trio.sleep(0.25)
            assert await omniq.store.release([taken], worker_id=pool.worker_id) == [taken]
            await trio.sleep(0.5)
            stopped = await omniq.enqueue(mon_sleep, 100.0)
            await trio.sleep(1.0)
            await pool.stop(timeout=0)
        ended = seen.ended()
        assert seen.kinds(ok) == ["TaskEnqueued", "RunStarted", "success"]
        assert seen.kinds(failed) == ["TaskEnqueued", "RunStarted", "failure"]
        error = ended[failed].error
        assert error is not None and error.type == "ValueError"
        assert seen.kinds(retried) == [
            "TaskEnqueued",
            *("RunStarted", "retry"),
            *("RunStarted", "failure"),
        ]
        assert seen.kinds(timed_out) == ["TaskEnqueued", "RunStarted", "timeout"]
        timeout = ended[timed_out]
        assert (timeout.duration, timeout.retry_at) == (2.0, None)
        assert timeout.error is not None and timeout.error.type == _name(TaskTimeoutError)
        assert seen.kinds(unregistered) == ["TaskEnqueued", "RunStarted", "refused"]
        refusal = ended[unregistered].error
        assert refusal is not None and refusal.type == _name(UnregisteredTaskError)
        # the dead worker's run: seen by the pool that reclaimed it (its lease ended
        # at 1.0, seen at the lease keeper's look at 2.0); max_lost_runs=0: FAILED
        assert seen.kinds(lost) == ["TaskEnqueued", "lost"]
        gone = ended[lost]
        assert (gone.worker_id, gone.duration, gone.task.status) == (
            pool.worker_id,
            None,
            TaskStatus.FAILED,
        )
        assert gone.error is not None and gone.error.type == _name(WorkerLostError)
        assert seen.kinds(taken) == [
            "TaskEnqueued",
            *("RunStarted", "RunStarted"),
            *("success", "refused"),
        ]
        assert "no longer holds" in str(ended[taken].error or "")
        assert seen.kinds(stopped) == ["TaskEnqueued", "RunStarted", "released"]
        assert ended[stopped].duration == 1.0
        assert (await omniq.get_task(stopped)).status is TaskStatus.PENDING


async def test_a_retry_says_when_it_runs_again(autojump_clock: trio.abc.Clock) -> None:
    seen = Recorder()
    settings = SETTINGS.evolve(retry_backoff=4.0)
    async with AsyncOmniQ(settings, hooks=[seen]) as omniq:
        task_id = await omniq.enqueue(mon_fail, 1.0, max_retries=1)
        t0 = omniq.clock.now()
        async with running(omniq):
            await omniq.get_result(task_id, wait=True)
    first, second = [e for e in seen.events if isinstance(e, RunEnded)]
    assert (first.outcome, first.at, first.retry_at) == (RunOutcome.RETRY, t0 + 1, t0 + 5)
    assert (second.outcome, second.at, second.retry_at) == (RunOutcome.FAILURE, t0 + 6, None)


async def test_hooks_that_raise_are_logged_and_harm_nothing(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: HookEvent) -> None:
        raise RuntimeError("hook bug")

    async def broken_async(event: HookEvent) -> None:
        await trio.lowlevel.checkpoint()
        raise RuntimeError("async hook bug")

    seen = Recorder()
    async with AsyncOmniQ(SETTINGS, hooks=[broken, broken_async, seen]) as omniq:
        ids = [await omniq.enqueue(mon_sleep, 1.0) for _ in range(3)]
        async with running(omniq) as pool:
            for task_id in ids:
                result = await omniq.get_result(task_id, wait=True)
                assert result is not None and result.status is TaskStatus.SUCCESS
    assert pool.statistics().tasks_succeeded == 3
    assert len(seen.events) == 9  # the hooks after the broken ones saw everything
    failures = [r for r in caplog.records if r.name == "omniq_trio.hooks"]
    assert {r.levelno for r in failures} == {logging.ERROR}
    assert sum("RuntimeError: hook bug" in (r.exc_text or "") for r in failures) == 9
    assert sum("async hook bug" in (r.exc_text or "") for r in failures) == 9


async def test_a_slow_async_hook_does_not_hold_up_tasks_and_gets_its_events_at_stop(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivered: list[tuple[str, float]] = []

    async def slow(event: HookEvent) -> None:
        await trio.sleep(1.0)
        delivered.append((type(event).__name__, trio.current_time()))

    async with AsyncOmniQ(SETTINGS) as omniq:
        ids = [await omniq.enqueue(mon_sleep, 1.0) for _ in range(3)]
        async with trio.open_nursery() as nursery:
            pool = omniq.worker()
            pool.add_hook(slow)
            await nursery.start(pool.run)
            finished = []
            for task_id in ids:
                await omniq.get_result(task_id, wait=True)
                finished.append(trio.current_time())
            assert finished == [1.0, 2.0, 3.0]  # at the pace of the tasks, not the hook
            await pool.stop()
            # the stop waits for the hook to take what was buffered (six events)
            assert trio.current_time() == 6.0
    assert delivered == [
        ("RunStarted", 1.0),
        ("RunEnded", 2.0),
        ("RunStarted", 3.0),
        ("RunEnded", 4.0),
        ("RunStarted", 5.0),
        ("RunEnded", 6.0),
    ]


async def test_a_hung_async_hook_is_cancelled_after_its_timeout(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[float] = []

    async def hung(event: HookEvent) -> None:
        calls.append(trio.current_time())
        await trio.sleep_forever()

    delivery = HookDelivery([hung])
    delivery.emit(TaskEnqueued(monitor_tasks_task()))
    delivery.emit(TaskEnqueued(monitor_tasks_task()))
    await delivery.aclose()  # gives up waiting after a few seconds
    assert calls == [0.0]
    await trio.sleep(2 * HOOK_TIMEOUT)
    assert calls == [0.0, HOOK_TIMEOUT]
    assert delivery.failed == 2
    assert "took over" in caplog.text


async def test_a_full_buffer_drops_events_for_async_hooks_and_counts_them(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[HookEvent] = []
    sync_got: list[HookEvent] = []

    async def blocked(event: HookEvent) -> None:
        got.append(event)
        await trio.sleep(1.0)

    delivery = HookDelivery([blocked, sync_got.append])
    event = TaskEnqueued(monitor_tasks_task())
    for _ in range(HOOK_BUFFER + 10):
        delivery.emit(event)  # the actor has not run yet: the buffer fills
    assert delivery.dropped == 10
    assert len(sync_got) == HOOK_BUFFER + 10  # sync hooks miss nothing
    assert caplog.text.count("async hooks are behind") == 1
    await trio.sleep(HOOK_BUFFER + 1)
    assert len(got) == HOOK_BUFFER
    await delivery.aclose()


async def test_a_task_module_declares_hooks_its_workers_deliver_to(
    autojump_clock: trio.abc.Clock,
) -> None:
    monitor_tasks.seen.clear()
    settings = SETTINGS.evolve(imports=("tests.runtime.monitor_tasks",))
    async with AsyncOmniQ(settings) as omniq:
        task_id = await omniq.enqueue("tests.runtime.monitor_tasks:mon_sleep", 1.0)
        async with running(omniq) as pool:
            await omniq.get_result(task_id, wait=True)
            assert monitor_tasks.module_hook in pool.hooks
    assert [type(e).__name__ for e in monitor_tasks.seen] == ["RunStarted", "RunEnded"]


async def test_hooks_that_are_not_hooks_are_refused(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="callable"):
        AsyncOmniQ(SETTINGS, hooks=["not a hook"])  # type: ignore[list-item]
    omniq = AsyncOmniQ(SETTINGS)
    with pytest.raises(ConfigError, match="callable"):
        omniq.add_hook(42)  # type: ignore[arg-type]
    monkeypatch.setattr(monitor_tasks, "omniq_hooks", monitor_tasks.module_hook)
    settings = SETTINGS.evolve(imports=("tests.runtime.monitor_tasks",))
    async with AsyncOmniQ(settings) as omniq:
        with pytest.raises(ConfigError, match=r"monitor_tasks\.omniq_hooks must be a list"):
            await omniq.worker().run()


def monitor_tasks_task() -> Any:
    from omniq_trio.testing import make_task

    return make_task()
