"""Named queues in worker pools: which queues a pool claims from, per-queue caps, pause and
resume while running, rate limits, unique keys through the client, and interval slots."""

from __future__ import annotations

import pytest
import trio

from omniq_trio import (
    AsyncOmniQ,
    Call,
    ConfigError,
    Enqueued,
    RateLimit,
    Settings,
    TaskOptionError,
    TaskStatus,
    UniqueConflictError,
)
from omniq_trio.testing import drain
from tests.runtime.conftest import SETTINGS, running
from tests.tasks import RuntimeProbe, rt_flaky, rt_sleep


def most_at_once(probe: RuntimeProbe, label: str | None = None) -> int:
    """The most runs (of ``label``, or of any) that were running at one time."""
    events = sorted(
        [(t, 1) for name, t in probe.starts if label in (None, name)]
        + [(t, -1) for name, t in probe.ends if label in (None, name)],
        key=lambda e: (e[0], e[1]),  # at equal times, ends first
    )
    running = most = 0
    for _, delta in events:
        running += delta
        most = max(most, running)
    return most


async def test_per_queue_caps_hold_within_the_pools_concurrency(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    await omniq.enqueue_many(
        [Call(rt_sleep, ("emails", 10.0), queue="emails") for _ in range(6)]
        + [Call(rt_sleep, ("reports", 10.0), queue="reports") for _ in range(3)]
        + [Call(rt_sleep, ("default", 10.0)) for _ in range(6)]
    )
    caps = {"emails": 2, "reports": 1, "default": None}
    async with running(omniq, concurrency=5, queues=caps) as pool:
        assert pool.queues == caps
        assert pool.settings.queues == ("emails=2", "reports=1", "default")
        await trio.sleep(100)
    assert probe.started("emails") == [0.0, 0.0, 10.0, 10.0, 20.0, 20.0]
    assert probe.started("reports") == [0.0, 10.0, 20.0]
    assert probe.started("default") == [0.0, 0.0, 10.0, 10.0, 20.0, 20.0]
    assert (most_at_once(probe, "emails"), most_at_once(probe, "reports")) == (2, 1)
    assert most_at_once(probe) == 5


async def test_a_capped_queue_gets_its_room_back_when_one_of_its_runs_ends(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    # the default queue stays busy and empty of due work: only the end of an
    # emails run (not new work) can wake the poller for the next email
    await omniq.enqueue_many(
        [Call(rt_sleep, ("emails", 2.5), queue="emails") for _ in range(3)]
        + [Call(rt_sleep, ("default", 1.0), delay=100)]
    )
    caps = {"emails": 1, "default": None}
    async with running(omniq, concurrency=4, queues=caps, poll_interval=600):
        await trio.sleep(200)
    assert probe.started("emails") == [0.0, 2.5, 5.0]
    assert probe.started("default") == [100.0]


async def test_a_pool_claims_only_from_its_queues_in_priority_then_fifo_order(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    await omniq.enqueue(rt_sleep, "low-a", queue="low")
    await omniq.enqueue(rt_sleep, "high-b", queue="high", priority=5)
    await omniq.enqueue(rt_sleep, "high-c", queue="high")
    await omniq.enqueue(rt_sleep, "low-d", queue="low")
    other = await omniq.enqueue(rt_sleep, "other", queue="other")
    plain = await omniq.enqueue(rt_sleep, "plain")
    # list order is not a priority: "low" first in the list changes nothing
    async with running(omniq, concurrency=1, queues=["low", "high"]) as pool:
        assert pool.queues == {"low": None, "high": None}
        await trio.sleep(10)
    assert probe.order() == ["high-b", "low-a", "high-c", "low-d"]
    assert (await omniq.get_task(other)).status is TaskStatus.PENDING
    assert (await omniq.get_task(plain)).status is TaskStatus.PENDING
    # a pool without queues= runs every queue (the seed's omniq.worker())
    async with running(omniq) as pool:
        assert pool.queues is None
        await trio.sleep(10)
    assert probe.order()[4:] == ["other", "plain"]


async def test_pausing_a_queue_lets_running_tasks_finish_and_starts_nothing_more(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    await omniq.enqueue_many([Call(rt_sleep, ("emails", 10.0), queue="emails") for _ in range(3)])
    await omniq.enqueue(rt_sleep, "default", 10.0)
    async with running(omniq, concurrency=1):
        await trio.sleep(5)
        await omniq.pause_queue("emails")
        (default, emails) = await omniq.list_queues()  # by name
        assert (emails.name, emails.paused, emails.counts[TaskStatus.RUNNING]) == (
            "emails",
            True,
            1,
        )
        assert (default.name, default.paused) == ("default", False)
        await trio.sleep(25)
        await omniq.resume_queue("emails")
        await trio.sleep(50)
    # the running email finishes (10); the other queue goes on (10-20); emails
    # wait for the resume (30)
    assert probe.starts == [("emails", 0.0), ("default", 10.0), ("emails", 30.0), ("emails", 40.0)]
    assert not any(queue.paused for queue in await omniq.list_queues())


async def test_a_rate_limit_spaces_the_starts_of_its_queue_only(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    await omniq.set_queue_limit("api", max_starts=2, per=10)
    await omniq.enqueue_many([Call(rt_sleep, ("api",), queue="api") for _ in range(6)])
    await omniq.enqueue_many([Call(rt_sleep, ("default",)) for _ in range(2)])
    async with running(omniq, concurrency=4, poll_interval=600):
        await trio.sleep(25)
        (api, _) = await omniq.list_queues()  # api, default
        assert api.limit == RateLimit(2, 10.0)
        await omniq.enqueue_many([Call(rt_sleep, ("api",), queue="api") for _ in range(3)])
        await omniq.clear_queue_limit("api")
        await trio.sleep(1)
    assert probe.started("api") == [0.0, 0.0, 10.0, 10.0, 20.0, 20.0, 25.0, 25.0, 25.0]
    assert probe.started("default") == [0.0, 0.0]


async def test_a_rate_limit_holds_across_pools(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, probe: RuntimeProbe
) -> None:
    await omniq.set_queue_limit("api", max_starts=3, per=10)
    await omniq.enqueue_many([Call(rt_sleep, ("api", 1.0), queue="api") for _ in range(7)])
    other = AsyncOmniQ(SETTINGS, store=omniq.store)  # another client's pools, one store
    async with running(omniq, concurrency=4), running(other, concurrency=4):
        await trio.sleep(30)
    assert probe.started("api") == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


async def test_bad_queue_controls_are_refused_and_change_nothing(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    for call, message in [
        (omniq.set_queue_limit("api", max_starts=0, per=1), "max_starts must be an integer >= 1"),
        (omniq.set_queue_limit("api", max_starts=-3, per=1), "got -3"),
        (omniq.set_queue_limit("api", max_starts=1, per=-1), "per must be > 0 seconds, got -1"),
        (omniq.set_queue_limit("a b", max_starts=1, per=1), "queue name must be a queue name"),
        (omniq.pause_queue(""), "got ''"),
        (omniq.enqueue(rt_sleep, "x", queue="-x"), "queue must be a queue name.*got '-x'"),
        (
            omniq.enqueue(rt_sleep, "x", unique_key="k", unique_for=-1),
            "unique_for must be >= 0 seconds, got -1",
        ),
    ]:
        with pytest.raises(TaskOptionError, match=message):
            await call
    assert await omniq.list_queues() == []
    for queues, message in [
        (["emails", "emails"], "names queue 'emails' twice"),
        ({"emails": 0}, "the cap of 'emails' must be an integer >= 1, got 0"),
        (["emails=x"], "the cap of 'emails' must be a whole number >= 1, got 'x'"),
        (["bad name"], "queues entry must be a queue name"),
        ("", "names no queue"),
        (5, "must be a list of queue names or a mapping"),
    ]:
        with pytest.raises(ConfigError, match=message):
            omniq.worker(queues=queues)  # type: ignore[arg-type]


def test_queues_come_from_settings_and_omniq_queues() -> None:
    settings = Settings.from_env({"OMNIQ_QUEUES": "emails=2, default"}, backend="memory")
    assert settings.queues == ("emails=2", "default")
    pool = AsyncOmniQ(settings).worker()
    assert pool.queues == {"emails": 2, "default": None}
    assert Settings(queues={"a": None, "b": 3}).queues == ("a", "b=3")
    assert AsyncOmniQ(Settings(backend="memory")).worker().queues is None
    with pytest.raises(ConfigError, match=r"OMNIQ_QUEUES='emails=0'.*must be an integer >= 1"):
        Settings.from_env({"OMNIQ_QUEUES": "emails=0"})
    with pytest.raises(ConfigError, match=r"queues entry must be a queue name.*got 'a b'"):
        Settings(queues=["a b"])


async def test_unique_keys_through_the_client(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    first = await omniq.enqueue(rt_sleep, "a", 5.0, unique_key="user-42")
    assert await omniq.enqueue(rt_sleep, "b", unique_key="user-42") == first
    created = await omniq.enqueue_calls(
        [
            Call(rt_sleep, ("c",), unique_key="user-42"),
            Call(rt_sleep, ("d",), unique_key="user-7"),
            Call(rt_sleep, ("e",), unique_key="user-7"),
        ]
    )
    assert created[0] == Enqueued(first, False)
    assert created[1].created and created[2] == Enqueued(created[1].id, False)
    async with running(omniq, concurrency=2):
        assert await omniq.enqueue(rt_sleep, "f", unique_key="user-42") == first  # running
        await trio.sleep(10)
        # finished: the key is free again, unless unique_for covers the finish
        again = await omniq.enqueue(rt_sleep, "g", unique_key="user-42")
        assert again != first
        await trio.sleep(10)
        windowed = await omniq.enqueue(rt_sleep, "h", unique_key="user-42", unique_for=60)
        assert windowed == again
    assert [t.args[0] for t in await omniq.list_tasks()] == ["a", "d", "g"]


async def test_retrying_a_failed_task_whose_key_is_taken_is_a_named_error(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    failed = await omniq.enqueue(rt_flaky, "k", 1, unique_key="job")
    await drain(omniq)
    assert (await omniq.get_task(failed)).status is TaskStatus.FAILED
    holder = await omniq.enqueue(rt_sleep, "holder", unique_key="job", delay=60)
    with pytest.raises(UniqueConflictError, match=f"held by task {holder}") as caught:
        await omniq.retry(failed)
    assert (caught.value.task_id, caught.value.unique_key) == (failed, "job")
    assert (await omniq.get_task(failed)).status is TaskStatus.FAILED
    await drain(omniq)
    await omniq.retry(failed)  # the holder finished: the key is free
    assert (await omniq.get_task(failed)).status is TaskStatus.PENDING


async def test_a_retried_run_of_an_interval_task_does_not_move_its_later_slots(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    async with AsyncOmniQ(SETTINGS.evolve(retry_backoff=1.0)) as omniq:
        task_id = await omniq.enqueue(rt_flaky, "tick", 2, interval=60, max_retries=2)
        async with running(omniq):
            await trio.sleep(150)
            task = await omniq.get_task(task_id)
    # slot 0 fails twice (retries after 1 s and 2 s) and succeeds at 3; the
    # next slot stays at 60, not 63
    assert probe.started("tick") == [0.0, 1.0, 3.0, 60.0, 120.0]
    assert task.scheduled_at == task.eta == task.created_at + 180


async def test_drain_does_not_wait_for_tasks_of_a_paused_queue(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    await omniq.pause_queue("later")
    held = await omniq.enqueue(rt_sleep, "held", queue="later")
    ran = await omniq.enqueue(rt_sleep, "ran")
    results = await drain(omniq)
    assert list(results) == [ran]
    assert (await omniq.get_task(held)).status is TaskStatus.PENDING
    await omniq.resume_queue("later")
    assert list(await drain(omniq)) == [held, ran]
