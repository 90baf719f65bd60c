"""Hooks, the worker registry and tracing through ``OmniQ`` and ``AsyncioOmniQ``, whose
calls cross into a trio thread: hooks run there, and the trace context of the
caller's thread still parents the enqueue."""

from __future__ import annotations

import asyncio
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from omniq_trio import AsyncioOmniQ, OmniQ, Settings
from omniq_trio.hooks import HookEvent, RunEnded, RunOutcome, TaskEnqueued
from tests.runtime.test_tracing import EXPORTER, _install_provider
from tests.sync.sync_tasks import add

PATIENCE = 10.0


def test_omniq_hooks_see_enqueues_and_runs_and_its_pools_list_themselves() -> None:
    seen: list[HookEvent] = []
    ended = threading.Event()

    def hook(event: HookEvent) -> None:
        seen.append(event)
        if isinstance(event, RunEnded):
            ended.set()

    with OmniQ(Settings(backend="memory", poll_interval=0.05), hooks=[hook]) as omniq:
        assert omniq.hooks == (hook,)
        workers = omniq.worker()
        thread = threading.Thread(target=workers.start, daemon=True)
        thread.start()
        task_id = omniq.enqueue(add, 2, 3)
        assert ended.wait(PATIENCE)
        (listed,) = omniq.list_workers()
        assert listed.id == workers.worker_id
        workers.stop(timeout=5.0)
        thread.join(PATIENCE)
        assert omniq.list_workers() == []
    enqueued, ended_event = seen[0], seen[-1]
    assert isinstance(enqueued, TaskEnqueued) and enqueued.task.id == task_id
    assert isinstance(ended_event, RunEnded) and ended_event.outcome is RunOutcome.SUCCESS


def test_the_callers_span_parents_the_enqueue_across_the_thread() -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        _install_provider()
    EXPORTER.clear()
    tracer = trace.get_tracer("tests")
    settings = Settings(backend="memory", tracing=True)
    with OmniQ(settings) as omniq, tracer.start_as_current_span("sync request") as sync_request:
        omniq.enqueue(add, 1, 1)

    async def from_asyncio() -> int:
        async with AsyncioOmniQ(settings) as client:
            with tracer.start_as_current_span("asyncio request") as request:
                await client.enqueue(add, 1, 2)
            return request.get_span_context().span_id

    asyncio_request = asyncio.run(from_asyncio())
    enqueues = [s for s in EXPORTER.get_finished_spans() if s.name.startswith("enqueue")]
    parents = [s.parent.span_id if s.parent else None for s in enqueues]
    assert parents == [sync_request.get_span_context().span_id, asyncio_request]
    EXPORTER.clear()
