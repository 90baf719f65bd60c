"""Testing tasks with trio's MockClock: a test module to copy next to your own tests.

Hours of retries, repeating tasks, timeouts and a graceful stop, each checked
in milliseconds and to the exact virtual second. Needs pytest and pytest-trio;
the ``omniq`` fixture comes from omniq_trio's pytest plugin, installed with it.

    pytest examples/test_with_mockclock.py
"""

from __future__ import annotations

from collections import Counter

import pytest
import trio
import trio.testing

from omniq_trio import AsyncOmniQ, Settings, TaskTimeoutError
from omniq_trio.testing import TEST_SETTINGS, assert_counts, assert_task, drain

# Not needed when your pytest configuration says `trio_mode = true`.
pytestmark = pytest.mark.trio

MINUTE, HOUR = 60.0, 3600.0


# --8<-- [start:tasks]
# The code under test: tasks as they would be in your app.
class GatewayDown(Exception):
    """The payment gateway did not answer."""


OUTAGE: Counter[str] = Counter()  # how many more calls fail, per order (test set-up)


async def charge(order_id: str) -> str:
    if OUTAGE[order_id] > 0:
        OUTAGE[order_id] -= 1
        raise GatewayDown(f"no answer for order {order_id}")
    return f"charged {order_id}"


async def send_digest() -> str:
    return "digest sent"


async def fetch_report(seconds: float) -> str:
    await trio.sleep(seconds)  # a slow upstream
    return "report"


# --8<-- [end:tasks]


# --8<-- [start:settings]
@pytest.fixture
def omniq_settings() -> Settings:
    """The plugin's test settings, with this app's retry policy: 10 minutes, doubling."""
    return TEST_SETTINGS.evolve(retry_backoff=10 * MINUTE, retry_backoff_max=6 * HOUR)


# --8<-- [end:settings]


# --8<-- [start:retries]
async def test_a_payment_retried_over_hours(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    OUTAGE["A-1"] = 4  # the gateway is down for the first four calls
    task_id = await omniq.enqueue(charge, "A-1", max_retries=5)

    results = await drain(omniq)  # jumps the clock to each retry

    assert results[task_id].value == "charged A-1"
    await assert_task(omniq, task_id, status="success", attempts=5)
    # runs at 0, 10 min, 30 min, 70 min and 150 min: 2.5 hours, simulated
    assert trio.current_time() == pytest.approx(2.5 * HOUR)


async def test_a_payment_that_spends_its_retries(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    OUTAGE["B-2"] = 100
    task_id = await omniq.enqueue(charge, "B-2", max_retries=2)
    await drain(omniq)
    await assert_task(omniq, task_id, status="failed", attempts=3, error=GatewayDown)


# --8<-- [end:retries]


# --8<-- [start:interval]
async def test_an_hourly_digest_for_a_day(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    task_id = await omniq.enqueue(send_digest, interval=HOUR)
    await drain(omniq, within=24 * HOUR)  # every run due in the next 24 hours
    assert trio.current_time() == pytest.approx(24 * HOUR)
    result = await omniq.get_result(task_id)
    assert result is not None and result.value == "digest sent"
    await assert_task(omniq, task_id, status="pending")  # the next run is due at 25 h
    assert await omniq.cancel(task_id)


# --8<-- [end:interval]


# --8<-- [start:timeout]
async def test_a_slow_upstream_times_out(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    slow = await omniq.enqueue(fetch_report, 5 * MINUTE, timeout=MINUTE)
    fast = await omniq.enqueue(fetch_report, 10.0, timeout=MINUTE)
    await drain(omniq, concurrency=2)
    await assert_task(omniq, slow, status="failed", error=TaskTimeoutError)
    await assert_task(omniq, fast, status="success", value="report")
    await assert_counts(omniq, success=1, failed=1)
    assert trio.current_time() == pytest.approx(MINUTE)  # the slow one was cut off at 60 s


# --8<-- [end:timeout]


# --8<-- [start:shutdown]
async def test_a_stop_requeues_what_did_not_finish(
    omniq: AsyncOmniQ, autojump_clock: trio.testing.MockClock
) -> None:
    task_id = await omniq.enqueue(fetch_report, HOUR)
    async with trio.open_nursery() as nursery:
        workers = omniq.worker()
        await nursery.start(workers.run)
        await trio.sleep(MINUTE)
        await workers.stop(timeout=30)  # 30 s of grace, then it is cancelled
    assert trio.current_time() == pytest.approx(MINUTE + 30)
    # back in the queue for the next worker, with no attempt charged
    await assert_task(omniq, task_id, status="pending", attempts=0)


# --8<-- [end:shutdown]
