"""Tasks and hooks of the worker registry and hook tests (``mon_*``).

``mon_hooks`` is this module's ``omniq_hooks``: a pool that imports the module
(``Settings.imports``) delivers its events to them.
"""

from __future__ import annotations

import trio

from omniq_trio.hooks import HookEvent

#: events seen by the hook this module declares
seen: list[HookEvent] = []


async def mon_sleep(seconds: float) -> float:
    await trio.sleep(seconds)
    return seconds


async def mon_fail(seconds: float = 0.0) -> None:
    await trio.sleep(seconds)
    raise ValueError("it went wrong")


def module_hook(event: HookEvent) -> None:
    seen.append(event)


omniq_hooks = [module_hook]


async def mon_traced() -> str:
    """Make a span of its own: a child of its run's span when tracing is on."""
    from opentelemetry import trace

    with trace.get_tracer("tests").start_as_current_span("inside the task"):
        await trio.sleep(1.0)
    return "traced"
