"""The Store contract for routing and control: named queues, pause, rate limits, unique
keys, lost runs, progress, retention, cron slots, the worker registry, and listings."""

from __future__ import annotations

import attrs

from ..errors import LeaseLostError, TaskNotFoundError, UniqueConflictError, WorkerLostError
from ..models import (
    Enqueued,
    Progress,
    RateLimit,
    ScheduleInfo,
    TaskStatus,
    WorkerInfo,
)
from ._store_kit import (
    ERROR,
    LEASE,
    T0,
    W1,
    W2,
    MakeStore,
    all_tasks,
    claim,
    make_task,
    new_name,
    raises,
)

__all__ = ["FEATURE_CHECKS"]


def _ids(tasks: list) -> list[str]:  # type: ignore[type-arg]
    return [t.id for t in tasks]


async def check_named_queues(make_store: MakeStore) -> None:
    """A claim takes from the queues named, at most each one's budget, in claim order."""
    async with make_store(new_name()) as store:
        a1 = make_task(queue="a", priority=1)
        a2 = make_task(queue="a", priority=1)
        b1 = make_task(queue="b", eta=T0 - 5)
        d1 = make_task()
        await store.enqueue([a1, a2, b1, d1])
        assert await store.next_due(now=T0, queues=["nothing"]) is None
        assert await store.next_due(now=T0 - 10, queues=["b"]) == T0 - 5
        assert await claim(store, queues={"c": 4}) == []
        got = await claim(store, queues={"a": 1, "b": 5})
        assert _ids(got) == [a1.id, b1.id], got
        assert [t.queue for t in got] == ["a", "b"]
        assert _ids(await claim(store, queues={"default": 1, "a": 0})) == [d1.id]
        assert _ids(await claim(store)) == [a2.id]
        stats = await store.stats(now=T0)
        assert stats.queues["a"][TaskStatus.RUNNING] == 2
        assert set(stats.queues) == {"a", "b", "default"}
        infos = {q.name: q for q in await store.list_queues()}
        assert set(infos) == {"a", "b", "default"}
        assert infos["a"].counts[TaskStatus.RUNNING] == 2 and not infos["a"].paused


async def check_pause_queue(make_store: MakeStore) -> None:
    """A paused queue is skipped by claims and next_due until resumed; the pause is stored."""
    name = new_name()
    async with make_store(name) as store:
        held, free = make_task(queue="held"), make_task(queue="free", eta=T0 + 1)
        await store.enqueue([held, free])
        await store.pause_queue("held", paused=True)
        assert await claim(store) == []
        assert await store.next_due(now=T0) == T0 + 1
        assert await store.next_due(now=T0, queues=["held"]) is None
        (info,) = [q for q in await store.list_queues() if q.name == "held"]
        assert info.paused
    async with make_store(name) as store:
        assert _ids(await claim(store, now=T0 + 1)) == [free.id]
        await store.pause_queue("held", paused=False)
        assert _ids(await claim(store, now=T0 + 1)) == [held.id]
        await store.pause_queue("empty", paused=True)
        assert "empty" in {q.name for q in await store.list_queues()}
        await store.pause_queue("empty", paused=False)
        assert "empty" not in {q.name for q in await store.list_queues()}


async def check_rate_limit(make_store: MakeStore) -> None:
    """At most max_starts claims of a limited queue in any ``per`` seconds, across workers."""
    name = new_name()
    async with make_store(name) as store:
        tasks = [make_task(queue="api") for _ in range(5)]
        await store.enqueue(tasks)
        await store.set_queue_limit("api", RateLimit(2, 10.0))
        assert len(await claim(store, W1, limit=1)) == 1
        assert len(await claim(store, W2, now=T0 + 1)) == 1
        assert await claim(store, W1, now=T0 + 5) == []
        assert await store.next_due(now=T0 + 5) == T0 + 10
        (info,) = await store.list_queues()
        assert info.limit == RateLimit(2, 10.0)
    async with make_store(name) as store:
        assert len(await claim(store, W1, now=T0 + 10)) == 1
        assert await claim(store, W1, now=T0 + 10.5) == []
        await store.set_queue_limit("api", None)
        assert len(await claim(store, W1, now=T0 + 10.5)) == 2


