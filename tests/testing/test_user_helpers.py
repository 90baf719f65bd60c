"""``omniq_trio.testing`` used the way a user would: the plugin's fixtures, ``drain``, assertions.

This module imports public names only, and relies on the pytest plugin's
fixtures. Anyone who installs omniq_trio gets the plugin through its pytest11
entry point; this suite loads the same module from ./conftest.py instead
(so that coverage sees the package imported), and the docs tests run a
reader's test module in a pytest of its own, through the entry point.
"""

from __future__ import annotations

import importlib.metadata
import time
import uuid
from collections import defaultdict

import pytest
import trio
import trio.testing

from omniq_trio import AsyncOmniQ, Settings, TaskStatus, TaskTimeoutError
from omniq_trio.testing import (
    TEST_SETTINGS,
    assert_counts,
    assert_task,
    drain,
    open_test_omniq,
)

HOUR = 3600.0

#: trio time of each run, per key (tasks run inline on the test's trio thread)
RUNS: defaultdict[str, list[float]] = defaultdict(list)


def new_key() -> str:
    return uuid.uuid4().hex


async def greet(name: str) -> str:
    return f"hello {name}"


def add(a: int, b: int) -> int:
    return a + b


async def flaky(key: str, failures: int) -> int:
    """Fails ``failures`` times (a flaky network, say), then succeeds."""
    RUNS[key].append(trio.current_time())
    if len(RUNS[key]) <= failures:
        raise ConnectionError(f"attempt {len(RUNS[key])} could not connect")
    return len(RUNS[key])


async def tick(key: str) -> int:
    RUNS[key].append(trio.current_time())
    return len(RUNS[key])


async def slow(seconds: float) -> str:
    await trio.sleep(seconds)
    return "done"


async def hang() -> None:
    await trio.sleep_forever()


#: queues that tasks enqueue follow-ups on, per key
QUEUES: dict[str, AsyncOmniQ] = {}


async def enqueue_follow_up(key: str) -> str:
    return await QUEUES[key].enqueue(greet, "follow-up", delay=HOUR)


def test_the_plugin_has_its_entry_point(pytestconfig: pytest.Config) -> None:
    (entry,) = (
        e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "omniq_trio"
    )
    assert entry.value == "omniq_trio.testing.pytest_plugin"
    assert pytestconfig.pluginmanager.has_plugin(entry.value)


async def test_the_fixture_is_an_open_memory_queue(
    omniq: AsyncOmniQ, omniq_settings: Settings
) -> None:
    assert omniq.settings == omniq_settings == TEST_SETTINGS
    assert omniq.settings.backend == "memory"
    assert await omniq.list_tasks() == []


