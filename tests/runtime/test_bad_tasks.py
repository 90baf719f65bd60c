"""A task that misbehaves fails alone, with its error stored; the worker carries on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio

from omniq_trio import AsyncOmniQ, TaskResult, TaskStatus
from tests.runtime.conftest import SETTINGS, running
from tests.tasks import RuntimeProbe, rt_echo, rt_exit, rt_flaky, rt_unserializable

UNREGISTERED = "omniq_trio.errors.UnregisteredTaskError"
BAD_TASKS: list[tuple[Callable[..., Any] | str, tuple[Any, ...], str | None, str]] = [
    # (function, arguments, error type, words of the message)
    (rt_flaky, ("boom", 1), "ValueError", "boom failure 1 of 1"),
    (rt_unserializable, (), "omniq_trio.errors.SerializationError", "not JSON-serializable"),
    ("nope.module:fn", (), UNREGISTERED, "whose task modules are: tests.tasks"),
    ("tests.tasks:missing", (), UNREGISTERED, "module 'tests.tasks' defines no 'missing'"),
    ("tests.tasks:rt_not_callable", (), UNREGISTERED, "is a str, not a function"),
    # tests.tasks imports both; neither is defined there
    ("tests.tasks:os.getcwd", (), UNREGISTERED, "'os.getcwd' is a dotted name"),
    ("tests.tasks:Counter", (), UNREGISTERED, "is collections.Counter, defined in another"),
    (rt_exit, (3,), "SystemExit", "3"),
    (rt_echo, (), None, ""),  # a good one among them
    ("tests.tasks:rt_sleep", (), "TypeError", "missing 1 required positional argument"),
]
#: the pool imports the module of the tasks it runs, as a worker process would
BAD_SETTINGS = SETTINGS.evolve(imports=("tests.tasks",))


@pytest.fixture
async def omniq() -> AsyncIterator[AsyncOmniQ]:
    async with AsyncOmniQ(BAD_SETTINGS) as client:
        yield client


async def _run_all(omniq: AsyncOmniQ) -> list[TaskResult]:
    ids = [await omniq.enqueue(func, *args) for func, args, _, _ in BAD_TASKS]
    # a later task still runs
    last = await omniq.enqueue(rt_echo, "after")
    async with running(omniq) as pool:
        results = [await omniq.get_result(task_id, wait=True) for task_id in [*ids, last]]
        assert pool.running
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _check(results: list[TaskResult]) -> None:
    for (func, _, error_type, words), result in zip(BAD_TASKS, results, strict=False):
        if error_type is None:
            assert result.status is TaskStatus.SUCCESS
            continue
        assert result.status is TaskStatus.FAILED, func
        assert result.error is not None
        assert result.error.type == error_type
        assert words in result.error.message
        assert result.attempts == 1
    assert results[-1].status is TaskStatus.SUCCESS
    assert results[-1].value == {"args": ["after"], "kwargs": {}}


async def test_bad_tasks_fail_alone(autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ) -> None:
    _check(await _run_all(omniq))


async def test_bad_sync_tasks_in_threads_fail_alone(autojump_clock: trio.abc.Clock) -> None:
    async with AsyncOmniQ(BAD_SETTINGS.evolve(sync_tasks="thread")) as omniq:
        _check(await _run_all(omniq))


async def test_exception_is_stored_with_its_traceback(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_flaky, "boom", 1)
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    task = await omniq.get_task(task_id)
    assert result is not None
    assert result.error is not None
    assert task.error == result.error
    assert result.error.traceback.startswith("Traceback (most recent call last):")
    assert "in rt_flaky" in result.error.traceback
    assert result.error.traceback.rstrip().endswith("ValueError: boom failure 1 of 1")
    assert str(result.error) == "ValueError: boom failure 1 of 1"


@pytest.mark.parametrize(
    "func", [rt_unserializable, "nope.module:fn", "tests.tasks:missing", rt_exit]
)
async def test_errors_a_retry_cannot_fix_are_not_retried(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe, func: object
) -> None:
    task_id = await omniq.enqueue(func, max_retries=3)  # type: ignore[arg-type]
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None
    assert result.status is TaskStatus.FAILED
    # sys.exit() is the task's own decision, retried like any error
    assert result.attempts == (4 if func is rt_exit else 1)


async def test_worker_counts_failures(autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ) -> None:
    async with running(omniq) as pool:
        await omniq.get_result(await omniq.enqueue("nope.module:fn"), wait=True)
        await omniq.get_result(await omniq.enqueue(rt_echo), wait=True)
        stats = pool.statistics()
    assert (stats.tasks_processed, stats.tasks_failed, stats.tasks_succeeded) == (2, 1, 1)
