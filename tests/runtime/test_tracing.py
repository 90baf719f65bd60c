"""OpenTelemetry: a span per enqueue and per run, the run a child of the enqueue,
itself a child of the span current when it was enqueued; the context rides in
the task's headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from omniq_trio import AsyncOmniQ, TaskStatus
from tests.runtime.conftest import SETTINGS, running
from tests.runtime.monitor_tasks import mon_fail, mon_sleep, mon_traced

TRACED = SETTINGS.evolve(tracing=True)
EXPORTER = InMemorySpanExporter()


def _install_provider() -> None:
    # the global provider can be set once per process: the first test to need it does
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        _install_provider()
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def _named(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def _parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


async def test_a_run_is_a_child_of_the_enqueue_and_of_the_request_that_enqueued(
    autojump_clock: trio.abc.Clock, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("tests")
    async with AsyncOmniQ(TRACED) as omniq:
        with tracer.start_as_current_span("request") as request:
            task_id = await omniq.enqueue(mon_traced)
        task = await omniq.get_task(task_id)
        async with running(omniq):
            await omniq.get_result(task_id, wait=True)
    path = "tests.runtime.monitor_tasks:mon_traced"
    found = _named(spans)
    enqueue, run, inside = found[f"enqueue {path}"], found[f"run {path}"], found["inside the task"]
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in (enqueue, run, inside)} == {trace_id}
    assert _parent_id(enqueue) == request.get_span_context().span_id
    assert _parent_id(run) == enqueue.context.span_id
    assert _parent_id(inside) == run.context.span_id  # current while the function runs
    assert (enqueue.kind, run.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert enqueue.attributes is not None and run.attributes is not None
    assert enqueue.attributes["messaging.message.id"] == task_id
    assert run.attributes["messaging.message.id"] == task_id
    assert run.attributes["omniq.outcome"] == "success"
    assert run.status.status_code is StatusCode.UNSET
    # the task carries the enqueue span's context, W3C style
    version, trace_hex, span_hex, _flags = task.headers["traceparent"].split("-")
    assert (version, int(trace_hex, 16), int(span_hex, 16)) == (
        "00",
        trace_id,
        enqueue.context.span_id,
    )
    assert run.end_time is not None and run.start_time is not None


async def test_a_failed_run_has_an_error_status_and_its_exception(
    autojump_clock: trio.abc.Clock, spans: InMemorySpanExporter
) -> None:
    async with AsyncOmniQ(TRACED) as omniq:
        task_id = await omniq.enqueue(mon_fail)
        async with running(omniq):
            await omniq.get_result(task_id, wait=True)
    run = _named(spans)["run tests.runtime.monitor_tasks:mon_fail"]
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "ValueError: it went wrong"
    (event,) = run.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"
    assert "Traceback" in str(event.attributes["exception.stacktrace"])
    assert run.parent is not None  # the enqueue, a root span here (none was current)
    enqueue = _named(spans)["enqueue tests.runtime.monitor_tasks:mon_fail"]
    assert enqueue.parent is None
    assert run.parent.span_id == enqueue.context.span_id


async def test_a_run_interrupted_by_the_stop_says_so(
    autojump_clock: trio.abc.Clock, spans: InMemorySpanExporter
) -> None:
    async with AsyncOmniQ(TRACED) as omniq:
        task_id = await omniq.enqueue(mon_sleep, 100.0)
        async with trio.open_nursery() as nursery:
            pool = omniq.worker()
            await nursery.start(pool.run)
            await trio.sleep(1.0)
            await pool.stop(timeout=0)
        assert (await omniq.get_task(task_id)).status is TaskStatus.PENDING
    run = _named(spans)["run tests.runtime.monitor_tasks:mon_sleep"]
    assert run.attributes is not None and run.attributes["omniq.outcome"] == "released"


async def test_a_trace_context_given_by_the_caller_is_kept(
    autojump_clock: trio.abc.Clock, spans: InMemorySpanExporter
) -> None:
    theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with AsyncOmniQ(TRACED) as omniq:
        task_id = await omniq.enqueue(mon_sleep, 0.0, headers={"traceparent": theirs})
        assert (await omniq.get_task(task_id)).headers["traceparent"] == theirs
        async with running(omniq):
            await omniq.get_result(task_id, wait=True)
    run = _named(spans)["run tests.runtime.monitor_tasks:mon_sleep"]
    assert run.parent is not None
    assert run.parent.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert run.parent.span_id == 0xB7AD6B7169203331


async def test_without_tracing_nothing_is_traced_or_carried(
    autojump_clock: trio.abc.Clock, spans: InMemorySpanExporter
) -> None:
    async with AsyncOmniQ(SETTINGS) as omniq:
        assert omniq.tracing is None
        with trace.get_tracer("tests").start_as_current_span("request"):
            task_id = await omniq.enqueue(mon_sleep, 0.0)
        assert (await omniq.get_task(task_id)).headers == {}
        async with running(omniq):
            await omniq.get_result(task_id, wait=True)
    assert [s.name for s in spans.get_finished_spans()] == ["request"]
