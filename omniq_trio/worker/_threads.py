"""``SyncThreads``: long-lived threads that run a pool's sync task functions.

``trio.to_thread.run_sync`` costs, per call, a hand-off to a cached thread, a
checkpoint in the limiter and one wake-up of the trio loop to deliver the
result. Here a thread (a *lane*) lives across calls, fed by its own queue, and
finished calls come back in batches: the first thread to finish schedules one
callback into trio (``TrioToken.run_sync_soon``), which delivers every call that
has finished by the time it runs.

What callers see is what ``trio.to_thread.run_sync(fn, abandon_on_cancel=True,
limiter=slot)`` gives them:

* the slot is taken before the call starts and given back only when its
  thread returns, also when the caller stopped waiting: hung calls cannot pile
  up threads beyond the pool's concurrency;
* a caller cancelled while its call runs (a timeout, the stop deadline) gets
  ``trio.Cancelled`` at once; the call goes on in the background and its result
  is dropped;
* each call runs in a copy of the caller's ``contextvars`` context.

Unlike in ``trio.to_thread``, a function run here cannot call
``trio.from_thread.run`` without passing ``trio_token=``.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, Final, Protocol, final

import trio

__all__ = ["Slot", "SyncThreads"]

#: Seconds (real time) an idle lane waits for a call before its thread ends
#: (as trio's own thread cache does); the next call starts a new one.
IDLE_TIMEOUT: Final = 10.0


class Slot(Protocol):
    """The part of a ``trio.CapacityLimiter`` a call needs (``_ThreadSlot`` is one)."""

    async def acquire_on_behalf_of(self, borrower: object) -> None: ...

    def release_on_behalf_of(self, borrower: object) -> None: ...


@final
class _Call:
    """One function call, from the trio task that asked for it to a lane and back."""

    __slots__ = ("abandoned", "context", "done", "error", "fn", "lane", "slot", "value")

    def __init__(self, fn: Callable[[], Any], slot: Slot) -> None:
        self.fn = fn
        self.slot = slot
        self.context = contextvars.copy_context()
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        #: the caller stopped waiting: drop the outcome
        self.abandoned = False
        self.lane: _Lane | None = None


@final
class _Lane:
    """A thread and its queue of calls (it runs one at a time)."""

    __slots__ = ("_host", "inbox")

    def __init__(self, host: SyncThreads) -> None:
        self._host = host
        self.inbox: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="omniq-trio sync tasks", daemon=True).start()

    def _run(self) -> None:
        host, inbox = self._host, self.inbox
        while True:
            try:
                call = inbox.get(timeout=IDLE_TIMEOUT)
            except queue.Empty:
                if host._retire(self):
                    return
                continue
            try:
                call.value = call.context.run(call.fn)
            except BaseException as exc:  # handed to the caller, as trio.to_thread does
                call.error = exc
            if not host._finished(call):
                return


@final
class SyncThreads:
    """Runs blocking functions in threads for one trio run (one pool's executors)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the fields below, shared with the lanes
        self._idle: list[_Lane] = []
        self._done: list[_Call] = []
        self._delivery_scheduled = False
        self._run_over = False
        self._token: trio.lowlevel.TrioToken | None = None

    async def run(self, fn: Callable[[], Any], *, slot: Slot) -> Any:
        """Call ``fn()`` in a thread once ``slot`` has room; return or raise what it did."""
        token = trio.lowlevel.current_trio_token()
        if self._token is None:
            self._token = token
        elif token is not self._token:
            raise RuntimeError("a SyncThreads serves one trio run")
        call = _Call(fn, slot)
        await slot.acquire_on_behalf_of(call)
        try:
            with self._lock:
                lane = self._idle.pop() if self._idle else None
            call.lane = lane or _Lane(self)
        except BaseException:
            slot.release_on_behalf_of(call)
            raise
        call.lane.inbox.put(call)
        try:
            await call.done.wait()
        except BaseException:
            call.abandoned = True
            raise
        if call.error is not None:
            error, call.error = call.error, None  # no reference cycle through the frame
            raise error
        return call.value

    # --------------------------------------------------------- lane side (threads)

    def _finished(self, call: _Call) -> bool:
        """Queue ``call`` for delivery; False if the trio run is over (the lane then ends)."""
        with self._lock:
            self._done.append(call)
            if self._delivery_scheduled:
                return True  # the callback already on its way delivers this one too
            self._delivery_scheduled = True
        assert self._token is not None
        try:
            self._token.run_sync_soon(self._deliver)
        except trio.RunFinishedError:
            with self._lock:
                self._run_over = True
            return False
        return True

    def _retire(self, lane: _Lane) -> bool:
        """Whether an idle ``lane`` may end its thread (not if a call is on its way to it)."""
        with self._lock:
            if lane in self._idle:
                self._idle.remove(lane)
                return True
            return self._run_over

    # ------------------------------------------------------- trio side (callback)

    def _deliver(self) -> None:
        with self._lock:
            done, self._done = self._done, []
            self._delivery_scheduled = False
            # idle again before the slot is released: the next call finds its thread
            self._idle.extend(call.lane for call in done if call.lane is not None)
        for call in done:
            call.slot.release_on_behalf_of(call)
            if not call.abandoned:
                call.done.set()