async def check_unique_keys(make_store: MakeStore) -> None:
    """A live task with a unique key makes later enqueues of the key create nothing."""
    async with make_store(new_name()) as store:
        first = make_task(unique_key="k")
        dup_a, dup_b, other = make_task(unique_key="k"), make_task(unique_key="k"), make_task()
        assert await store.enqueue([first]) == [Enqueued(first.id, True)]
        assert await store.enqueue([dup_a, other, dup_b]) == [
            Enqueued(first.id, False),
            Enqueued(other.id, True),
            Enqueued(first.id, False),
        ]
        await raises(TaskNotFoundError, store.get_task(dup_a.id))
        batch = [make_task(unique_key="j"), make_task(unique_key="j")]
        assert await store.enqueue(batch) == [
            Enqueued(batch[0].id, True),
            Enqueued(batch[0].id, False),
        ]
        # running still holds the key
        await claim(store)
        assert (await store.enqueue([make_task(unique_key="k")]))[0] == Enqueued(first.id, False)
        await store.fail(first.id, worker_id=W1, error=ERROR, at=T0 + 10)
        # finished: free, unless unique_for covers its finish
        within = make_task(unique_key="k", unique_for=5.0, created_at=T0 + 15)
        assert await store.enqueue([within]) == [Enqueued(first.id, False)]
        later = make_task(unique_key="k", unique_for=5.0, created_at=T0 + 15.5)
        assert await store.enqueue([later]) == [Enqueued(later.id, True)]
        # the failed holder cannot be retried while the new task holds the key
        await raises(UniqueConflictError, store.retry(first.id, at=T0 + 20))
        await claim(store, now=T0 + 20)
        await store.complete(later.id, worker_id=W1, value=None, at=T0 + 21)
        await store.retry(first.id, at=T0 + 22)
        again = make_task(unique_key="k")
        assert await store.enqueue([again]) == [Enqueued(first.id, False)]


async def check_lost_runs(make_store: MakeStore) -> None:
    """Each expired lease counts a lost run; past max_lost_runs the task is FAILED."""
    async with make_store(new_name()) as store:
        task = make_task(max_lost_runs=1)
        await store.enqueue([task])
        await claim(store)
        await store.release([task.id], worker_id=W1)
        assert (await store.get_task(task.id)).lost_runs == 0, "a release is not a lost run"
        await claim(store)
        reclaimed = await store.reclaim_expired(now=T0 + LEASE + 1)
        assert (reclaimed.requeued, reclaimed.failed) == ((task.id,), ())
        assert (await store.get_task(task.id)).lost_runs == 1
        now = T0 + 100
        await claim(store, W2, now=now)
        reclaimed = await store.reclaim_expired(now=now + LEASE + 1)
        assert (reclaimed.requeued, reclaimed.failed) == ((), (task.id,))
        failed = await store.get_task(task.id)
        assert (failed.status, failed.lost_runs, failed.attempts) == (TaskStatus.FAILED, 2, 0)
        assert failed.error is not None
        assert failed.error.type == f"{WorkerLostError.__module__}.{WorkerLostError.__qualname__}"
        assert W2 in failed.error.message
        result = await store.get_result(task.id)
        assert result is not None and result.status is TaskStatus.FAILED
        assert result.error == failed.error
        await store.retry(task.id, at=now + 100)
        assert (await store.get_task(task.id)).lost_runs == 0


