"""Task control, in one process on the memory store and the file journal: cancelling
running tasks, the task context, progress, retrying every failed task.

(PostgreSQL runs the same scenarios in tests/postgres/test_control.py, on real time.)
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from omniq_trio import (
    AsyncOmniQ,
    NoTaskContextError,
    Progress,
    ProgressError,
    TaskNotFoundError,
    TaskStatus,
    current_task,
)
from omniq_trio.hooks import HookEvent, RunEnded, RunOutcome
from omniq_trio.store import Change
from tests.runtime import control_tasks as ct
from tests.runtime.conftest import SETTINGS, running


@pytest.fixture(autouse=True)
def log() -> Iterator[ct.ControlLog]:
    log = ct.fresh_log()
    yield log
    log.gate.set()


@pytest.fixture(params=["memory", "file"])
async def omniq(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncOmniQ]:
    settings = SETTINGS
    if request.param == "file":
        settings = SETTINGS.evolve(backend="file", base_dir=tmp_path / "journal", fsync="never")
    async with AsyncOmniQ(settings) as client:
        yield client


async def until(condition: Callable[[], bool | Awaitable[bool]], *, limit: float = 100.0) -> None:
    """Wait (virtual time) until ``condition()`` (or what it returns, awaited) holds."""
    with trio.fail_after(limit):
        while True:
            holds = condition()
            if not isinstance(holds, bool):
                holds = await holds
            if holds:
                return
            await trio.sleep(0.01)


# ---------------------------------------------------------------------- cancel


async def test_cancelling_a_running_async_task_interrupts_it(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, log: ct.ControlLog
) -> None:
    events: list[HookEvent] = []
    omniq.add_hook(events.append)
    doomed = await omniq.enqueue(ct.ctl_wait, "doomed")
    after = await omniq.enqueue(ct.ctl_wait, "after", 1.0)
    async with running(omniq, concurrency=1) as pool:
        await until(lambda: log.saw("doomed", "start"))
        cancelled_at = trio.current_time()
        assert await omniq.cancel(doomed)
        # its finally ran, and the one executor took the next task: long before
        # the 1000 s the first would have slept
        result = await omniq.get_result(after, wait=True)
        assert result is not None and result.value == "after"
        assert trio.current_time() < cancelled_at + 10
    assert log.events[:3] == [("doomed", "start"), ("doomed", "finally"), ("after", "start")]
    assert ("doomed", "end") not in log.events
    task = await omniq.get_task(doomed)
    assert (task.status, task.attempts, task.error) == (TaskStatus.CANCELLED, 0, None)
    doomed_result = await omniq.get_result(doomed)
    assert doomed_result is not None
    assert (doomed_result.status, doomed_result.value) == (TaskStatus.CANCELLED, None)
    stats = pool.statistics()
    assert (stats.tasks_cancelled, stats.tasks_processed, stats.tasks_released) == (1, 1, 0)
    ended = [e for e in events if isinstance(e, RunEnded) and e.task.id == doomed]
    assert [e.outcome for e in ended] == [RunOutcome.CANCELLED]


async def test_in_process_cancel_is_immediate(autojump_clock: trio.abc.Clock) -> None:
    async with AsyncOmniQ(SETTINGS) as omniq:
        doomed = await omniq.enqueue(ct.ctl_wait, "doomed")
        async with running(omniq):
            await until(lambda: ct.LOG.saw("doomed", "start"))
            start = trio.current_time()
            await omniq.cancel(doomed)
            await trio.testing.wait_all_tasks_blocked()
            assert ct.LOG.saw("doomed", "finally")
            assert trio.current_time() == start  # no timer was waited for


async def test_a_stop_still_releases_rather_than_cancels(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, log: ct.ControlLog
) -> None:
    task_id = await omniq.enqueue(ct.ctl_wait, "stopped")
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await until(lambda: log.saw("stopped", "start"))
        await pool.stop(timeout=1)
    assert log.saw("stopped", "finally")
    task = await omniq.get_task(task_id)
    assert (task.status, task.attempts, task.lost_runs) == (TaskStatus.PENDING, 0, 0)
    stats = pool.statistics()
    assert (stats.tasks_released, stats.tasks_cancelled) == (1, 0)


async def test_the_lease_renewal_cancels_when_no_notification_came(
    autojump_clock: trio.abc.Clock, log: ct.ControlLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(lease_duration=30.0)) as omniq:
        store = omniq.store
        notify_changes = store._notify_changes

        def no_cancel_notifications(changes: frozenset[Change] | set[Change]) -> None:
            # as if the cancel came from a process that cannot wake this one
            notify_changes(set(changes) - {Change.CANCELLED})

        monkeypatch.setattr(store, "_notify_changes", no_cancel_notifications)
        doomed = await omniq.enqueue(ct.ctl_wait, "doomed")
        async with running(omniq):
            started = trio.current_time()
            await until(lambda: log.saw("doomed", "start"))
            await trio.sleep(1)
            await omniq.cancel(doomed)
            await until(lambda: log.saw("doomed", "finally"))
            # the next renewal, a third of a lease after the start
            assert trio.current_time() == pytest.approx(started + 10, abs=0.02)


async def test_a_sync_task_in_a_thread_sees_cancelled_and_keeps_its_slot(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, log: ct.ControlLog
) -> None:
    omniq.settings = omniq.settings.evolve(sync_tasks="thread")
    doomed = await omniq.enqueue(ct.ctl_sync_gate, "doomed")
    second = await omniq.enqueue(ct.ctl_sync_gate, "second")
    async with running(omniq, concurrency=1) as pool:
        await until(lambda: log.saw("doomed", "start"))
        assert await omniq.cancel(doomed)
        await until(lambda: pool.statistics().tasks_cancelled == 1)
        # the thread cannot be interrupted: its slot is taken until it returns
        await trio.sleep(5)
        assert not log.saw("second", "start")
        log.gate.set()
        result = await omniq.get_result(second, wait=True)
        assert result is not None and result.value == "second"
    assert log.saw("doomed", "cancelled")
    assert log.saw("second", "not cancelled")
    task = await omniq.get_task(doomed)
    assert task.status is TaskStatus.CANCELLED
    doomed_result = await omniq.get_result(doomed)
    assert doomed_result is not None and doomed_result.value is None


# --------------------------------------------------------------------- context


def test_current_task_outside_a_task_is_a_named_error() -> None:
    with pytest.raises(NoTaskContextError, match="inside a task"):
        current_task()


async def test_the_context_on_the_first_run_and_on_a_retry(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, log: ct.ControlLog
) -> None:
    omniq.settings = omniq.settings.evolve(retry_backoff=2.0)
    task_id = await omniq.enqueue(ct.ctl_context, 1, max_retries=2, queue="ctx")
    async with running(omniq) as pool:
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None and result.value == "ok"
    task = await omniq.get_task(task_id)
    first, second = log.contexts
    common = {
        "id": task_id,
        "func": "tests.runtime.control_tasks:ctl_context",
        "queue": "ctx",
        "max_retries": 2,
        "created_at": task.created_at,
        "worker_id": pool.worker_id,
        "cancelled": False,
    }
    assert first == {**common, "attempt": 1, "eta": task.created_at}
    assert second == {**common, "attempt": 2, "eta": task.eta}
    assert second["eta"] >= task.created_at + 2.0  # the retry's backoff


async def test_child_tasks_see_the_context(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(ct.ctl_context_in_child)
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None and result.value == 1


async def test_tasks_enqueue_follow_ups_from_async_and_from_threads(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, log: ct.ControlLog
) -> None:
    omniq.settings = omniq.settings.evolve(sync_tasks="thread")
    from_async = await omniq.enqueue(ct.ctl_enqueue_follow_up)
    from_sync = await omniq.enqueue(ct.ctl_sync_context)
    async with running(omniq):
        follow_up = await omniq.get_result(from_async, wait=True)
        sync_result = await omniq.get_result(from_sync, wait=True)
        assert follow_up is not None and sync_result is not None
        for task_id in (follow_up.value, sync_result.value["follow_up"]):
            assert (await omniq.get_result(task_id, wait=True)) is not None
    assert sync_result.value["attempt"] == 1
    assert log.saw("from-async", "child") and log.saw("from-sync", "child")
    delayed = await omniq.get_task(follow_up.value)
    assert delayed.eta == pytest.approx(delayed.created_at + 5)  # the options pass through


async def test_enqueue_sync_refuses_to_block_the_trio_thread(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(ct.ctl_sync_context)  # sync_tasks="inline" here
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None and result.status is TaskStatus.FAILED
    assert result.error is not None
    assert result.error.type == "omniq_trio.errors.TaskContextError"
    assert "would block the trio thread" in result.error.message


# -------------------------------------------------------------------- progress


async def test_progress_is_visible_while_running_and_throttled(
    autojump_clock: trio.abc.Clock,
    omniq: AsyncOmniQ,
    log: ct.ControlLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = omniq.store
    writes: list[tuple[float, float]] = []
    set_progress = store.set_progress

    async def counted(task_id: str, *, worker_id: str, progress: Progress) -> None:
        writes.append((trio.current_time(), progress.fraction))
        await set_progress(task_id, worker_id=worker_id, progress=progress)

    monkeypatch.setattr(store, "set_progress", counted)
    task_id = await omniq.enqueue(ct.ctl_progress, "p")
    async with running(omniq):
        await until(lambda: len(writes) == 1)
        progress = (await omniq.get_task(task_id)).progress
        assert progress is not None
        assert (progress.fraction, progress.message) == (0.25, "first")  # the first at once
        await until(lambda: log.saw("p", "reported"))
        await trio.sleep(1.0)
        progress = (await omniq.get_task(task_id)).progress
        assert progress is not None
        # one write a second: the latest report when the second came (1.0, not 0.5 or 0.75)
        assert (progress.fraction, progress.message) == (1.0, "done")
        await trio.sleep(5)
    assert [fraction for _, fraction in writes] == [0.25, 1.0]
    assert writes[1][0] == pytest.approx(writes[0][0] + 1.0, abs=0.001)


async def test_progress_from_a_thread(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, log: ct.ControlLog
) -> None:
    omniq.settings = omniq.settings.evolve(sync_tasks="thread")
    task_id = await omniq.enqueue(ct.ctl_sync_progress, "t")
    async with running(omniq):
        await until(lambda: log.saw("t", "reported"))

        async def shown() -> bool:
            return (await omniq.get_task(task_id)).progress is not None

        await until(shown)
        progress = (await omniq.get_task(task_id)).progress
        assert progress is not None
        assert (progress.fraction, progress.message) == (0.5, "half")
        log.gate.set()
        await omniq.get_result(task_id, wait=True)


@pytest.mark.parametrize("fraction", [1.5, -0.1, "NaN!", True, "half", None])
async def test_a_bad_progress_is_a_named_error(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, fraction: Any
) -> None:
    task_id = await omniq.enqueue(ct.ctl_bad_progress, fraction)
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None and result.error is not None
    assert result.error.type == "omniq_trio.errors.ProgressError"
    assert (await omniq.get_task(task_id)).progress is None


def test_progress_messages_must_be_strings() -> None:
    from omniq_trio._context import check_progress

    assert check_progress(1, None) == (1.0, None)
    with pytest.raises(ProgressError, match="message"):
        check_progress(0.5, 3)


# ------------------------------------------------------------------- retention


async def test_retry_failed_reruns_every_failed_task_or_those_of_one_function(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    ids = [await omniq.enqueue(ct.ctl_fail_once, f"t{i}") for i in range(3)]
    other = await omniq.enqueue(ct.ctl_bad_progress, 2)

    def statuses(*expected: TaskStatus) -> Callable[[], Awaitable[bool]]:
        async def hold() -> bool:
            return [(await omniq.get_task(i)).status for i in [*ids, other]] == list(expected)

        return hold

    failed, success = TaskStatus.FAILED, TaskStatus.SUCCESS
    async with running(omniq):
        await until(statuses(failed, failed, failed, failed))
        assert await omniq.retry_failed(func=ct.ctl_fail_once) == 3
        await until(statuses(success, success, success, failed))
        assert await omniq.retry_failed() == 1
        assert await omniq.retry_failed() == 0


async def test_get_result_of_a_task_purged_while_waiting_says_so(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = await omniq.enqueue(ct.ctl_wait, "w", delay=10)
    store = omniq.store
    get_result = store.get_result
    reads = 0

    async def purged_before_the_second_look(task_id: str) -> Any:
        nonlocal reads
        reads += 1
        if reads > 1 and (await store.get_task(task_id)).status is TaskStatus.CANCELLED:
            # it finished, then outlived result_ttl before this look
            await store.purge(finished_before=math.inf, failed_before=math.inf)
        return await get_result(task_id)

    monkeypatch.setattr(store, "get_result", purged_before_the_second_look)
    raised: list[Exception] = []

    async def wait_for_it() -> None:
        try:
            await omniq.get_result(task_id, wait=True)
        except TaskNotFoundError as exc:
            raised.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_for_it)
        await trio.testing.wait_all_tasks_blocked()
        await omniq.cancel(task_id)
    (error,) = raised
    assert "purged while get_result waited" in str(error)
    with pytest.raises(TaskNotFoundError, match="never enqueued"):
        await omniq.get_result("no-such-task", wait=True)
