"""Every store against a plain model: random operations, compared after every step."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniq_trio.models import TaskError, TaskStatus
from omniq_trio.store import JournalStore, Outcome, Store
from omniq_trio.testing import T0, MakeStore, make_task

LEASE = 30.0
RETRY_DELAY = 5.0
WORKERS = ("w1", "w2")
ERROR = TaskError("builtins.ValueError", "boom")
FINISHED = {TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED}
MAX_LOST_RUNS = 1

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("enqueue"),
            st.lists(
                st.tuples(st.integers(-1, 1), st.sampled_from([0, 10])), min_size=1, max_size=4
            ),
        ),
        st.tuples(st.just("claim"), st.sampled_from(WORKERS), st.integers(1, 3)),
        st.tuples(st.just("complete"), st.integers(0, 50)),
        st.tuples(st.just("fail"), st.integers(0, 50), st.booleans()),
        st.tuples(st.just("release"), st.sampled_from(WORKERS)),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
        st.tuples(st.just("expire")),
        st.tuples(st.just("advance"), st.sampled_from([1.0, 6.0, 31.0])),
        st.tuples(st.just("purge")),
        st.tuples(st.just("compact")),
        st.tuples(st.just("reopen")),
    ),
    min_size=4,
    max_size=40,
)


@attrs.define
class Entry:
    status: TaskStatus
    priority: int
    eta: float
    seq: int
    attempts: int = 0
    worker: str | None = None
    lease_until: float | None = None
    finished_at: float | None = None
    result: TaskStatus | None = None
    lost_runs: int = 0


@attrs.define
class Model:
    now: float = T0
    tasks: dict[str, Entry] = attrs.Factory(dict)
    seq: itertools.count[int] = attrs.Factory(itertools.count)

    def requeue(self, entry: Entry, status: TaskStatus, eta: float) -> None:
        entry.status, entry.eta, entry.seq = status, eta, next(self.seq)
        entry.worker = entry.lease_until = None

    def claim(self, worker: str, limit: int) -> list[str]:
        due = [
            (-e.priority, e.eta, e.seq, task_id)
            for task_id, e in self.tasks.items()
            if e.status in (TaskStatus.PENDING, TaskStatus.RETRYING) and e.eta <= self.now
        ]
        ids = [task_id for *_, task_id in sorted(due)[:limit]]
        for task_id in ids:
            e = self.tasks[task_id]
            e.status, e.worker, e.lease_until = TaskStatus.RUNNING, worker, self.now + LEASE
        return ids

    def running(self, k: int) -> str | None:
        ids = [i for i, e in self.tasks.items() if e.status is TaskStatus.RUNNING]
        return ids[k % len(ids)] if ids else None

    def finish(self, entry: Entry, status: TaskStatus) -> None:
        entry.status, entry.result, entry.finished_at = status, status, self.now
        entry.worker = entry.lease_until = None


async def check(store: Store, model: Model) -> None:
    tasks = (await store.list_tasks()).tasks
    assert [t.id for t in tasks] == list(model.tasks)
    for task in tasks:
        e = model.tasks[task.id]
        assert (task.status, task.attempts, task.worker_id, task.eta, task.lost_runs) == (
            e.status,
            e.attempts,
            e.worker,
            e.eta,
            e.lost_runs,
        ), task
        result = await store.get_result(task.id)
        assert (result.status if result else None) == e.result


_names = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
async def test_store_agrees_with_the_model(
    make_store: MakeStore, ops: list[tuple[Any, ...]]
) -> None:
    name = f"model{next(_names)}"
    opened = make_store(name)
    store = await opened.__aenter__()
    model = Model()
    try:
        for op in ops:
            if op == ("reopen",):
                await opened.__aexit__(None, None, None)
                opened = make_store(name)
                store = await opened.__aenter__()
            else:
                await apply(op, store, model)
            await check(store, model)
    finally:
        await opened.__aexit__(None, None, None)


async def apply(op: tuple[Any, ...], store: Store, model: Model) -> None:
    now = model.now
    match op:
        case ("enqueue", specs):
            tasks = [
                make_task(priority=p, eta=now + delay, created_at=now, max_lost_runs=MAX_LOST_RUNS)
                for p, delay in specs
            ]
            await store.enqueue(tasks)
            for t in tasks:
                model.tasks[t.id] = Entry(TaskStatus.PENDING, t.priority, t.eta, next(model.seq))
        case ("claim", worker, limit):
            got = await store.claim(worker, now=now, limit=limit, lease_until=now + LEASE)
            assert [t.id for t in got] == model.claim(worker, limit)
        case ("complete", k):
            if (task_id := model.running(k)) is not None:
                e = model.tasks[task_id]
                assert e.worker is not None
                (error,) = await store.record([Outcome.success(task_id, e.worker, now, k)])
                assert error is None
                e.attempts += 1
                model.finish(e, TaskStatus.SUCCESS)
        case ("fail", k, retry):
            if (task_id := model.running(k)) is not None:
                e = model.tasks[task_id]
                assert e.worker is not None
                retry_at = now + RETRY_DELAY if retry else None
                await store.fail(
                    task_id, worker_id=e.worker, error=ERROR, at=now, retry_at=retry_at
                )
                e.attempts += 1
                if retry:
                    model.requeue(e, TaskStatus.RETRYING, now + RETRY_DELAY)
                else:
                    model.finish(e, TaskStatus.FAILED)
        case ("release", worker):
            held = [i for i, e in model.tasks.items() if e.worker == worker]
            released = await store.release(held, worker_id=worker)
            assert released == held
            for task_id in held:
                e = model.tasks[task_id]
                model.requeue(e, TaskStatus.PENDING, e.eta)
        case ("cancel", k):
            if model.tasks:
                task_id = list(model.tasks)[k % len(model.tasks)]
                e = model.tasks[task_id]
                cancelled = await store.cancel(task_id, at=now)
                assert cancelled is (e.status not in FINISHED)
                if cancelled:
                    model.finish(e, TaskStatus.CANCELLED)
        case ("expire",):
            reclaimed = await store.reclaim_expired(now=now)
            expected = [
                i
                for i, e in model.tasks.items()
                if e.lease_until is not None and e.lease_until < now
            ]
            assert sorted(reclaimed.requeued + reclaimed.failed) == sorted(expected)
            for task_id in expected:
                e = model.tasks[task_id]
                e.lost_runs += 1
                if e.lost_runs > MAX_LOST_RUNS:
                    assert task_id in reclaimed.failed
                    model.finish(e, TaskStatus.FAILED)
                else:
                    model.requeue(e, TaskStatus.PENDING, e.eta)
        case ("advance", seconds):
            model.now += seconds
        case ("purge",):
            cutoff = now - 10
            gone = [
                i
                for i, e in model.tasks.items()
                if e.status in FINISHED and e.finished_at is not None and e.finished_at < cutoff
            ]
            assert await store.purge(finished_before=cutoff, failed_before=cutoff) == len(gone)
            for task_id in gone:
                del model.tasks[task_id]
        case ("compact",):
            if isinstance(store, JournalStore):  # the journal's own operation
                await store.compact()
