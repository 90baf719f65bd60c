"""The Store contract's promises about *how* verbs behave, whatever they do: each is a
checkpoint, a cancelled caller changes nothing (or everything), a closed store refuses,
the lifecycle table is the law, and each change wakes the waiters it should."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

from ..errors import InvalidTransitionError, LeaseLostError, StoreClosedError
from ..models import TRANSITIONS, Progress, RateLimit, ScheduleInfo, Task, TaskStatus, WorkerInfo
from ..store import Change, Outcome, Store
from ._store_kit import ERROR, LEASE, T0, W1, W2, MakeStore, all_tasks, claim, make_task, new_name

__all__ = ["BEHAVIOUR_CHECKS"]

Verb = Callable[[Store], Awaitable[Any]]


def _verbs(task: Task) -> dict[str, Verb]:
    """One call of every verb, on a store holding ``task`` (claimed by W1)."""
    info = WorkerInfo(W1, "h", 1, 1, None, T0, T0, T0 + LEASE)
    sched = ScheduleInfo("s", task.func, "* * * * *")
    return {
        "enqueue": lambda s: s.enqueue([make_task()]),
        "claim": lambda s: claim(s, W2),
        "record": lambda s: s.record([Outcome.success("nope", W1, T0)]),
        "release": lambda s: s.release(["nope"], worker_id=W2),
        "renew": lambda s: s.renew(W1, lease_until=T0 + LEASE),
        "reclaim_expired": lambda s: s.reclaim_expired(now=T0),
        "purge": lambda s: s.purge(finished_before=T0, failed_before=T0),
        "set_progress": lambda s: s.set_progress(task.id, worker_id=W1, progress=Progress(0.5)),
        "cancel": lambda s: s.cancel("nope", at=T0),
        "retry": lambda s: s.retry("nope", at=T0),
        "pause_queue": lambda s: s.pause_queue("q", paused=False),
        "set_queue_limit": lambda s: s.set_queue_limit("q", None),
        "list_queues": lambda s: s.list_queues(),
        "fire_schedule": lambda s: s.fire_schedule("s", slot=T0, task=make_task()),
        "register_schedules": lambda s: s.register_schedules([sched]),
        "list_schedules": lambda s: s.list_schedules(),
        "register_worker": lambda s: s.register_worker(info),
        "unregister_worker": lambda s: s.unregister_worker("nope"),
        "list_workers": lambda s: s.list_workers(now=T0),
        "get_task": lambda s: s.get_task(task.id),
        "get_result": lambda s: s.get_result(task.id),
        "list_tasks": lambda s: s.list_tasks(),
        "stats": lambda s: s.stats(now=T0),
        "next_due": lambda s: s.next_due(now=T0),
    }


async def _quietly(call: Awaitable[Any]) -> None:
    """Await ``call``; the checks here look at checkpoints, not at answers."""
    with contextlib.suppress(LookupError, InvalidTransitionError, LeaseLostError):
        await call


async def check_every_verb_checkpoints(make_store: MakeStore) -> None:
    """Every verb may yield and is cancellable (``trio.testing.assert_checkpoints``)."""
    async with make_store(new_name()) as store:
        task = make_task()
        await store.enqueue([task])
        await claim(store)
        for name, verb in _verbs(task).items():
            try:
                with trio.testing.assert_checkpoints():
                    await _quietly(verb(store))
            except AssertionError:
                raise AssertionError(f"{name} does not checkpoint") from None


async def check_cancelled_before_start_changes_nothing(make_store: MakeStore) -> None:
    """A verb called in an already-cancelled scope raises Cancelled and changes nothing."""
    async with make_store(new_name()) as store:
        task = make_task()
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.enqueue([task])
        assert scope.cancelled_caught
        assert await all_tasks(store) == []
        await store.enqueue([task])
        with trio.CancelScope() as scope:
            scope.cancel()
            await claim(store)
        assert (await store.get_task(task.id)).status is TaskStatus.PENDING


async def check_cancelled_midway_is_atomic(make_store: MakeStore) -> None:
    """A batch whose caller is cancelled while it is written lands whole or not at all."""
    async with make_store(new_name()) as store:
        for delay in range(4):
            batch = [make_task() for _ in range(3)]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.enqueue, batch)
                for _ in range(delay):
                    await trio.lowlevel.checkpoint()
                nursery.cancel_scope.cancel()
            ids = {t.id for t in await all_tasks(store)}
            landed = {t.id for t in batch} & ids
            assert len(landed) in (0, 3), f"a cancelled enqueue landed {len(landed)} of 3"


async def check_closed_store_refuses(make_store: MakeStore) -> None:
    """After ``aclose`` every verb raises StoreClosedError; ``aclose`` again is fine."""
    store_cm = make_store(new_name())
    store = await store_cm.__aenter__()
    task = make_task()
    await store.enqueue([task])
    await store_cm.__aexit__(None, None, None)
    await store.aclose()
    for name, verb in _verbs(task).items():
        try:
            await verb(store)
        except StoreClosedError:
            continue
        raise AssertionError(f"{name} on a closed store did not raise StoreClosedError")


async def check_lifecycle_table(make_store: MakeStore) -> None:
    """Drive a task into each status and ask for each other one: what ``TRANSITIONS``
    allows happens, the rest is refused and changes nothing."""
    async with make_store(new_name()) as store:
        for old in TaskStatus:
            for new in TaskStatus:
                task = await _task_in(store, old)
                before = await store.get_task(task.id)
                allowed = new in TRANSITIONS[old]
                try:
                    changed = await _request(store, task, new)
                except (InvalidTransitionError, LeaseLostError):
                    changed = False
                after = await store.get_task(task.id)
                if allowed:
                    assert changed and after.status is new, f"{old} -> {new} was refused"
                else:
                    assert not changed and after == before, f"{old} -> {new} was allowed"


async def _task_in(store: Store, status: TaskStatus) -> Task:
    task = make_task(max_retries=1, eta=T0 - 1)
    await store.enqueue([task])
    if status is TaskStatus.PENDING:
        return task
    if status is TaskStatus.CANCELLED:
        await store.cancel(task.id, at=T0)
        return task
    got = await claim(store, W1, queues=None, limit=1_000)
    for other in got:
        if other.id != task.id:
            await store.release([other.id], worker_id=W1)
    if status is TaskStatus.SUCCESS:
        await store.complete(task.id, worker_id=W1, value=1, at=T0)
    elif status is TaskStatus.FAILED:
        await store.fail(task.id, worker_id=W1, error=ERROR, at=T0)
    elif status is TaskStatus.RETRYING:
        await store.fail(task.id, worker_id=W1, error=ERROR, at=T0, retry_at=T0 + 1e6)
    return task


async def _request(store: Store, task: Task, new: TaskStatus) -> bool:
    """Ask for ``task`` to become ``new`` the way the runtime would; whether it changed."""
    if new is TaskStatus.RUNNING:
        before = await store.get_task(task.id)
        now = before.eta if before.status is TaskStatus.RETRYING else T0
        got = await claim(store, W2, now=now, limit=1_000)
        for other in got:
            if other.id != task.id:
                await store.release([other.id], worker_id=W2)
        return task.id in {t.id for t in got}
    if new is TaskStatus.CANCELLED:
        return await store.cancel(task.id, at=T0)
    if new is TaskStatus.PENDING:
        status = (await store.get_task(task.id)).status
        if status is TaskStatus.RUNNING:
            return bool(await store.release([task.id], worker_id=W1))
        await store.retry(task.id, at=T0)
        return True
    outcome = {
        TaskStatus.SUCCESS: Outcome.success(task.id, W1, T0, 1),
        TaskStatus.FAILED: Outcome.failure(task.id, W1, T0, ERROR),
        TaskStatus.RETRYING: Outcome.retry(task.id, W1, T0, ERROR, T0 + 5),
    }[new]
    (refused,) = await store.record([outcome])
    return refused is None


async def check_notifications(make_store: MakeStore) -> None:
    """Each change wakes the waiters it must: WORK for what may be claimed, FINISHED
    for results, CANCELLED for a running task's worker."""
    async with make_store(new_name()) as store:
        tasks = [make_task(max_retries=1, interval=60.0 if i == 3 else None) for i in range(5)]

        async def wakes(changes: set[Change], verb: Awaitable[Any]) -> None:
            seen = {change: store.change_version(change) for change in Change}
            await verb
            moved = {change for change in Change if store.change_version(change) != seen[change]}
            assert changes <= moved, f"expected {changes}, moved {moved}"

        await wakes({Change.WORK}, store.enqueue(tasks))
        await claim(store)
        await wakes({Change.WORK}, store.release([tasks[0].id], worker_id=W1))
        await wakes({Change.FINISHED}, store.complete(tasks[1].id, worker_id=W1, value=1, at=T0))
        retry = Outcome.retry(tasks[2].id, W1, T0, ERROR, T0 + 1)
        await wakes({Change.WORK}, store.record([retry]))
        next_run = Outcome.next_run(tasks[3].id, W1, T0, T0 + 60, value=1)
        await wakes({Change.WORK, Change.FINISHED}, store.record([next_run]))
        await wakes({Change.FINISHED, Change.CANCELLED}, store.cancel(tasks[4].id, at=T0))
        await wakes({Change.FINISHED}, store.cancel(tasks[0].id, at=T0))
        await store.pause_queue("default", paused=True)
        await wakes({Change.WORK}, store.pause_queue("default", paused=False))
        await wakes({Change.WORK}, store.set_queue_limit("default", RateLimit(5, 1.0)))
        await claim(store, now=T0 + 1)
        await wakes({Change.WORK}, store.reclaim_expired(now=T0 + 1 + LEASE + 1))


BEHAVIOUR_CHECKS = (
    check_every_verb_checkpoints,
    check_cancelled_before_start_changes_nothing,
    check_cancelled_midway_is_atomic,
    check_closed_store_refuses,
    check_lifecycle_table,
    check_notifications,
)