async def check_progress(make_store: MakeStore) -> None:
    """Only the holder reports progress; a new run starts without it."""
    async with make_store(new_name()) as store:
        task = make_task(max_retries=1)
        await store.enqueue([task])
        await raises(LeaseLostError, store.set_progress(task.id, worker_id=W1, progress=_P))
        await claim(store)
        await store.set_progress(task.id, worker_id=W1, progress=_P)
        assert (await store.get_task(task.id)).progress == _P
        await raises(LeaseLostError, store.set_progress(task.id, worker_id=W2, progress=_P))
        await raises(TaskNotFoundError, store.set_progress("nope", worker_id=W1, progress=_P))
        await store.fail(task.id, worker_id=W1, error=ERROR, at=T0 + 1, retry_at=T0 + 2)
        assert (await store.get_task(task.id)).progress == _P, "kept after the run"
        (again,) = await claim(store, now=T0 + 2)
        assert again.progress is None
        assert (await store.get_task(task.id)).progress is None


_P = Progress(0.25, "a quarter ✓", T0 + 0.5)


async def check_retention(make_store: MakeStore) -> None:
    """Purge has one horizon for FAILED tasks and another for the rest."""
    async with make_store(new_name()) as store:
        ok, failed, cancelled = make_task(), make_task(), make_task()
        await store.enqueue([ok, failed, cancelled])
        await claim(store, limit=2)
        await store.complete(ok.id, worker_id=W1, value=1, at=T0 + 1)
        await store.fail(failed.id, worker_id=W1, error=ERROR, at=T0 + 1)
        await store.cancel(cancelled.id, at=T0 + 1)
        assert await store.purge(finished_before=T0 + 10, failed_before=T0) == 2
        assert _ids(await all_tasks(store)) == [failed.id]
        assert await store.purge(finished_before=T0 + 10, failed_before=T0 + 1) == 0
        assert await store.purge(finished_before=T0, failed_before=T0 + 2) == 1


async def check_fire_schedule(make_store: MakeStore) -> None:
    """Each slot of a schedule fires once, however many stores (processes) try."""
    name = new_name()
    info = ScheduleInfo("nightly", "tests.tasks:noop", "0 3 * * *", "Europe/Paris", "default")
    async with make_store(name) as one, make_store(name) as two:
        first = make_task(unique_key="nightly@1")
        assert await one.fire_schedule("nightly", slot=T0, task=first) == Enqueued(first.id, True)
        assert await two.fire_schedule("nightly", slot=T0, task=make_task()) is None
        assert await one.fire_schedule("nightly", slot=T0 - 60, task=make_task()) is None
        assert await two.list_schedules() == []
        await two.register_schedules([attrs.evolve(info, next_slot=T0 + 86_400, updated_at=T0)])
        (listed,) = await one.list_schedules()
        assert (listed.name, listed.cron, listed.timezone) == (
            "nightly",
            "0 3 * * *",
            "Europe/Paris",
        )
        assert (listed.last_slot, listed.next_slot) == (T0, T0 + 86_400)
        await one.register_schedules([attrs.evolve(info, last_slot=T0 - 86_400)])
        assert (await two.list_schedules())[0].last_slot == T0, "never moved back"
        later = make_task()
        got = await two.fire_schedule("nightly", slot=T0 + 86_400, task=later)
        assert got == Enqueued(later.id, True)
        assert _ids(await all_tasks(one)) == [first.id, later.id]
    async with make_store(name) as store:
        assert (await store.list_schedules())[0].last_slot == T0 + 86_400
        assert await store.fire_schedule("nightly", slot=T0 + 86_400, task=make_task()) is None


async def check_worker_registry(make_store: MakeStore) -> None:
    """Pools record themselves; an expired heartbeat or an unregister drops them."""
    async with make_store(new_name()) as store:
        one = _worker(W1, started_at=T0, last_seen=T0)
        two = _worker(W2, started_at=T0 + 1, last_seen=T0 + 1, queues=("a", "b"))
        await store.register_worker(one)
        await store.register_worker(two)
        assert await store.list_workers(now=T0 + 2) == [one, two]
        fresh = attrs.evolve(one, last_seen=T0 + 20, expires_at=T0 + 20 + LEASE, running=("x",))
        await store.register_worker(fresh)
        assert await store.list_workers(now=T0 + 1 + LEASE + 1) == [fresh]
        await store.unregister_worker(W1)
        await store.unregister_worker("nobody")
        assert await store.list_workers(now=T0 + 2) == [two]


