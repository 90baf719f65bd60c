"""``HookDelivery``: hands events to hooks without letting a hook harm the caller.

Sync hooks are called inline by :meth:`HookDelivery.emit`. Async hooks are
awaited, one event at a time and in order, by an actor (:meth:`deliver`) that
reads a bounded buffer; ``emit`` never waits for it: when the buffer is full
the event is dropped (for the async hooks only) and counted.

A worker pool runs the actor in its own nursery (:meth:`delivering`), which
delivers what is buffered when the pool stops, within a bounded time. A
client has no nursery: its first event for an async hook starts the actor as
a trio system task, and ``aclose`` lets it finish.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Final, final

import trio

from .errors import ConfigError
from .hooks import Hook, HookEvent

__all__ = ["HOOK_BUFFER", "HOOK_TIMEOUT", "HookDelivery", "hooks_in", "hooks_logger"]

hooks_logger = logging.getLogger("omniq_trio.hooks")

#: Events waiting for the async hooks, at most. Enough to ride out a burst of
#: thousands of runs while a hook makes a network call, small enough to
#: bound the memory a hung hook can hold (events hold their task).
HOOK_BUFFER: Final = 1024
#: Seconds one async hook may take over one event before it is cancelled, so
#: that a hung hook cannot starve the others.
HOOK_TIMEOUT: Final = 10.0
#: Seconds a stopping pool or a closing client gives the actor to deliver
#: the events still buffered.
DRAIN_TIMEOUT: Final = 5.0
#: A warning for the first dropped event, then for every this many.
_WARN_EVERY: Final = 1000
#: The module attribute a task module declares its hooks in.
MODULE_HOOKS: Final = "omniq_hooks"


def _is_async(hook: Hook) -> bool:
    # an object whose __call__ is async counts too
    call = getattr(hook, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(call)


def check_hook(hook: object, *, where: str = "hook") -> Hook:
    """``hook`` if it is callable, else ``ConfigError``."""
    if not callable(hook):
        raise ConfigError(f"{where} must be a callable of one event, got {hook!r}")
    return hook


def hooks_in(modules: Iterable[str]) -> list[Hook]:
    """The hooks the (imported) ``modules`` declare as ``omniq_hooks = [...]``."""
    found: list[Hook] = []
    for name in modules:
        module = sys.modules.get(name)
        declared = getattr(module, MODULE_HOOKS, None)
        if declared is None:
            continue
        if callable(declared) or isinstance(declared, str | bytes):
            raise ConfigError(f"{name}.{MODULE_HOOKS} must be a list of hooks, got {declared!r}")
        try:
            hooks = list(declared)
        except TypeError:
            raise ConfigError(
                f"{name}.{MODULE_HOOKS} must be a list of hooks, got {declared!r}"
            ) from None
        found += [check_hook(h, where=f"{name}.{MODULE_HOOKS} item") for h in hooks]
    return found


@final
class HookDelivery:
    """Delivers each event to every hook it holds; never raises, never blocks."""

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._sync: list[Hook] = []
        self._async: list[Hook] = []
        #: every hook, in the order they were added
        self._all: list[Hook] = []
        self._dropped = 0
        self._failed = 0
        self._send, self._receive = trio.open_memory_channel[HookEvent](HOOK_BUFFER)
        #: the trio run an actor delivers in, while one does
        self._actor_run: trio.lowlevel.TrioToken | None = None
        #: set when the actor has returned
        self._actor_done = trio.Event()
        for hook in hooks:
            self.add(hook)

    @property
    def hooks(self) -> tuple[Hook, ...]:
        """The hooks, in the order they were added."""
        return tuple(self._all)

    @property
    def dropped(self) -> int:
        """Events the async hooks missed because the buffer was full."""
        return self._dropped

    @property
    def failed(self) -> int:
        """Hook calls that raised (or, async, timed out)."""
        return self._failed

    def __bool__(self) -> bool:
        return bool(self._all)

    def add(self, hook: Hook) -> None:
        """Deliver every later event to ``hook`` too."""
        check_hook(hook)
        self._all.append(hook)
        (self._async if _is_async(hook) else self._sync).append(hook)

    def emit(self, event: HookEvent) -> None:
        """Hand ``event`` to every hook: the sync ones now, the async ones through the actor."""
        for hook in self._sync:
            try:
                returned: Any = hook(event)
            except Exception:
                self._failed += 1
                hooks_logger.exception("hook %r failed on %s", hook, type(event).__name__)
                continue
            if inspect.isawaitable(returned):  # a sync callable that made a coroutine
                getattr(returned, "close", lambda: None)()
                self._failed += 1
                hooks_logger.error(
                    "hook %r returned an awaitable but is not an async function; "
                    "write it as `async def` to have it awaited",
                    hook,
                )
        if self._async:
            self._buffer(event)

    def _buffer(self, event: HookEvent) -> None:
        if self._actor_run is None:
            try:
                self._start_system_actor()
            except RuntimeError:  # not in trio: nobody could deliver it
                self._dropped += 1
                return
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self._dropped += 1
            if self._dropped % _WARN_EVERY == 1:
                hooks_logger.warning(
                    "async hooks are behind: %d event(s) dropped so far (buffer of %d full)",
                    self._dropped,
                    HOOK_BUFFER,
                )
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._dropped += 1  # closing: what is buffered is delivered, nothing more

    async def deliver(self) -> None:
        """The actor: await the async hooks on each buffered event, one at a time,
        until the buffer is closed (:meth:`close`) and empty."""
        try:
            async with self._receive:
                async for event in self._receive:
                    for hook in self._async:
                        await self._call(hook, event)
        finally:
            # a new buffer for later events (a client opened again, a new trio run)
            self._renew()
            self._actor_run = None
            self._actor_done.set()

    def _renew(self) -> None:
        self._send, self._receive = trio.open_memory_channel[HookEvent](HOOK_BUFFER)

    async def _call(self, hook: Hook, event: HookEvent) -> None:
        with trio.move_on_after(HOOK_TIMEOUT) as scope:
            try:
                await hook(event)  # type: ignore[misc]
            except Exception:
                self._failed += 1
                hooks_logger.exception("hook %r failed on %s", hook, type(event).__name__)
        if scope.cancelled_caught:
            self._failed += 1
            hooks_logger.warning(
                "hook %r took over %ss on %s; cancelled", hook, HOOK_TIMEOUT, type(event).__name__
            )

    def _started(self) -> None:
        self._actor_run = trio.lowlevel.current_trio_token()
        self._actor_done = trio.Event()

    def _start_system_actor(self) -> None:
        self._started()
        trio.lowlevel.spawn_system_task(self.deliver, name="omniq_trio hooks")

    def close(self) -> None:
        """Take no more events; the actor delivers what is buffered, then returns."""
        self._send.close()

    async def aclose(self) -> None:
        """Close, and wait (a few seconds at most) until what is buffered is delivered.

        Later events go to a new buffer (a client may be opened again)."""
        self.close()
        if self._actor_run is not None:
            with trio.move_on_after(DRAIN_TIMEOUT) as scope:
                await self._actor_done.wait()
            if scope.cancelled_caught:
                hooks_logger.warning("async hooks did not finish within %ss", DRAIN_TIMEOUT)
        else:
            self._renew()
            await trio.lowlevel.checkpoint()

    @asynccontextmanager
    async def delivering(self) -> AsyncIterator[None]:
        """Run the actor in a nursery of its own while inside; on the way out,
        deliver what is buffered (a few seconds at most), then stop it."""
        if not self._async:
            yield
            return
        self._started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.deliver)
            try:
                yield
            finally:
                self.close()
                nursery.cancel_scope.deadline = trio.current_time() + DRAIN_TIMEOUT
        if nursery.cancel_scope.cancelled_caught:
            hooks_logger.warning("async hooks did not finish within %ss", DRAIN_TIMEOUT)