async def test_drain_runs_everything_due_and_returns_results(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    first = await omniq.enqueue(greet, "ada")
    second = await omniq.enqueue(add, 2, 3)  # a sync task: runs inline under TEST_SETTINGS
    results = await drain(omniq)
    assert list(results) == [first, second]
    assert [r.value for r in results.values()] == ["hello ada", 5]
    assert all(r.ok for r in results.values())
    assert trio.current_time() == 0.0  # running tasks takes no virtual time
    await assert_counts(omniq, success=2, pending=0)


async def test_drain_waits_for_work_that_tasks_enqueue(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    key = new_key()
    QUEUES[key] = omniq
    first = await omniq.enqueue(enqueue_follow_up, key)
    results = await drain(omniq)
    follow_up = results[first].value
    assert results[follow_up].value == "hello follow-up"
    assert trio.current_time() == pytest.approx(HOUR)


@pytest.mark.parametrize(
    "omniq_settings", [TEST_SETTINGS.evolve(retry_backoff=HOUR / 2, retry_backoff_max=8 * HOUR)]
)
async def test_a_retrying_task_over_simulated_hours(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    key = new_key()
    task_id = await omniq.enqueue(flaky, key, failures=3, max_retries=3)
    results = await drain(omniq)
    # backoff doubles from half an hour: runs at 0, 0.5 h, 1.5 h and 3.5 h
    assert RUNS[key] == pytest.approx([0, HOUR / 2, 1.5 * HOUR, 3.5 * HOUR])
    assert trio.current_time() == pytest.approx(3.5 * HOUR)
    assert results[task_id].value == 4
    task = await assert_task(omniq, task_id, status=TaskStatus.SUCCESS, attempts=4, value=4)
    assert task.error is None  # a success clears the error of the attempts before it


async def test_a_task_that_spends_its_retries_fails(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    key = new_key()
    task_id = await omniq.enqueue(flaky, key, failures=10, max_retries=2)
    results = await drain(omniq)
    assert not results[task_id].ok
    await assert_task(
        omniq, task_id, status="failed", attempts=3, error="ConnectionError: attempt 3"
    )
    # TEST_SETTINGS: backoff 1 s doubling, no jitter
    assert RUNS[key] == pytest.approx([0, 1, 3])


async def test_an_interval_task_within_a_horizon(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    key = new_key()
    task_id = await omniq.enqueue(tick, key, interval=60)
    results = await drain(omniq, within=300)
    assert RUNS[key] == pytest.approx([0, 60, 120, 180, 240, 300])
    assert trio.current_time() == pytest.approx(300)
    assert results[task_id].value == 6  # the latest run's
    # each run of a repeating task starts with a fresh retry budget
    await assert_task(omniq, task_id, status="pending", attempts=0)
    # without a horizon, drain runs it only while it is due: not yet
    await drain(omniq)
    assert len(RUNS[key]) == 6
    await drain(omniq, within=60)
    assert len(RUNS[key]) == 7
    assert await omniq.cancel(task_id)


async def test_delay_and_eta_are_waited_for(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    later = await omniq.enqueue(greet, "later", delay=HOUR / 2)
    latest = await omniq.enqueue(greet, "latest", eta=time.time() + HOUR / 2 + 10)
    now = await omniq.enqueue(greet, "now")
    results = await drain(omniq)
    # wall time under MockClock is anchored to time.time() when first read, so an
    # eta computed from time.time() lands within milliseconds of the virtual time
    assert trio.current_time() == pytest.approx(HOUR / 2 + 10, abs=1)
    assert [results[i].value for i in (later, latest, now)] == [
        "hello later",
        "hello latest",
        "hello now",
    ]
    started, finished = results[later].started_at, results[now].finished_at
    assert started is not None and finished is not None
    assert started - finished == pytest.approx(HOUR / 2)


async def test_timeouts_are_virtual_too(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    timed_out = await omniq.enqueue(slow, 60, timeout=5)
    finished = await omniq.enqueue(slow, 60, timeout=120)
    await drain(omniq, concurrency=2)
    await assert_task(omniq, timed_out, status="failed", attempts=1, error=TaskTimeoutError)
    await assert_task(omniq, finished, status="success", value="done")
    assert trio.current_time() == pytest.approx(60)


async def test_drain_gives_up_on_a_task_that_never_ends(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    task_id = await omniq.enqueue(hang)
    with pytest.raises(trio.TooSlowError, match=task_id):
        await drain(omniq, timeout=600)
    assert trio.current_time() == pytest.approx(600)
    # the worker stopped and handed the task back: nothing is left running
    await assert_task(omniq, task_id, status="pending", attempts=0)


async def test_drain_moves_a_mock_clock_that_does_not_autojump(
    omniq: AsyncOmniQ, mock_clock: trio.testing.MockClock
) -> None:
    task_id = await omniq.enqueue(slow, 30, delay=HOUR)
    results = await drain(omniq)
    assert results[task_id].value == "done"
    assert trio.current_time() == pytest.approx(HOUR + 30)
    assert mock_clock.autojump_threshold == float("inf")  # as it was


async def test_assert_task_says_what_differs(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    task_id = await omniq.enqueue(flaky, new_key(), failures=1)
    await drain(omniq)
    with pytest.raises(AssertionError) as caught:
        await assert_task(omniq, task_id, status="success", attempts=2, value=1)
    message = str(caught.value)
    assert "status is 'failed', expected 'success'" in message
    assert "attempts is 1, expected 2" in message
    assert "has no result yet" not in message and "value is None, expected 1" in message
    assert "ConnectionError: attempt 1 could not connect" in message  # the last traceback
    with pytest.raises(AssertionError, match="error is a ConnectionError, expected ValueError"):
        await assert_task(omniq, task_id, error=ValueError)


async def test_assert_counts(omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock) -> None:
    await omniq.enqueue(greet, "a")
    await omniq.enqueue(greet, "b", delay=60)
    await assert_counts(omniq, pending=2, success=0)
    with pytest.raises(AssertionError, match="pending is 2, expected 1"):
        await assert_counts(omniq, pending=1)
    with pytest.raises(TypeError, match="use keywords among"):
        await assert_counts(omniq, done=1)
    await drain(omniq)
    await assert_counts(omniq, success=2, pending=0, running=0)


async def test_open_test_omniq_without_pytest_fixtures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_test_omniq(default_max_retries=2, retry_backoff=HOUR) as omniq:
        key = new_key()
        task_id = await omniq.enqueue(flaky, key, failures=2)
        await drain(omniq)
        await assert_task(omniq, task_id, status="success", attempts=3)
        assert trio.current_time() == pytest.approx(2 * 300)  # backoff capped by retry_backoff_max