def _worker(
    worker_id: str, *, started_at: float, last_seen: float, queues: tuple[str, ...] | None = None
) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        hostname="host-1",
        pid=4242,
        concurrency=4,
        queues=queues,
        started_at=started_at,
        last_seen=last_seen,
        expires_at=last_seen + LEASE,
        succeeded=3,
        failed=1,
    )


async def check_listing(make_store: MakeStore) -> None:
    """Listings filter by status, queue, function and id prefix, and page by cursor."""
    async with make_store(new_name()) as store:
        tasks = [
            make_task(
                id=f"{i:02d}" + "f" * 30,
                queue="a" if i % 2 else "b",
                func="tests.tasks:one" if i < 5 else "tests.tasks:two",
            )
            for i in range(10)
        ]
        await store.enqueue(tasks)
        await claim(store, limit=3)
        page = await store.list_tasks(status=TaskStatus.PENDING, queue="a")
        assert _ids(page.tasks) == [t.id for t in tasks[3:] if t.queue == "a"]
        assert page.next_cursor is None
        both = frozenset({TaskStatus.RUNNING, TaskStatus.PENDING})
        assert len((await store.list_tasks(status=both)).tasks) == 10
        assert _ids((await store.list_tasks(func="tests.tasks:two", queue="b")).tasks) == [
            tasks[6].id,
            tasks[8].id,
        ]
        assert _ids((await store.list_tasks(id_prefix="07")).tasks) == [tasks[7].id]
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.list_tasks(limit=3, cursor=cursor)
            seen += _ids(page.tasks)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            if len(seen) == 3:  # changes between pages do not shift the pages
                await store.cancel(tasks[1].id, at=T0)
                await store.purge(finished_before=T0 + 1, failed_before=T0 + 1)
                await store.enqueue([make_task(id="zz" + "f" * 30)])
        assert seen == [t.id for t in tasks] + ["zz" + "f" * 30]
        newest = await store.list_tasks(limit=4, newest_first=True)
        assert _ids(newest.tasks) == ["zz" + "f" * 30, tasks[9].id, tasks[8].id, tasks[7].id]
        assert newest.next_cursor is not None
        rest = await store.list_tasks(limit=4, cursor=newest.next_cursor, newest_first=True)
        assert _ids(rest.tasks) == [tasks[6].id, tasks[5].id, tasks[4].id, tasks[3].id]


async def check_stats(make_store: MakeStore) -> None:
    """Counts by queue, and the eta of the oldest task due now (not of later ones)."""
    async with make_store(new_name()) as store:
        late = make_task(eta=T0 + 100, queue="x")
        due = [make_task(eta=T0 - 30), make_task(eta=T0 - 10, priority=9)]
        await store.enqueue([late, *due])
        stats = await store.stats(now=T0)
        assert stats.oldest_due_eta == T0 - 30
        assert stats.queues["x"][TaskStatus.PENDING] == 1
        assert stats.queues["default"][TaskStatus.PENDING] == 2
        assert set(stats.queues["x"]) == set(TaskStatus)
        await claim(store, now=T0, limit=10)
        assert (await store.stats(now=T0)).oldest_due_eta is None
        assert (await store.stats(now=T0 + 100)).oldest_due_eta == T0 + 100


FEATURE_CHECKS = (
    check_named_queues,
    check_pause_queue,
    check_rate_limit,
    check_unique_keys,
    check_lost_runs,
    check_progress,
    check_retention,
    check_fire_schedule,
    check_worker_registry,
    check_listing,
    check_stats,
)
