"""AsyncOmniQ: enqueue and its checks, get_result, cancel, list_tasks."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import math
from typing import Any

import pytest
import trio

from omniq_trio import (
    RESERVED_OPTIONS,
    AsyncOmniQ,
    Call,
    FunctionImportError,
    SerializationError,
    TaskNotFoundError,
    TaskOptionError,
    TaskStatus,
)
from tests.runtime.conftest import running
from tests.tasks import RuntimeProbe, rt_echo, rt_flaky, rt_sleep

# ------------------------------------------------------------------ enqueue checks

NOT_JSON: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((object(),), {}),
    (({1, 2},), {}),
    ((b"bytes",), {}),
    ((math.nan,), {}),
    ((2**70,), {}),
    (({1: "int key"},), {}),
    (([1, [2, object()]],), {}),
    ((), {"when": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)}),
]


@pytest.mark.parametrize(("args", "kwargs"), NOT_JSON)
async def test_arguments_that_are_not_json_raise_and_store_nothing(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(SerializationError, match=r"^(args|kwargs)\["):
        await omniq.enqueue(rt_echo, *args, **kwargs)
    assert await omniq.list_tasks() == []


def _local() -> None:
    pass


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"delay": -1}, TaskOptionError, "delay must be >= 0"),
    ({"delay": math.inf}, TaskOptionError, "delay must be a number"),
    ({"delay": "5"}, TaskOptionError, "delay must be a number"),
    ({"delay": dt.timedelta(seconds=-1)}, TaskOptionError, "delay must be >= 0"),
    ({"delay": 5, "eta": 1e9}, TaskOptionError, "eta or delay, not both"),
    ({"eta": dt.datetime(2030, 1, 1)}, TaskOptionError, "timezone-aware"),
    ({"eta": "tomorrow"}, TaskOptionError, "eta must be"),
    ({"max_retries": -1}, TaskOptionError, "max_retries must be an integer >= 0"),
    ({"max_retries": 1.5}, TaskOptionError, "max_retries must be an integer"),
    ({"max_retries": True}, TaskOptionError, "max_retries must be an integer"),
    ({"max_retries": "3"}, TaskOptionError, "max_retries must be an integer"),
    ({"timeout": 0}, TaskOptionError, "timeout must be > 0"),
    ({"timeout": -5}, TaskOptionError, "timeout must be > 0"),
    ({"interval": 0}, TaskOptionError, "interval must be > 0"),
    ({"priority": 1.5}, TaskOptionError, "priority must be an integer"),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD_OPTIONS)
async def test_bad_options_raise_and_store_nothing(
    autojump_clock: trio.abc.Clock,
    omniq: AsyncOmniQ,
    options: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        await omniq.enqueue(rt_echo, **options)
    assert await omniq.list_tasks() == []


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda: None, "define it at module level"),
        (_local, None),  # module-level in a test module: fine
        ("not a path", "is not a task path"),
        ("module.only", "is not a task path"),
        (42, "not a module-level function"),
    ],
)
async def test_functions_a_worker_cannot_import_are_refused(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, func: Any, message: str | None
) -> None:
    def inner() -> None:
        pass

    if message is None:
        await omniq.enqueue(func)
        with pytest.raises(FunctionImportError, match="define it at module level"):
            await omniq.enqueue(inner)
        assert len(await omniq.list_tasks()) == 1
        return
    with pytest.raises(FunctionImportError, match=message):
        await omniq.enqueue(func)
    assert await omniq.list_tasks() == []


async def test_enqueue_many_is_all_or_nothing(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    with pytest.raises(SerializationError):
        await omniq.enqueue_many([Call(rt_echo, (1,)), Call(rt_echo, (object(),))])
    with pytest.raises(TaskOptionError):
        await omniq.enqueue_many([Call(rt_echo), Call(rt_echo, delay=-1)])
    assert await omniq.list_tasks() == []
    ids = await omniq.enqueue_many([Call(rt_echo, (i,)) for i in range(3)])
    assert [t.id for t in await omniq.list_tasks()] == ids


async def test_reserved_names_reach_the_task_through_task_kwargs(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    reserved = {"timeout": "t", "delay": "d", "priority": "p", "eta": "e", "task_kwargs": "k"}
    task_id = await omniq.enqueue(rt_echo, 1, other=2, task_kwargs=reserved)
    task = await omniq.get_task(task_id)
    assert (task.timeout, task.priority, task.eta) == (None, 0, task.created_at)
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None
    assert result.value == {"args": [1], "kwargs": {"other": 2, **reserved}}


def test_reserved_options_are_exactly_enqueues_options() -> None:
    parameters = inspect.signature(AsyncOmniQ.enqueue).parameters.values()
    options = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert options == RESERVED_OPTIONS


async def test_arguments_are_copied_at_enqueue(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    data = {"items": [1, 2]}
    task_id = await omniq.enqueue(rt_echo, data, (3, 4))
    data["items"].append(99)
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
    assert result is not None
    assert result.value == {"args": [{"items": [1, 2]}, [3, 4]], "kwargs": {}}


# -------------------------------------------------------------------- get_result


async def test_get_result_is_none_until_the_task_finishes(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_sleep, "a", 5.0)
    assert await omniq.get_result(task_id) is None
    async with running(omniq):
        await trio.sleep(1)
        assert (await omniq.get_task(task_id)).status is TaskStatus.RUNNING
        assert await omniq.get_result(task_id) is None
        result = await omniq.get_result(task_id, wait=True)
        assert trio.current_time() == 5.0
    assert result is not None
    assert result.ok
    assert (result.task_id, result.status, result.value, result.attempts) == (
        task_id,
        TaskStatus.SUCCESS,
        "a",
        1,
    )
    task = await omniq.get_task(task_id)
    assert task.started_at is not None
    assert result.started_at == task.started_at
    assert result.finished_at == task.finished_at == task.started_at + 5.0
    assert await omniq.get_result(task_id) == result


async def test_get_result_wait_times_out(autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ) -> None:
    task_id = await omniq.enqueue(rt_sleep, "a", 5.0)
    async with running(omniq):
        with pytest.raises(trio.TooSlowError):
            await omniq.get_result(task_id, wait=True, timeout=2.5)
        assert trio.current_time() == 2.5
        result = await omniq.get_result(task_id, wait=True, timeout=10)
        assert trio.current_time() == 5.0
    assert result is not None
    assert result.value == "a"


async def test_get_result_waits_through_retries(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_flaky, "f", 2, max_retries=2)
    async with running(omniq):
        result = await omniq.get_result(task_id, wait=True)
        assert trio.current_time() == 3.0
    assert result is not None
    assert (result.status, result.attempts) == (TaskStatus.SUCCESS, 3)


async def test_unknown_ids_raise_task_not_found(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    for call in (
        omniq.get_result("nope"),
        omniq.get_result("nope", wait=True, timeout=1),
        omniq.get_task("nope"),
        omniq.cancel("nope"),
    ):
        with pytest.raises(TaskNotFoundError, match="nope"):
            await call
    assert trio.current_time() == 0.0


# ------------------------------------------------------------------------- cancel


async def test_cancelled_pending_task_never_runs(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    task_id = await omniq.enqueue(rt_sleep, "a", delay=10)
    other = await omniq.enqueue(rt_sleep, "b", delay=10)
    async with running(omniq):
        await trio.sleep(5)
        assert await omniq.cancel(task_id) is True
        assert await omniq.cancel(task_id) is False
        result = await omniq.get_result(task_id, wait=True)
        assert trio.current_time() == 5.0
        await omniq.get_result(other, wait=True)
    assert probe.runs == {"b": 1}
    assert result is not None
    assert (result.status, result.attempts) == (TaskStatus.CANCELLED, 0)
    task = await omniq.get_task(task_id)
    assert task.status is TaskStatus.CANCELLED
    assert task.finished_at == task.created_at + 5


async def test_cancelled_retrying_task_does_not_run_again(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    task_id = await omniq.enqueue(rt_flaky, "f", 5, max_retries=5)
    async with running(omniq):
        await trio.sleep(0.5)
        assert (await omniq.get_task(task_id)).status is TaskStatus.RETRYING
        assert await omniq.cancel(task_id)
        await trio.sleep(100)
    assert probe.runs["f"] == 1
    task = await omniq.get_task(task_id)
    assert (task.status, task.attempts) == (TaskStatus.CANCELLED, 1)


async def test_cancelling_a_running_task_discards_its_outcome(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omniq_trio")
    task_id = await omniq.enqueue(rt_sleep, "a", 5.0)
    async with running(omniq) as pool:
        await trio.sleep(1)
        assert await omniq.cancel(task_id)
        await trio.sleep(10)
        # the worker goes on with the next task
        after = await omniq.enqueue(rt_echo)
        assert await omniq.get_result(after, wait=True) is not None
        assert pool.running
    task = await omniq.get_task(task_id)
    assert task.status is TaskStatus.CANCELLED
    result = await omniq.get_result(task_id)
    assert result is not None
    assert (result.status, result.value) == (TaskStatus.CANCELLED, None)
    assert pool.statistics().tasks_cancelled == 1
    assert any("cancelled while it ran" in r.getMessage() for r in caplog.records)


async def test_finished_tasks_cannot_be_cancelled(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    task_id = await omniq.enqueue(rt_echo)
    async with running(omniq):
        await omniq.get_result(task_id, wait=True)
    assert await omniq.cancel(task_id) is False
    assert (await omniq.get_task(task_id)).status is TaskStatus.SUCCESS


# --------------------------------------------------------------------- list_tasks


async def test_list_tasks_by_status_in_enqueue_order(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    ok = [await omniq.enqueue(rt_echo, i) for i in range(3)]
    failing = await omniq.enqueue(rt_flaky, "f", 1)
    slow = [await omniq.enqueue(rt_sleep, f"s{i}", 100.0) for i in range(2)]
    later = await omniq.enqueue(rt_echo, delay=1000)
    gone = await omniq.enqueue(rt_echo, delay=1000)
    await omniq.cancel(gone)
    async with running(omniq, concurrency=2):
        await trio.sleep(10)
        by_status = {s: [t.id for t in await omniq.list_tasks(status=s)] for s in TaskStatus}
        assert [t.id for t in await omniq.list_tasks(status="running")] == slow
        assert [t.id for t in await omniq.list_tasks()] == [*ok, failing, *slow, later, gone]
        assert [t.id for t in await omniq.list_tasks(limit=2)] == ok[:2]
        assert [t.id for t in await omniq.list_tasks(status=TaskStatus.SUCCESS, limit=1)] == [ok[0]]
        assert await omniq.list_tasks(limit=0) == []
    assert by_status == {
        TaskStatus.SUCCESS: ok,
        TaskStatus.FAILED: [failing],
        TaskStatus.RUNNING: slow,
        TaskStatus.PENDING: [later],
        TaskStatus.RETRYING: [],
        TaskStatus.CANCELLED: [gone],
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [({"status": "bogus"}, "unknown status"), ({"limit": -1}, "limit"), ({"limit": 1.5}, "limit")],
)
async def test_list_tasks_checks_its_arguments(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(TaskOptionError, match=message):
        await omniq.list_tasks(**options)


async def test_tasks_read_like_dicts(autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ) -> None:
    task_id = await omniq.enqueue(rt_echo, 1, key="v", priority=3)
    (task,) = await omniq.list_tasks()
    assert task["id"] == task_id
    assert task["status"] == TaskStatus.PENDING
    assert task["status"] == "pending"
    assert task["priority"] == 3
    assert dict(task)["kwargs"] == {"key": "v"}
    with pytest.raises(KeyError):
        task["nope"]
