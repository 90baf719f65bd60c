"""``TrioThread``: one ``trio.run`` in a background thread that other threads hand calls to.

The blocking :class:`~omniq_trio.OmniQ` and the asyncio client
:class:`~omniq_trio.AsyncioOmniQ` both keep their :class:`AsyncOmniQ` (and
its store) in one of these. A caller hands over an ``async`` function with no
arguments and gets a :class:`concurrent.futures.Future` for its outcome
(:meth:`TrioThread.submit`), or blocks on it (:meth:`TrioThread.run`).

Each call runs as a task of the thread's nursery, in a cancel scope of its
own, so one call can be cancelled from outside (:meth:`Submitted.cancel`)
and closing can cancel every call still waiting. A call submitted with
``shield=True`` is never cancelled: it runs to its end even if its caller
stopped waiting, so a change to the store is either made or not, never half.

Closing (:meth:`TrioThread.request_close`) refuses new calls, awaits the
graceful stops registered with :meth:`TrioThread.stop_at_close` (running
worker pools), cancels the calls still running (they raise
``StoreClosedError``), waits for the shielded ones, runs ``cleanup`` (closing
the store) and ends the thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, Generic, TypeVar, final

import attrs
import outcome
import trio

from .errors import StoreClosedError

__all__ = [
    "THREAD_NAME",
    "Submitted",
    "TrioThread",
    "call_from_asyncio",
    "not_from_trio",
    "settled",
]

T = TypeVar("T")

#: Name of the background thread, so that it is easy to tell apart in a dump.
THREAD_NAME: Final = "omniq-trio"


def not_from_trio(what: str) -> None:
    """Refuse a blocking call from trio code, saying what to use instead."""
    # trio.from_thread would refuse too, with a message that does not say what to do
    if trio.lowlevel.in_trio_run():
        raise RuntimeError(
            f"OmniQ.{what}() blocks, so it cannot be called from trio code (it would stall "
            "the event loop, or deadlock inside OmniQ's own thread); use AsyncOmniQ there, "
            "or trio.to_thread.run_sync"
        )


@final
@attrs.define(eq=False)
class Submitted(Generic[T]):
    """A call handed to a :class:`TrioThread`: its future, and a way to cancel it."""

    #: settled in the background thread with the call's result or exception;
    #: cancelled (``future.cancelled()``) if :meth:`cancel` stopped the call
    future: concurrent.futures.Future[T]
    _thread: TrioThread
    _shield: bool
    #: set by cancel(), read by the background thread when the call starts
    _cancel_requested: bool = False
    #: entered by the call's task; made in the background thread
    _scope: trio.CancelScope | None = None

    def cancel(self) -> None:
        """Ask the background thread to cancel the call; returns at once.

        A shielded call, or one that has ended, is not affected. Callable from any thread.
        """
        if self._shield or self.future.done():
            return
        # a call not started yet sees the flag when it starts; a running one needs telling
        self._cancel_requested = True
        ready = self._thread._ready
        if ready.done() and ready.exception() is None:
            with contextlib.suppress(trio.RunFinishedError):  # it has ended, and the call too
                ready.result().run_sync_soon(self._cancel_in_trio)

    def _cancel_in_trio(self) -> None:
        if self._scope is not None:
            self._scope.cancel()


@final
class TrioThread:
    """A background thread running ``trio.run``, into which any thread submits calls.

    ``owner`` names the object in error messages (``"OmniQ"``); ``cleanup`` is
    awaited in the thread once every call has ended, before it exits.
    Nothing here blocks but :meth:`run`, :meth:`run_sync`, :meth:`close` and
    :meth:`join`: an asyncio caller uses :meth:`submit` and :meth:`request_close`.
    """

    def __init__(
        self, *, owner: str, cleanup: Callable[[], Awaitable[None]], name: str = THREAD_NAME
    ) -> None:
        self._owner = owner
        self._cleanup = cleanup
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        #: settled once trio runs (with its token) or has failed to start
        self._ready: concurrent.futures.Future[trio.lowlevel.TrioToken] = (
            concurrent.futures.Future()
        )
        #: settled when trio.run has returned (or raised)
        self._finished: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._started = False
        self._close_requested_flag = False
        # Touched only in the background thread:
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self._close_requested = trio.Event()
        self._calls: set[Submitted[Any]] = set()
        self._stops: set[Callable[[], Awaitable[None]]] = set()

    # ---------------------------------------------------------------- any thread

    @property
    def closed(self) -> bool:
        """Whether closing was requested (calls made from now on fail)."""
        return self._close_requested_flag

    @property
    def finished(self) -> concurrent.futures.Future[None]:
        """Settled when trio's run has ended (its exception: the error that ended it)."""
        return self._finished

    @property
    def calls_in_flight(self) -> int:
        """How many submitted calls are running in the background thread (a snapshot)."""
        return len(self._calls)

    def start(self) -> concurrent.futures.Future[trio.lowlevel.TrioToken]:
        """Start the thread, without waiting for it; later calls return the same future.

        The future is settled when trio runs; an error starting it is its exception.
        """
        with self._lock:
            if not self._started:
                if self._close_requested_flag:
                    if not self._ready.done():
                        self._ready.set_exception(self._closed_error())
                else:
                    self._started = True
                    self._thread.start()
        return self._ready

    def submit(self, async_fn: Callable[[], Awaitable[T]], *, shield: bool = False) -> Submitted[T]:
        """Run ``async_fn()`` in the background thread (starting it if needed); returns at once.

        The future gets its result or exception. A closed thread settles it with
        ``StoreClosedError``; so does closing while the call waits, unless it is
        shielded (then it runs to its end).
        """
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        submitted = Submitted(future, self, shield)
        if self._close_requested_flag:
            future.set_exception(self._closed_error())
        else:
            self.start().add_done_callback(functools.partial(self._hand_in, async_fn, submitted))
        return submitted

    def run(self, what: str, async_fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``async_fn()`` in the background thread and block until it ends.

        Its exception is raised here. ``what`` names the method in the error
        raised when called from trio code (which would deadlock or stall).
        """
        not_from_trio(what)
        return self.submit(async_fn).future.result()

    def run_sync(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn()`` in the background thread, between its tasks, and return its value."""
        not_from_trio(what)
        if self._close_requested_flag:
            raise self._closed_error()
        try:
            return trio.from_thread.run_sync(fn, trio_token=self.start().result())
        except trio.RunFinishedError:
            raise self._closed_error() from None

    def request_close(self) -> tuple[bool, concurrent.futures.Future[None]]:
        """Ask the thread to close; returns at once.

        Returns whether this was the first request, and a future settled when
        trio's run has ended (its exception: the error that ended it, if any).
        """
        with self._lock:
            first = not self._close_requested_flag
            self._close_requested_flag = True
            started = self._started
        if first:
            if started:
                self._ready.add_done_callback(self._hand_in_close)
            else:
                self._finished.set_result(None)
        return first, self._finished

    def close(self) -> None:
        """Close and wait until the thread has ended (blocking). Again: a no-op.

        The first call raises the error that ended trio's run, if one did.
        """
        not_from_trio("close")
        first, finished = self.request_close()
        self.join()
        if first:
            finished.result()

    def join(self) -> None:
        """Wait for the thread to end (it ends only once closing was requested)."""
        with self._lock:
            started = self._started
        if started:
            self._thread.join()

    def _hand_in(
        self,
        async_fn: Callable[[], Awaitable[T]],
        submitted: Submitted[T],
        ready: concurrent.futures.Future[trio.lowlevel.TrioToken],
    ) -> None:
        # runs in the submitting thread, or in the background one as it starts
        try:
            ready.result().run_sync_soon(self._start_call, async_fn, submitted)
        except Exception:  # trio did not start, or has ended
            submitted.future.set_exception(self._closed_error())

    def _hand_in_close(self, ready: concurrent.futures.Future[trio.lowlevel.TrioToken]) -> None:
        if ready.exception() is None:
            with contextlib.suppress(trio.RunFinishedError):  # it ended by itself
                ready.result().run_sync_soon(self._close_requested.set)

    # ------------------------------------------------------- the background thread

    @contextlib.contextmanager
    def stop_at_close(self, stop: Callable[[], Awaitable[None]]) -> Iterator[None]:
        """While inside, closing awaits ``stop()`` before cancelling the calls.

        For a long call that has a graceful end (a worker pool's ``run``);
        use inside the call, in the background thread.
        """
        self._stops.add(stop)
        try:
            yield
        finally:
            self._stops.discard(stop)

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # handed to close(), which raises it
            if not self._ready.done():
                self._ready.set_exception(exc)
            self._finished.set_exception(exc)
        else:
            self._finished.set_result(None)

    async def _main(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._ready.set_result(trio.lowlevel.current_trio_token())
                await self._close_requested.wait()
                self._closing = True  # from here on, new calls are refused
                async with trio.open_nursery() as stoppers:
                    for stop in list(self._stops):
                        stoppers.start_soon(stop)
                for call in self._calls:
                    if not call._shield and call._scope is not None:
                        call._scope.cancel()  # shielded calls run on to their end
        finally:
            with trio.CancelScope(shield=True):
                await self._cleanup()

    def _start_call(self, async_fn: Callable[[], Awaitable[T]], submitted: Submitted[T]) -> None:
        if self._closing or self._nursery is None:
            submitted.future.set_exception(self._closed_error())
            return
        submitted._scope = scope = trio.CancelScope(shield=submitted._shield)
        if submitted._cancel_requested and not submitted._shield:
            scope.cancel()
        self._calls.add(submitted)
        self._nursery.start_soon(self._serve, async_fn, submitted)

    async def _serve(self, async_fn: Callable[[], Awaitable[T]], submitted: Submitted[T]) -> None:
        assert submitted._scope is not None
        result: outcome.Outcome[T] | None = None
        try:
            with submitted._scope:
                result = outcome.Value(await async_fn())
            if result is None:  # the scope caught a cancellation
                result = outcome.Error(
                    StoreClosedError(f"this {self._owner} was closed while the call was waiting")
                    if self._closing
                    else concurrent.futures.CancelledError()
                )
        except Exception as exc:  # the call's own error, raised in its caller's thread
            result = outcome.Error(exc)
        finally:
            # out of the count before the caller hears back
            self._calls.discard(submitted)
            if result is None:  # a BaseException is ending the run: leave no caller hanging
                result = outcome.Error(self._closed_error())
            _settle(submitted.future, result)

    def _closed_error(self) -> StoreClosedError:
        return StoreClosedError(f"this {self._owner} is closed")


# ------------------------------------------------------------- asyncio callers


async def settled(future: concurrent.futures.Future[T]) -> T:
    """Await a future settled in another thread, without blocking the loop.

    Unlike ``asyncio.wrap_future``, cancelling the wait leaves ``future`` alone.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[T] = loop.create_future()

    def copy() -> None:  # in the loop
        if waiter.done():  # the awaiting task was cancelled
            return
        if future.cancelled():
            waiter.cancel()
        elif (exc := future.exception()) is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(future.result())

    def on_done(_: concurrent.futures.Future[T]) -> None:  # in the thread that settled it
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(copy)

    future.add_done_callback(on_done)
    return await waiter


async def call_from_asyncio(
    thread: TrioThread,
    async_fn: Callable[[], Awaitable[T]],
    *,
    shield: bool = False,
    wait_on_cancel: bool = False,
) -> T:
    """Await ``async_fn()`` run in ``thread``, from asyncio code, without blocking the loop.

    Cancelling the wait cancels the call, unless it is shielded (then it runs
    on to its end in the thread, and only the wait stops). With
    ``wait_on_cancel``, a cancelled caller still waits for the cancelled call
    to end (a worker pool's ``run()``: its running tasks are back in the queue
    when the caller sees ``CancelledError``).
    """
    ready = thread.start()
    if not ready.done():
        await settled(ready)
    submitted = thread.submit(async_fn, shield=shield)
    try:
        return await settled(submitted.future)
    except asyncio.CancelledError:
        submitted.cancel()
        if wait_on_cancel:
            await _wait_out(submitted.future)
        raise


async def _wait_out(future: concurrent.futures.Future[Any]) -> None:
    """Wait for ``future`` to settle whatever it settles with, through further cancels."""
    waiter = asyncio.ensure_future(settled(future))
    while not waiter.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(waiter)
    if not waiter.cancelled():
        waiter.exception()  # retrieved: the caller is told it was cancelled instead


def _settle(future: concurrent.futures.Future[T], result: outcome.Outcome[T]) -> None:
    if isinstance(result, outcome.Value):
        future.set_result(result.value)
    elif isinstance(result, outcome.Error):
        if isinstance(result.error, concurrent.futures.CancelledError):
            future.cancel()
        else:
            future.set_exception(result.error)
