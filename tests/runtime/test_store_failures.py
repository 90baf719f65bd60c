"""A pool whose store fails: it waits out a failure that passes, and stops (run() raises
StoreUnavailableError) when one lasts ``store_failure_timeout``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import pytest
import trio

import omniq_trio._serve as serve_module
from omniq_trio import AsyncOmniQ, StoreUnavailableError, TaskStatus, serve
from omniq_trio.errors import StoreError
from omniq_trio.store import StoreCapabilities
from omniq_trio.store._index import TaskIndex
from omniq_trio.store._indexed import IndexedStore, Plan
from tests.runtime.conftest import SETTINGS, running
from tests.tasks import RuntimeProbe, rt_sleep

R = TypeVar("R")
TIMEOUT = 60.0
FAILING = SETTINGS.evolve(store_failure_timeout=TIMEOUT, poll_interval=1.0, lease_duration=30.0)


class FlakyStore(IndexedStore):
    """A memory store that fails every call while ``broken``; records when it first failed."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False
        self.first_failure: float | None = None

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(shared=False)

    async def open(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()

    def _check(self) -> None:
        if self.broken:
            if self.first_failure is None:
                self.first_failure = trio.current_time()
            raise StoreError("the disk is on fire")

    async def _commit(self, plan: Callable[[TaskIndex], Plan[R]]) -> R:
        await trio.lowlevel.checkpoint()
        self._check()
        events, answer = plan(self._index)
        self._index.apply_all(events)
        self._applied(events)
        return answer()

    async def _read(self, query: Callable[[TaskIndex], R]) -> R:
        await trio.lowlevel.checkpoint()
        self._check()
        return query(self._index)


async def test_a_store_unavailable_for_the_timeout_stops_the_pool(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    async with AsyncOmniQ(FAILING, store=store) as omniq:
        pool = omniq.worker()

        async def break_store() -> None:
            await trio.sleep(5)
            store.broken = True

        with caplog.at_level(logging.WARNING, "omniq_trio"):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(break_store)
                with pytest.raises(StoreUnavailableError, match="unavailable for 60s"):
                    await pool.run()
    assert store.first_failure is not None
    # it gave up exactly when the failures had lasted the timeout
    assert trio.current_time() == store.first_failure + TIMEOUT
    assert not pool.running
    text = caplog.text
    assert "the store is failing" in text and "store_failure_timeout" in text
    assert "stopping the worker" in text and "status 75" in text


async def test_a_failure_shorter_than_the_timeout_is_waited_out(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    async with AsyncOmniQ(FAILING, store=store) as omniq:
        async with running(omniq) as pool:
            await trio.sleep(5)
            store.broken = True
            with caplog.at_level(logging.WARNING, "omniq_trio"):
                await trio.sleep(TIMEOUT - 10)
                store.broken = False
                task_id = await omniq.enqueue(rt_sleep, "after")
                result = await omniq.get_result(task_id, wait=True)
                # twice the timeout has passed since the failures began: no give-up
                await trio.sleep(TIMEOUT)
            assert pool.running
        assert result is not None and result.status is TaskStatus.SUCCESS
    assert probe.runs == {"after": 1}
    assert "available again after" in caplog.text
    assert "has been unavailable" not in caplog.text


async def test_serve_as_a_process_exits_with_status_75(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``trio.run(omniq_trio.serve)``: SystemExit(75), EX_TEMPFAIL, for a supervisor;
    embedded with ``nursery.start``, the error itself."""
    store = FlakyStore()
    store.broken = True

    def client(settings: object) -> AsyncOmniQ:
        return AsyncOmniQ(FAILING, store=store)

    monkeypatch.setattr(serve_module, "AsyncOmniQ", client)
    with pytest.raises(SystemExit) as caught:
        await serve(FAILING)
    assert caught.value.code == 75
    assert isinstance(caught.value.__cause__, StoreUnavailableError)
    with pytest.RaisesGroup(StoreUnavailableError, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, FAILING)
            await trio.sleep_forever()
