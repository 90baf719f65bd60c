"""The core of the Store contract as runnable checks: enqueue, claim, outcomes, leases,
cancel, retry, purge, reading, reopening, and concurrent claims.

Each check takes ``make_store`` (see :data:`MakeStore`) and raises
``AssertionError`` on a breach.
"""

from __future__ import annotations

from typing import Final

import trio

from ..errors import DuplicateTaskError, InvalidTransitionError, LeaseLostError, TaskNotFoundError
from ..models import Enqueued, Task, TaskStatus
from ..store import Change, Outcome, Reclaimed, Store
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

__all__ = ["CORE_CHECKS"]


def _store_state(tasks: list[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: t.id)


async def check_enqueue_and_read(make_store: MakeStore) -> None:
    """An enqueued task reads back exactly, PENDING, without a result."""
    async with make_store(new_name()) as store:
        task = make_task(
            args=(1, "two", [3.5, None], {"k": [True]}),
            kwargs={"name": "Zoë ✓", "nested": {"a": [1, 2]}},
            priority=3,
            interval=None,
            max_retries=2,
            timeout=1.5,
            retry_on_timeout=True,
            queue="emails.high",
            unique_key="user:42 ✓",
            unique_for=60.0,
            max_lost_runs=5,
            headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        )
        plain = make_task()
        assert await store.enqueue([task, plain]) == [
            Enqueued(task.id, True),
            Enqueued(plain.id, True),
        ]
        got = await store.get_task(task.id)
        assert got == task, got
        assert await store.get_task(plain.id) == plain
        assert await store.get_result(task.id) is None
        assert [t.id for t in await all_tasks(store)] == [task.id, plain.id]


async def check_enqueue_is_all_or_nothing(make_store: MakeStore) -> None:
    """A batch with a duplicate id is refused whole."""
    async with make_store(new_name()) as store:
        first = make_task()
        await store.enqueue([first])
        await raises(DuplicateTaskError, store.enqueue([make_task(), first]))
        same = make_task()
        await raises(DuplicateTaskError, store.enqueue([same, same]))
        assert [t.id for t in await all_tasks(store)] == [first.id]


async def check_unknown_ids(make_store: MakeStore) -> None:
    async with make_store(new_name()) as store:
        for call in (
            store.get_task("nope"),
            store.get_result("nope"),
            store.cancel("nope", at=T0),
            store.retry("nope", at=T0),
            store.complete("nope", worker_id=W1, value=1, at=T0),
            store.fail("nope", worker_id=W1, error=ERROR, at=T0),
        ):
            await raises(TaskNotFoundError, call)


async def check_claim_order(make_store: MakeStore) -> None:
    """Due tasks go out by priority, then eta, then enqueue order; future ones wait."""
    async with make_store(new_name()) as store:
        low_early = make_task(priority=0, eta=T0 - 10)
        low_late = make_task(priority=0, eta=T0 - 5)
        low_late_2 = make_task(priority=0, eta=T0 - 5)
        high = make_task(priority=5, eta=T0)
        future_high = make_task(priority=9, eta=T0 + 60)
        negative = make_task(priority=-1, eta=T0 - 100)
        await store.enqueue([low_late, negative, future_high, high, low_early])
        await store.enqueue([low_late_2])
        claimed = await claim(store, limit=2)
        assert [t.id for t in claimed] == [high.id, low_early.id], claimed
        claimed = await claim(store, limit=10)
        assert [t.id for t in claimed] == [low_late.id, low_late_2.id, negative.id], claimed
        assert await claim(store) == []
        assert await store.next_due(now=T0) == T0 + 60
        claimed = await claim(store, now=T0 + 60)
        assert [t.id for t in claimed] == [future_high.id]
        assert await store.next_due(now=T0 + 60) is None


async def check_claim_holds(make_store: MakeStore) -> None:
    """A claimed task is RUNNING, held by its worker, and not claimable again."""
    async with make_store(new_name()) as store:
        task = make_task()
        await store.enqueue([task])
        (claimed,) = await claim(store, now=T0 + 1)
        assert claimed.status is TaskStatus.RUNNING
        assert claimed.worker_id == W1
        assert claimed.lease_until == T0 + 1 + LEASE
        assert claimed.started_at == T0 + 1
        assert await store.get_task(task.id) == claimed
        assert await claim(store, W2, now=T0 + 2) == []


async def check_complete(make_store: MakeStore) -> None:
    """Completion stores the result once, and only from the holder."""
    async with make_store(new_name()) as store:
        task = make_task()
        await store.enqueue([task])
        await claim(store)
        await raises(LeaseLostError, store.complete(task.id, worker_id=W2, value=1, at=T0 + 1))
        await store.complete(task.id, worker_id=W1, value={"answer": [42]}, at=T0 + 1)
        done = await store.get_task(task.id)
        assert done.status is TaskStatus.SUCCESS
        assert done.attempts == 1
        assert done.finished_at == T0 + 1
        assert done.worker_id is None
        result = await store.get_result(task.id)
        assert result is not None
        assert result.status is TaskStatus.SUCCESS
        assert result.value == {"answer": [42]}
        assert (result.attempts, result.started_at, result.finished_at) == (1, T0, T0 + 1)
        await raises(LeaseLostError, store.complete(task.id, worker_id=W1, value=2, at=T0 + 2))
        assert (await store.get_result(task.id)) == result


async def check_repeating_task(make_store: MakeStore) -> None:
    """A run of a repeating task stores its result and queues the next run."""
    async with make_store(new_name()) as store:
        task = make_task(interval=60.0)
        await store.enqueue([task])
        await claim(store)
        await store.complete(task.id, worker_id=W1, value=1, at=T0 + 1, next_eta=T0 + 60)
        again = await store.get_task(task.id)
        assert (again.status, again.eta, again.attempts) == (TaskStatus.PENDING, T0 + 60, 0)
        result = await store.get_result(task.id)
        assert result is not None and result.value == 1
        assert await claim(store, now=T0 + 59) == []
        assert [t.id for t in await claim(store, now=T0 + 60)] == [task.id]
        await store.fail(task.id, worker_id=W1, error=ERROR, at=T0 + 61, next_eta=T0 + 120)
        again = await store.get_task(task.id)
        assert (again.status, again.eta, again.error) == (TaskStatus.PENDING, T0 + 120, ERROR)
        result = await store.get_result(task.id)
        assert result is not None and result.status is TaskStatus.FAILED and result.error == ERROR


async def check_fail_and_retry(make_store: MakeStore) -> None:
    """A failed run is RETRYING until ``retry_at``, then runs again; a final failure is FAILED."""
    async with make_store(new_name()) as store:
        task = make_task(max_retries=1)
        await store.enqueue([task])
        await claim(store)
        await raises(LeaseLostError, store.fail(task.id, worker_id=W2, error=ERROR, at=T0))
        await store.fail(task.id, worker_id=W1, error=ERROR, at=T0 + 1, retry_at=T0 + 5)
        waiting = await store.get_task(task.id)
        assert (waiting.status, waiting.eta, waiting.attempts) == (TaskStatus.RETRYING, T0 + 5, 1)
        assert waiting.error == ERROR
        assert await store.get_result(task.id) is None
        assert await store.next_due(now=T0 + 1) == T0 + 5
        assert await claim(store, now=T0 + 4) == []
        (again,) = await claim(store, W2, now=T0 + 5)
        assert again.attempts == 1
        await store.fail(task.id, worker_id=W2, error=ERROR, at=T0 + 6)
        failed = await store.get_task(task.id)
        assert (failed.status, failed.attempts, failed.finished_at) == (
            TaskStatus.FAILED,
            2,
            T0 + 6,
        )
        result = await store.get_result(task.id)
        assert result is not None
        assert (result.status, result.error, result.attempts) == (TaskStatus.FAILED, ERROR, 2)


async def check_record(make_store: MakeStore) -> None:
    """Many outcomes at once: each as ``complete``/``fail`` would, refusals per outcome."""
    async with make_store(new_name()) as store:
        ok, retried, failed, again, theirs = (make_task(max_retries=1) for _ in range(5))
        repeating = make_task(interval=60.0)
        await store.enqueue([ok, retried, failed, again, repeating, theirs])
        await claim(store, W1, limit=5)
        await claim(store, W2, limit=1)
        errors = await store.record(
            [
                Outcome.success(ok.id, W1, T0 + 1, {"v": [1.5]}),
                Outcome.retry(retried.id, W1, T0 + 1, ERROR, T0 + 5),
                Outcome.failure(failed.id, W1, T0 + 2, ERROR),
                Outcome.next_run(repeating.id, W1, T0 + 3, T0 + 60, value=7),
                Outcome.success(theirs.id, W1, T0 + 1, 1),
                Outcome.success("nope", W1, T0 + 1, 1),
                Outcome.success(ok.id, W1, T0 + 9, 2),
            ]
        )
        kinds = [type(e) if e is not None else None for e in errors]
        assert kinds == [None, None, None, None, LeaseLostError, TaskNotFoundError, LeaseLostError]
        assert await store.record([]) == []
        done = await store.get_task(ok.id)
        assert (done.status, done.attempts, done.finished_at) == (TaskStatus.SUCCESS, 1, T0 + 1)
        result = await store.get_result(ok.id)
        assert result is not None and (result.value, result.finished_at) == ({"v": [1.5]}, T0 + 1)
        waiting = await store.get_task(retried.id)
        assert (waiting.status, waiting.eta, waiting.attempts, waiting.error) == (
            TaskStatus.RETRYING,
            T0 + 5,
            1,
            ERROR,
        )
        assert await store.get_result(retried.id) is None
        gone = await store.get_task(failed.id)
        assert (gone.status, gone.attempts, gone.finished_at) == (TaskStatus.FAILED, 1, T0 + 2)
        result = await store.get_result(failed.id)
        assert result is not None and (result.status, result.error) == (TaskStatus.FAILED, ERROR)
        next_run = await store.get_task(repeating.id)
        assert (next_run.status, next_run.eta, next_run.attempts) == (
            TaskStatus.PENDING,
            T0 + 60,
            0,
        )
        result = await store.get_result(repeating.id)
        assert result is not None and result.value == 7
        assert (await store.get_task(theirs.id)).status is TaskStatus.RUNNING
        assert (await store.get_task(again.id)).status is TaskStatus.RUNNING


async def check_release(make_store: MakeStore) -> None:
    """Release returns held tasks to PENDING uncharged, and ignores others."""
    async with make_store(new_name()) as store:
        mine, theirs, pending = make_task(), make_task(), make_task(eta=T0 + 100)
        await store.enqueue([mine, theirs, pending])
        await claim(store, W1, limit=1)
        await claim(store, W2, limit=1)
        released = await store.release([mine.id, theirs.id, pending.id, "nope"], worker_id=W1)
        assert released == [mine.id]
        back = await store.get_task(mine.id)
        assert (back.status, back.attempts, back.worker_id) == (TaskStatus.PENDING, 0, None)
        assert (await store.get_task(theirs.id)).status is TaskStatus.RUNNING
        assert [t.id for t in await claim(store, W2)] == [mine.id]


async def check_leases(make_store: MakeStore) -> None:
    """Renewed leases hold; expired ones are reclaimed and the task runs again."""
    async with make_store(new_name()) as store:
        a, b = make_task(), make_task()
        await store.enqueue([a, b])
        await claim(store, W1, limit=1)
        await claim(store, W2, limit=1)
        assert await store.renew(W1, lease_until=T0 + 100) == {a.id}
        assert (await store.get_task(a.id)).lease_until == T0 + 100
        assert await store.reclaim_expired(now=T0 + LEASE) == Reclaimed()
        assert await store.reclaim_expired(now=T0 + LEASE + 1) == Reclaimed((b.id,))
        back = await store.get_task(b.id)
        assert (back.status, back.attempts, back.lost_runs) == (TaskStatus.PENDING, 0, 1)
        assert await store.renew(W2, lease_until=T0 + 100) == frozenset()
        await raises(LeaseLostError, store.complete(b.id, worker_id=W2, value=1, at=T0 + 40))
        assert [t.id for t in await claim(store, W1, now=T0 + 40)] == [b.id]
        # holds nothing: a no-op
        assert await store.renew("nobody", lease_until=T0 + 1000) == frozenset()


async def check_cancel(make_store: MakeStore) -> None:
    """Cancel ends pending and running tasks; finished ones stay as they are."""
    async with make_store(new_name()) as store:
        finished, running, waiting = make_task(), make_task(), make_task()
        await store.enqueue([finished, running, waiting])
        await claim(store, limit=1)
        await store.complete(finished.id, worker_id=W1, value=None, at=T0)
        assert await store.cancel(finished.id, at=T0) is False
        assert (await store.get_task(finished.id)).status is TaskStatus.SUCCESS

        (claimed,) = await claim(store, limit=1)
        assert claimed.id == running.id
        assert await store.cancel(running.id, at=T0 + 1) is True
        assert (await store.get_task(running.id)).status is TaskStatus.CANCELLED
        await raises(LeaseLostError, store.complete(running.id, worker_id=W1, value=1, at=T0 + 2))

        assert await store.cancel(waiting.id, at=T0 + 3) is True
        cancelled = await store.get_task(waiting.id)
        assert (cancelled.status, cancelled.finished_at) == (TaskStatus.CANCELLED, T0 + 3)
        result = await store.get_result(waiting.id)
        assert result is not None and result.status is TaskStatus.CANCELLED
        assert await claim(store, now=T0 + 10) == []


async def check_manual_retry(make_store: MakeStore) -> None:
    """Only FAILED tasks can be retried by hand; they get a fresh budget."""
    async with make_store(new_name()) as store:
        task, ok = make_task(), make_task()
        await store.enqueue([task, ok])
        await claim(store)
        await store.fail(task.id, worker_id=W1, error=ERROR, at=T0 + 1)
        await store.complete(ok.id, worker_id=W1, value=1, at=T0 + 1)
        await raises(InvalidTransitionError, store.retry(ok.id, at=T0 + 2))
        await store.retry(task.id, at=T0 + 2)
        again = await store.get_task(task.id)
        assert (again.status, again.attempts, again.eta) == (TaskStatus.PENDING, 0, T0 + 2)
        assert await store.get_result(task.id) is None
        assert [t.id for t in await claim(store, now=T0 + 2)] == [task.id]


async def check_purge(make_store: MakeStore) -> None:
    """Purge forgets finished tasks that finished before the cutoff, nothing else."""
    async with make_store(new_name()) as store:
        old, new, waiting = make_task(), make_task(), make_task(eta=T0 + 1000)
        await store.enqueue([old, new, waiting])
        await claim(store)
        await store.complete(old.id, worker_id=W1, value=1, at=T0 + 10)
        await store.fail(new.id, worker_id=W1, error=ERROR, at=T0 + 20)
        assert await store.purge(finished_before=T0 + 15, failed_before=T0 + 15) == 1
        await raises(TaskNotFoundError, store.get_task(old.id))
        await raises(TaskNotFoundError, store.get_result(old.id))
        assert {t.id for t in await all_tasks(store)} == {new.id, waiting.id}
        assert await store.purge(finished_before=T0 + 15, failed_before=T0 + 15) == 0
        assert await store.purge(finished_before=T0 + 10_000, failed_before=T0 + 20) == 0
        assert await store.purge(finished_before=T0 + 10_000, failed_before=T0 + 21) == 1
        assert [t.id for t in await all_tasks(store)] == [waiting.id]


async def check_list_and_stats(make_store: MakeStore) -> None:
    async with make_store(new_name()) as store:
        tasks = [make_task(created_at=T0 + i) for i in range(5)]
        await store.enqueue(tasks)
        await claim(store, limit=2)
        assert [t.id for t in await all_tasks(store)] == [t.id for t in tasks]
        page = await store.list_tasks(limit=2)
        assert [t.id for t in page.tasks] == [t.id for t in tasks[:2]]
        running = (await store.list_tasks(status=TaskStatus.RUNNING)).tasks
        assert [t.id for t in running] == [t.id for t in tasks[:2]]
        stats = await store.stats(now=T0)
        assert stats.counts[TaskStatus.PENDING] == 3
        assert stats.counts[TaskStatus.RUNNING] == 2
        assert stats.counts[TaskStatus.SUCCESS] == 0
        assert stats.total == 5
        assert stats.oldest_due_eta == T0


async def check_reopen_keeps_everything(make_store: MakeStore) -> None:
    """A store opened again on the same data sees exactly the same tasks and results."""
    name = new_name()
    async with make_store(name) as store:
        a, b, c, d = (make_task(interval=10.0 if i == 3 else None) for i in range(4))
        await store.enqueue([a, b, c, d])
        await claim(store)
        await store.complete(a.id, worker_id=W1, value=[1, "x"], at=T0 + 1)
        await store.fail(b.id, worker_id=W1, error=ERROR, at=T0 + 1, retry_at=T0 + 9)
        await store.cancel(c.id, at=T0 + 2)
        await store.complete(d.id, worker_id=W1, value=None, at=T0 + 1, next_eta=T0 + 10)
        before = _store_state(await all_tasks(store))
        results = {t.id: await store.get_result(t.id) for t in before}
    async with make_store(name) as store:
        assert _store_state(await all_tasks(store)) == before
        assert {t.id: await store.get_result(t.id) for t in before} == results
        assert [t.id for t in await claim(store, now=T0 + 10)] == [b.id, d.id]


async def check_shared_claims_never_overlap(make_store: MakeStore) -> None:
    """Two store objects on the same data, claiming concurrently, never share a task."""
    name = new_name()
    tasks = [make_task() for _ in range(60)]
    async with make_store(name) as one, make_store(name) as two:
        await one.enqueue(tasks[:30])
        await two.enqueue(tasks[30:])
        claimed: dict[str, list[str]] = {W1: [], W2: []}

        async def drain(store: Store, worker: str) -> None:
            while got := await claim(store, worker, limit=3):
                claimed[worker].extend(t.id for t in got)
                for t in got:
                    await store.complete(t.id, worker_id=worker, value=None, at=T0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, one, W1)
            nursery.start_soon(drain, two, W2)
        everything = claimed[W1] + claimed[W2]
        assert sorted(everything) == sorted(t.id for t in tasks), "each task claimed exactly once"
        stats = await one.stats(now=T0)
        assert stats.counts[TaskStatus.SUCCESS] == 60


async def check_concurrent_claims(make_store: MakeStore) -> None:
    """Many concurrent claims on one store object hand out each task once."""
    async with make_store(new_name()) as store:
        tasks = [make_task() for _ in range(50)]
        await store.enqueue(tasks)
        got: list[str] = []

        async def claimer(i: int) -> None:
            got.extend(t.id for t in await claim(store, f"w{i}", limit=4))

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(claimer, i)
        assert sorted(got) == sorted(t.id for t in tasks)


async def check_change_notifications_basics(make_store: MakeStore) -> None:
    """Enqueue and release announce WORK; a finished task announces FINISHED."""
    async with make_store(new_name()) as store:
        work = store.change_version(Change.WORK)
        task = make_task()
        await store.enqueue([task])
        assert store.change_version(Change.WORK) != work
        finished = store.change_version(Change.FINISHED)
        await claim(store)
        work = store.change_version(Change.WORK)
        await store.release([task.id], worker_id=W1)
        assert store.change_version(Change.WORK) != work
        await claim(store)
        await store.complete(task.id, worker_id=W1, value=None, at=T0)
        assert store.change_version(Change.FINISHED) != finished
        seen = store.change_version(Change.FINISHED)
        with trio.move_on_after(5) as scope:
            await store.wait_for_change(Change.FINISHED, seen - 1, trio.current_time() + 10)
        assert not scope.cancelled_caught, "a change already seen must not block"


CORE_CHECKS: Final = (
    check_enqueue_and_read,
    check_enqueue_is_all_or_nothing,
    check_unknown_ids,
    check_claim_order,
    check_claim_holds,
    check_complete,
    check_repeating_task,
    check_fail_and_retry,
    check_record,
    check_release,
    check_leases,
    check_cancel,
    check_manual_retry,
    check_purge,
    check_list_and_stats,
    check_reopen_keeps_everything,
    check_shared_claims_never_overlap,
    check_concurrent_claims,
    check_change_notifications_basics,
)
