"""``AsyncioOmniQ`` in one process: every method, errors, timeouts, cancellation, close.

The suite runs under pytest-trio, so each test is a plain function that runs
its asyncio program with ``asyncio.run``. The client's trio thread runs on the
real clock; the tests wait on events and readiness, and assert no duration.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from omniq_trio import (
    AsyncioOmniQ,
    AsyncOmniQ,
    Call,
    OmniQ,
    SerializationError,
    Settings,
    TaskNotFoundError,
    TaskOptionError,
    TaskStatus,
)
from omniq_trio.errors import StoreClosedError
from tests.aio.aio_tasks import Blocker, add, fail, nap

T = TypeVar("T")

#: Generous bound for a cross-thread handoff; only a hang would reach it.
PATIENCE = 10.0


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(asyncio.wait_for(main(), PATIENCE * 3))


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (on the loop) until ``condition()`` holds; fail after PATIENCE."""
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.001)


async def in_thread(wait: Callable[[], bool]) -> bool:
    """Block on ``wait()`` in a thread of the loop's executor, not in the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, wait)


def memory(**fields: Any) -> Settings:
    return Settings(backend="memory", poll_interval=0.05, **fields)


def _public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _parameters(method: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()]


def test_it_has_the_methods_of_asyncomniq_with_their_parameters() -> None:
    trio_side, asyncio_side = _public_methods(AsyncOmniQ), _public_methods(AsyncioOmniQ)
    assert sorted(asyncio_side) == sorted(trio_side)
    for name, method in trio_side.items():
        mirror = asyncio_side[name]
        assert inspect.iscoroutinefunction(mirror) == inspect.iscoroutinefunction(method), name
        assert _parameters(mirror) == _parameters(method), name


def test_omniq_has_them_too_blocking() -> None:
    trio_side, sync_side = _public_methods(AsyncOmniQ), _public_methods(OmniQ)
    # the blocking client is open from its constructor on, and closes with close()
    assert sorted(sync_side) == sorted({*trio_side} - {"open", "aclose"} | {"close"})
    for name, mirror in sync_side.items():
        assert not inspect.iscoroutinefunction(mirror), name
        if name != "close":
            assert _parameters(mirror) == _parameters(trio_side[name]), name


def test_every_method_from_an_asyncio_program() -> None:
    async def main() -> None:
        async with AsyncioOmniQ(memory(concurrency=2)) as omniq:
            workers = omniq.worker()
            running = asyncio.create_task(workers.run())
            one = await omniq.enqueue(add, 1, 2)
            many = await omniq.enqueue_many(Call(add, (i, i)) for i in range(3))
            results = [await omniq.get_result(i, wait=True, timeout=PATIENCE) for i in [one, *many]]
            assert [r.value for r in results if r is not None] == [3, 0, 2, 4]

            failed = await omniq.enqueue(fail, "no")
            result = await omniq.get_result(failed, wait=True, timeout=PATIENCE)
            assert result is not None and result.status is TaskStatus.FAILED
            await omniq.retry(failed)  # runs again, and fails again
            again = await omniq.get_result(failed, wait=True, timeout=PATIENCE)
            assert again is not None and again.status is TaskStatus.FAILED
            later = await omniq.enqueue(add, 1, 1, delay=3600)
            assert await omniq.cancel(later) is True
            assert (await omniq.get_task(later)).status is TaskStatus.CANCELLED
            assert len(await omniq.list_tasks(status="success")) == 4
            assert len(await omniq.list_tasks(limit=2)) == 2
            assert (await omniq.stats()).counts[TaskStatus.SUCCESS] == 4
            assert await omniq.purge(3600) == 0

            (first, repeat) = await omniq.enqueue_calls(
                [Call(add, (1, 1), unique_key="k", delay=3600)] * 2
            )
            assert first.created and (repeat.id, repeat.created) == (first.id, False)
            page = await omniq.query_tasks(["pending"], limit=1)
            assert [t.id for t in page.tasks] == [first.id] and page.next_cursor is None
            await omniq.pause_queue("mail")
            await omniq.set_queue_limit("mail", max_starts=2, per=60)
            (mail,) = [q for q in await omniq.list_queues() if q.name == "mail"]
            assert mail.paused and mail.limit is not None and mail.limit.max_starts == 2
            await omniq.resume_queue("mail")
            await omniq.clear_queue_limit("mail")
            assert await omniq.list_schedules() == []
            assert isinstance(await omniq.list_workers(), list)
            assert await omniq.get_result(later) is not None  # cancelled is finished

            await workers.stop(timeout=5)
            await running  # run() has returned
            stats = await workers.statistics()
            assert (stats.tasks_succeeded, stats.tasks_failed) == (
                4,
                2,
            ) and stats.tasks_running == 0
            assert (workers.concurrency, workers.poll_interval) == (2, 0.05)

    run(main)


def test_errors_arrive_with_their_types() -> None:
    async def main() -> list[type[BaseException]]:
        caught: list[type[BaseException]] = []
        async with AsyncioOmniQ(memory()) as omniq:
            for attempt in (
                lambda: omniq.get_task("no-such-task"),
                lambda: omniq.enqueue(add, object(), 1),
                lambda: omniq.list_tasks(status="bogus"),
                lambda: omniq.enqueue_many([add]),  # type: ignore[list-item]
            ):
                try:
                    await attempt()
                except Exception as exc:
                    caught.append(type(exc))
            assert (await omniq.stats()).total == 0  # nothing was written
        return caught

    assert run(main) == [TaskNotFoundError, SerializationError, TaskOptionError, TaskOptionError]


def test_get_result_timeout_raises_timeouterror() -> None:
    async def main() -> None:
        async with AsyncioOmniQ(memory()) as omniq:
            task_id = await omniq.enqueue(add, 1, 2)  # no worker: it never finishes
            with pytest.raises(TimeoutError, match=f"task {task_id} has not finished"):
                await omniq.get_result(task_id, wait=True, timeout=0.05)
            assert issubclass(TimeoutError, asyncio.TimeoutError)

    run(main)


def test_cancelling_a_waiting_get_result_cancels_the_wait_in_the_trio_thread() -> None:
    async def main() -> None:
        async with AsyncioOmniQ(memory()) as omniq:
            task_id = await omniq.enqueue(add, 1, 2)
            waiter = asyncio.create_task(omniq.get_result(task_id, wait=True))
            await eventually(lambda: omniq._thread.calls_in_flight == 1)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            # the trio side stopped waiting too (it would otherwise wait forever)
            await eventually(lambda: omniq._thread.calls_in_flight == 0)
            # and asyncio.timeout, which cancels the same way
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await omniq.get_result(task_id, wait=True)
            await eventually(lambda: omniq._thread.calls_in_flight == 0)
            assert await omniq.get_result(task_id) is None  # still usable

    run(main)


def test_a_cancelled_enqueue_still_completes_whole() -> None:
    """The awaiting task stops waiting at once; the enqueue, already handed over, is made."""

    async def main() -> None:
        async with AsyncioOmniQ(memory(serializer="pickle")) as omniq:
            blocker = Blocker()
            enqueue = asyncio.create_task(omniq.enqueue(add, blocker, 1))
            assert await in_thread(lambda: blocker.entered.wait(PATIENCE))
            # the trio thread is stuck inside enqueue; the loop is not
            enqueue.cancel()
            with pytest.raises(asyncio.CancelledError):
                await enqueue
            blocker.release.set()
            await eventually(lambda: omniq._thread.calls_in_flight == 0)
            (task,) = await omniq.list_tasks()
            assert task.status is TaskStatus.PENDING  # enqueued, with its arguments

    run(main)


def test_close_fails_waiting_calls_and_later_ones_and_leaks_nothing(tmp_path: Path) -> None:
    threads = {t.name for t in threading.enumerate() if not t.name.startswith("Trio thread")}
    fds = set(os.listdir("/proc/self/fd"))

    async def main() -> None:
        omniq = AsyncioOmniQ(Settings(base_dir=tmp_path, poll_interval=0.05))
        task_id = await omniq.enqueue(add, 1, 2)  # opens on first use, no async with
        workers = omniq.worker()
        running = asyncio.create_task(workers.run())
        result = await omniq.get_result(task_id, wait=True, timeout=PATIENCE)
        assert result is not None and result.value == 3
        later = await omniq.enqueue(add, 1, 2, delay=3600)
        waiter = asyncio.create_task(omniq.get_result(later, wait=True))
        await eventually(lambda: omniq._thread.calls_in_flight == 2)  # run() and the wait

        await omniq.aclose()  # stops the pool gracefully first
        await omniq.aclose()  # again: fine

        await running
        with pytest.raises(StoreClosedError, match="closed while the call was waiting"):
            await waiter
        with pytest.raises(StoreClosedError, match="AsyncioOmniQ is closed"):
            await omniq.stats()
        await workers.stop()  # after close: returns, the pool has stopped
        assert (await workers.statistics()).tasks_succeeded == 1

    run(main)
    assert {t.name for t in threading.enumerate() if not t.name.startswith("Trio thread")} == (
        threads
    )
    assert set(os.listdir("/proc/self/fd")) == fds


def test_a_client_never_used_starts_no_thread_and_closes() -> None:
    async def main() -> None:
        omniq = AsyncioOmniQ(memory())
        await omniq.aclose()
        with pytest.raises(StoreClosedError):
            await omniq.enqueue(add, 1, 2)

    before = threading.active_count()
    run(main)
    assert threading.active_count() == before


def test_cancelling_run_stops_the_pool_at_once_and_puts_tasks_back() -> None:
    async def main() -> None:
        async with AsyncioOmniQ(memory()) as omniq:
            workers = omniq.worker()
            running = asyncio.create_task(workers.run())
            task_id = await omniq.enqueue(nap, "x", 3600)
            await eventually_async(omniq, task_id, TaskStatus.RUNNING)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            task = await omniq.get_task(task_id)
            assert (task.status, task.attempts) == (TaskStatus.PENDING, 0)

    run(main)


async def eventually_async(omniq: AsyncioOmniQ, task_id: str, status: TaskStatus) -> None:
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while (await omniq.get_task(task_id)).status is not status:
        assert asyncio.get_running_loop().time() < deadline, f"never {status}"
        await asyncio.sleep(0.005)
