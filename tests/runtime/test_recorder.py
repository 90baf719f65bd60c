"""The recorder when the store fails: tasks whose outcome could not be written
go back to the queue, however long the store takes to come back."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from omniq_trio import AsyncOmniQ, TaskStatus
from omniq_trio.errors import StoreError
from omniq_trio.store import MemoryStore, Outcome
from tests.runtime.conftest import SETTINGS, running
from tests.tasks import RuntimeProbe, rt_sleep


async def test_tasks_are_released_once_the_store_takes_it(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    failures = {"record": 1, "release": 3}  # the store is down for a while
    real_record, real_release = store.record, store.release

    async def record(outcomes: Sequence[Outcome]) -> list[Exception | None]:
        if failures["record"]:
            failures["record"] -= 1
            raise StoreError("connection lost")
        return await real_record(outcomes)

    async def release(task_ids: Sequence[str], *, worker_id: str) -> list[str]:
        if failures["release"]:
            failures["release"] -= 1
            raise StoreError("connection lost")
        return await real_release(task_ids, worker_id=worker_id)

    monkeypatch.setattr(store, "record", record)
    monkeypatch.setattr(store, "release", release)
    async with AsyncOmniQ(SETTINGS, store=store) as omniq:
        await store.open()
        task_id = await omniq.enqueue(rt_sleep, "t", 1.0)
        async with running(omniq):
            result = await omniq.get_result(task_id, wait=True)
    # the lease (30 s) never lapsed: the retried release is what brought it back
    assert result is not None and result.value == "t"
    assert failures == {"record": 0, "release": 0}
    assert [label for label, _ in probe.starts] == ["t", "t"]
    task = await store.get_task(task_id)
    assert (task.status, task.attempts) == (TaskStatus.SUCCESS, 1)
