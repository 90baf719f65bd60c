"""A task's stored call and its result are bounded (``max_task_bytes``, ``max_result_bytes``).

``enqueue`` refuses an oversize call and writes nothing; a worker refuses,
without decoding it, an oversize task written by other means; a result over
the bound is stored as a failure that says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio

from omniq_trio import (
    AsyncOmniQ,
    Call,
    OmniQ,
    Settings,
    Task,
    TaskResult,
    TaskStatus,
    TaskTooLargeError,
)
from omniq_trio._cli import main
from omniq_trio._limits import call_size
from omniq_trio.errors import SerializationError
from tests.runtime.conftest import SETTINGS, running
from tests.security import plain_tasks
from tests.security.worker_tasks import big_result

LIMIT = 1_000
ECHO = "tests.security.plain_tasks:echo_args"


async def _result(omniq: AsyncOmniQ, task_id: str) -> TaskResult:
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None
    return result


@pytest.mark.parametrize(
    "call",
    [
        Call(plain_tasks.echo_args, ("x" * LIMIT,)),
        Call(plain_tasks.echo_args, (), {"data": "x" * LIMIT}),
        Call(plain_tasks.echo_args, ([1] * 300, {"k": "x" * 500})),
    ],
    ids=["args", "kwargs", "both"],
)
async def test_enqueue_refuses_an_oversize_call_and_writes_nothing(
    autojump_clock: trio.abc.Clock, call: Call
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(max_task_bytes=LIMIT)) as omniq:
        with pytest.raises(TaskTooLargeError) as refused:
            await omniq.enqueue(call.func, *call.args, **call.kwargs)
        assert await omniq.list_tasks() == []
    assert refused.value.limit == LIMIT
    assert refused.value.size > LIMIT
    assert f"is {refused.value.size:,} bytes, more than max_task_bytes (1,000)" in str(
        refused.value
    )
    assert isinstance(refused.value, SerializationError)  # the CLI's usage error (exit 2)


async def test_enqueue_many_writes_none_if_one_call_is_oversize(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(max_task_bytes=LIMIT)) as omniq:
        small = [Call(plain_tasks.echo_args, (i,)) for i in range(5)]
        with pytest.raises(TaskTooLargeError):
            await omniq.enqueue_many([*small, Call(plain_tasks.echo_args, ("x" * LIMIT,)), *small])
        assert await omniq.list_tasks() == []
        assert len(await omniq.enqueue_many(small)) == 5


@pytest.mark.parametrize("serializer", ["json", "pickle"])
async def test_the_bound_is_on_the_stored_call_exactly(
    autojump_clock: trio.abc.Clock, serializer: str
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(serializer=serializer)) as omniq:
        task = await omniq.get_task(await omniq.enqueue(ECHO, "x" * 500, key="é"))
    size = call_size(task.func, task.args, task.kwargs)
    assert size > 500 + len(ECHO)
    for limit, fits in [(size, True), (size - 1, False)]:
        async with AsyncOmniQ(SETTINGS.evolve(serializer=serializer, max_task_bytes=limit)) as q:
            if fits:
                await q.enqueue(ECHO, "x" * 500, key="é")
            else:
                with pytest.raises(TaskTooLargeError, match=f"is {size:,} bytes"):
                    await q.enqueue(ECHO, "x" * 500, key="é")


async def test_a_worker_refuses_an_oversize_task_without_decoding_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Written by other means (a producer with a larger bound here; a direct
    # INSERT elsewhere): a pickle whose unpickling would call `detonate`.
    producer = AsyncOmniQ(SETTINGS.evolve(serializer="pickle"))
    async with producer:
        task_id = await producer.enqueue(
            plain_tasks.echo_args, plain_tasks.Bomb(), "x" * LIMIT, max_retries=3
        )
        worker = AsyncOmniQ(
            SETTINGS.evolve(serializer="pickle", max_task_bytes=LIMIT), store=producer.store
        )
        result = await _result(worker, task_id)
    assert result.status is TaskStatus.FAILED
    assert result.attempts == 1  # not retried: it would be as large next time
    assert result.error is not None
    assert result.error.type == "omniq_trio.errors.TaskTooLargeError"
    assert "more than max_task_bytes (1,000)" in result.error.message
    assert ("detonate", None) not in plain_tasks.CALLS  # never unpickled
    # the same task within the bound is decoded and run (the bomb goes off)
    async with AsyncOmniQ(SETTINGS.evolve(serializer="pickle")) as omniq:
        await _result(omniq, await omniq.enqueue(plain_tasks.echo_args, plain_tasks.Bomb()))
    assert ("detonate", None) in plain_tasks.CALLS


async def test_a_task_stored_directly_is_measured_too(autojump_clock: trio.abc.Clock) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(max_task_bytes=LIMIT)) as omniq:
        task = Task(id="direct", func=ECHO, args=("x" * LIMIT,), eta=0.0, created_at=0.0)
        await omniq.store.enqueue([task])
        result = await _result(omniq, "direct")
    assert result.status is TaskStatus.FAILED
    assert result.error is not None
    assert result.error.type == "omniq_trio.errors.TaskTooLargeError"


@pytest.mark.parametrize(("size", "status"), [(98, TaskStatus.SUCCESS), (99, TaskStatus.FAILED)])
async def test_a_result_over_the_bound_is_stored_as_a_failure(
    autojump_clock: trio.abc.Clock, size: int, status: TaskStatus
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(max_result_bytes=100)) as omniq:
        result = await _result(omniq, await omniq.enqueue(big_result, size, max_retries=2))
    assert result.status is status
    assert result.attempts == 1
    if status is TaskStatus.SUCCESS:
        assert result.value == "x" * size
        return
    assert result.value is None
    assert result.error is not None
    assert result.error.type == "omniq_trio.errors.ResultTooLargeError"
    assert "return value is 101 bytes when stored, more than max_result_bytes (100)" in (
        result.error.message
    )


async def test_a_pickled_result_is_measured_as_stored(autojump_clock: trio.abc.Clock) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(serializer="pickle", max_result_bytes=100)) as omniq:
        result = await _result(omniq, await omniq.enqueue(big_result, 100))
    assert result.status is TaskStatus.FAILED
    assert result.error is not None
    assert result.error.type == "omniq_trio.errors.ResultTooLargeError"


def test_the_cli_refuses_an_oversize_call_as_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in os.environ:
        if name.startswith("OMNIQ_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OMNIQ_MAX_TASK_BYTES", str(LIMIT))
    code = main(["enqueue", ECHO, json.dumps(["x" * LIMIT]), "--base-dir", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("omniq-trio enqueue: error: the task's stored call is 1,0")
    assert "more than max_task_bytes (1,000)" in err
    with OmniQ(Settings(base_dir=tmp_path)) as omniq:
        assert omniq.list_tasks() == []
