"""OpenTelemetry tracing (``Settings.tracing``, the ``otel`` extra).

A span per enqueue (kind PRODUCER) and per run (CONSUMER). The enqueue span's
context rides inside each task it stores, as W3C ``traceparent`` and
``tracestate`` headers; the run span takes it as its parent, so a run is a
child of the enqueue, itself a child of whatever span was current (the
request that enqueued). The run span is current while the task's function
runs, so the spans it makes are its children.

Spans go to the global tracer provider (``opentelemetry.trace.set_tracer_provider``)
unless one is given. Nothing here is imported unless tracing is on, so it
costs nothing otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, final

import attrs

from .errors import ConfigError
from .hooks import RunOutcome
from .models import Enqueued, Task, TaskError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, TracerProvider

    from .config import Settings

__all__ = [
    "TRACE_HEADERS",
    "EnqueueSpan",
    "RunSpan",
    "Tracing",
    "enqueue_span",
    "run_span",
    "tracing_for",
]

#: The headers a task's trace context travels in (W3C Trace Context).
TRACE_HEADERS: Final = ("traceparent", "tracestate")
_SYSTEM: Final = "omniq_trio"


def tracing_for(settings: Settings) -> Tracing | None:
    """A :class:`Tracing` when ``settings.tracing`` is on, else ``None``; ``ConfigError``
    if it is on but OpenTelemetry is not installed."""
    return Tracing() if settings.tracing else None


@final
class RunSpan:
    """The span of one run, while it runs; :meth:`ended` says how it ended."""

    def __init__(self, span: Span | None) -> None:
        self._span = span

    def ended(self, outcome: RunOutcome, error: TaskError | None) -> None:
        """Record how the run ended (its error makes the span's status ERROR)."""
        span = self._span
        if span is None:
            return
        span.set_attribute("omniq.outcome", outcome.value)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.add_event(
                "exception",
                {
                    "exception.type": error.type,
                    "exception.message": error.message,
                    "exception.stacktrace": error.traceback,
                },
            )
            span.set_status(Status(StatusCode.ERROR, str(error)))


_NO_SPAN: Final = RunSpan(None)


@final
class Tracing:
    """Makes omniq_trio's spans, on ``tracer_provider`` (default: the global one)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import trace
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError:
            raise ConfigError(
                "tracing needs OpenTelemetry: pip install 'omniq-trio[otel]' "
                "(or turn tracing off: OMNIQ_TRACING=false)"
            ) from None
        from . import __version__

        self._trace = trace
        self._tracer = trace.get_tracer(_SYSTEM, __version__, tracer_provider=tracer_provider)
        self._propagator = TraceContextTextMapPropagator()

    def capture(self) -> Context:
        """The caller's current context (to hand to :meth:`enqueue` in another thread)."""
        from opentelemetry import context

        return context.get_current()

    @contextlib.contextmanager
    def enqueue(
        self, tasks: Sequence[Task], parent: Context | None = None
    ) -> Iterator[tuple[list[Task], EnqueueSpan]]:
        """Around storing ``tasks``: a span (a child of ``parent``, default the current
        context) and the tasks carrying its context in their headers."""
        attributes: dict[str, Any] = {
            "messaging.system": _SYSTEM,
            "messaging.operation.type": "send",
            "messaging.batch.message_count": len(tasks),
        }
        funcs = {t.func for t in tasks}
        queues = {t.queue for t in tasks}
        if len(queues) == 1:
            attributes["messaging.destination.name"] = next(iter(queues))
        if len(funcs) == 1:
            attributes["omniq.function"] = next(iter(funcs))
        name = f"enqueue {next(iter(funcs))}" if len(funcs) == 1 else "enqueue"
        kind = self._trace.SpanKind.PRODUCER
        with self._tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier)
            yield [_with_context(t, carrier) for t in tasks], EnqueueSpan(span)

    @contextlib.contextmanager
    def run(self, task: Task, worker_id: str) -> Iterator[RunSpan]:
        """Around a run of ``task``: a span, current while the function runs, whose
        parent is the context the task carries."""
        parent = self._propagator.extract(task.headers) if task.headers else None
        attributes: dict[str, Any] = {
            "messaging.system": _SYSTEM,
            "messaging.operation.type": "process",
            "messaging.destination.name": task.queue,
            "messaging.message.id": task.id,
            "omniq.function": task.func,
            "omniq.attempt": task.attempts + 1,
            "omniq.worker_id": worker_id,
        }
        with self._tracer.start_as_current_span(
            f"run {task.func}",
            context=parent,
            kind=self._trace.SpanKind.CONSUMER,
            attributes=attributes,
            # a stop's Cancelled is no error of the task; ended() says what is
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield RunSpan(span)
            except BaseException:
                span.set_attribute("omniq.outcome", RunOutcome.RELEASED.value)
                raise


@attrs.frozen
class EnqueueSpan:
    """The span of one enqueue; :meth:`stored` records what the store did."""

    _span: Span

    def stored(self, enqueued: Sequence[Enqueued]) -> None:
        ids = [e.id for e in enqueued]
        if len(ids) == 1:
            self._span.set_attribute("messaging.message.id", ids[0])
        else:
            self._span.set_attribute("omniq.task_ids", ids)
        self._span.set_attribute("omniq.created", sum(e.created for e in enqueued))


def _with_context(task: Task, carrier: Mapping[str, str]) -> Task:
    """``task`` carrying the trace context, unless it has one of its own."""
    if not carrier or any(name in task.headers for name in TRACE_HEADERS):
        return task
    return attrs.evolve(task, headers={**task.headers, **carrier})


def enqueue_span(
    tracing: Tracing | None, tasks: list[Task], parent: Context | None = None
) -> contextlib.AbstractContextManager[list[Task]]:
    """Around an enqueue that does not go through ``AsyncOmniQ`` (inside the caller's
    own transaction): a span, and the tasks carrying its context; or just the tasks."""
    if tracing is None:
        return contextlib.nullcontext(tasks)
    return _enqueue_tasks(tracing, tasks, parent)


@contextlib.contextmanager
def _enqueue_tasks(
    tracing: Tracing, tasks: list[Task], parent: Context | None
) -> Iterator[list[Task]]:
    with tracing.enqueue(tasks, parent) as (traced, _):
        yield traced


def run_span(
    tracing: Tracing | None, task: Task, worker_id: str
) -> contextlib.AbstractContextManager[RunSpan]:
    """:meth:`Tracing.run`, or nothing (at next to no cost) when tracing is off."""
    if tracing is None:
        return contextlib.nullcontext(_NO_SPAN)
    return tracing.run(task, worker_id)
