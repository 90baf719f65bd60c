"""``OmniQ``, the blocking wrapper: threads, exceptions across them, stop, close.

The wrapper runs its own ``trio.run`` on the real clock in a background
thread, so these tests wait on events across threads; none asserts a duration.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from omniq_trio import (
    InvalidTransitionError,
    OmniQ,
    SerializationError,
    Settings,
    TaskNotFoundError,
    TaskOptionError,
    TaskStatus,
)
from omniq_trio.errors import StoreClosedError
from tests.sync.sync_tasks import add, hold, started

#: Generous bound for a cross-thread handoff; only a hang would reach it.
PATIENCE = 10.0


@pytest.fixture
def omniq() -> Iterator[OmniQ]:
    with OmniQ(Settings(backend="memory", poll_interval=0.05)) as omniq:
        yield omniq


def run_in_thread(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_many_threads_at_once(omniq: OmniQ) -> None:
    workers = omniq.worker(concurrency=4)
    worker_thread = run_in_thread(workers.start)
    results: dict[int, list[int | None]] = {}

    def client(n: int) -> None:
        ids = [omniq.enqueue(add, n, i) for i in range(10)]
        got = [omniq.get_result(task_id, wait=True, timeout=PATIENCE) for task_id in ids]
        results[n] = [r.value if r else None for r in got]

    threads = [run_in_thread(lambda n=n: client(n)) for n in range(8)]
    for thread in threads:
        thread.join(PATIENCE)
    workers.stop(timeout=5.0)

    assert results == {n: [n + i for i in range(10)] for n in range(8)}
    assert omniq.stats().counts[TaskStatus.SUCCESS] == 80
    assert workers.statistics().tasks_succeeded == 80
    assert not worker_thread.is_alive()


def test_exceptions_cross_threads_with_their_types(omniq: OmniQ) -> None:
    caught: list[list[type[BaseException]]] = []

    def client() -> None:
        mine: list[type[BaseException]] = []
        for attempt in (
            lambda: omniq.get_task("no-such-task"),
            lambda: omniq.enqueue(add, object(), 1),
            lambda: omniq.list_tasks(status="bogus"),
            lambda: omniq.retry(omniq.enqueue(add, 1, 2)),  # PENDING cannot be retried
        ):
            try:
                attempt()
            except Exception as exc:
                mine.append(type(exc))
        caught.append(mine)

    threads = [run_in_thread(client) for _ in range(3)]
    for thread in threads:
        thread.join(PATIENCE)
    expected = [TaskNotFoundError, SerializationError, TaskOptionError, InvalidTransitionError]
    assert caught == [expected] * 3


def test_stop_from_another_thread_lets_running_tasks_finish(omniq: OmniQ) -> None:
    workers = omniq.worker(concurrency=2)
    worker_thread = run_in_thread(workers.start)
    task_id = omniq.enqueue(hold, "graceful", 0.1)
    assert started("graceful").wait(PATIENCE)

    workers.stop(timeout=5.0)

    assert not worker_thread.is_alive()  # start() has returned
    result = omniq.get_result(task_id)
    assert result is not None and result.value == "graceful"
    assert workers.statistics().tasks_running == 0


def test_stop_now_puts_the_running_task_back(omniq: OmniQ) -> None:
    workers = omniq.worker()
    worker_thread = run_in_thread(workers.start)
    task_id = omniq.enqueue(hold, "now", 3600)
    assert started("now").wait(PATIENCE)

    workers.stop(timeout=0)

    assert not worker_thread.is_alive()
    task = omniq.get_task(task_id)
    assert (task.status, task.attempts) == (TaskStatus.PENDING, 0)
    assert workers.statistics().tasks_released == 1


def test_stop_before_start_and_twice(omniq: OmniQ) -> None:
    workers = omniq.worker()
    workers.stop()
    workers.start()  # returns at once: the pool was stopped before it ran
    workers.stop(timeout=0)
    assert (workers.concurrency, workers.poll_interval) == (1, 0.05)


def test_close_stops_a_running_pool_and_later_calls_fail() -> None:
    omniq = OmniQ(Settings(backend="memory", poll_interval=0.05))
    workers = omniq.worker()
    worker_thread = run_in_thread(workers.start)
    later = omniq.enqueue(add, 1, 2, delay=3600)
    waiting = threading.Event()
    waiter_errors: list[BaseException] = []

    def wait_forever() -> None:
        waiting.set()
        try:
            omniq.get_result(later, wait=True)
        except StoreClosedError as exc:
            waiter_errors.append(exc)

    waiter = run_in_thread(wait_forever)
    assert waiting.wait(PATIENCE)
    omniq.close()
    omniq.close()  # again: a no-op

    worker_thread.join(PATIENCE)
    waiter.join(PATIENCE)
    assert not worker_thread.is_alive()
    assert len(waiter_errors) == 1
    with pytest.raises(StoreClosedError):
        omniq.stats()
    workers.stop()  # after close: returns, the pool has stopped


def test_calls_from_trio_code_fail_clearly(omniq: OmniQ) -> None:
    async def misuse() -> None:
        with pytest.raises(RuntimeError, match="use AsyncOmniQ there"):
            omniq.stats()
        with pytest.raises(RuntimeError, match="blocks"):
            omniq.close()

    trio.run(misuse)
    assert omniq.stats().total == 0  # still usable from a thread


def _threads() -> set[str]:
    # trio's thread cache is process-wide and reused; idle workers exit by themselves
    return {t.name for t in threading.enumerate() if not t.name.startswith("Trio thread")}


def test_closing_leaks_no_thread_or_file_descriptor(tmp_path: Path) -> None:
    threads, fds = _threads(), set(os.listdir("/proc/self/fd"))

    with OmniQ(Settings(base_dir=tmp_path, poll_interval=0.05)) as omniq:
        workers = omniq.worker()
        worker_thread = run_in_thread(workers.start)
        task_id = omniq.enqueue(add, 2, 3)
        result = omniq.get_result(task_id, wait=True, timeout=PATIENCE)
        assert result is not None and result.value == 5
        assert "omniq-trio" in _threads()
    worker_thread.join(PATIENCE)

    assert _threads() == threads
    assert set(os.listdir("/proc/self/fd")) == fds
