"""A dashboard served from a trio thread, for code that drives it from outside trio
(the browser test and the screenshot script, whose Playwright API blocks)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import trio

from omniq_trio import AsyncOmniQ, Settings, WorkerPool
from omniq_trio.dashboard import serve_dashboard

T = TypeVar("T")

SETTINGS = Settings(backend="memory", retry_jitter=0, result_ttl=86_400.0)


class ServedDashboard:
    """A memory store, the dashboard over it, and worker pools on demand, in one trio thread."""

    def __init__(self, url: str, omniq: AsyncOmniQ, token: trio.lowlevel.TrioToken) -> None:
        self.url = url
        self.omniq = omniq
        self._token = token
        self._nursery: trio.Nursery | None = None

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` in the server's trio thread and return its result."""
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def start_worker(self, concurrency: int = 4) -> WorkerPool:
        async def start() -> WorkerPool:
            assert self._nursery is not None
            pool = self.omniq.worker(concurrency=concurrency, poll_interval=0.05)
            await self._nursery.start(pool.run)
            return pool

        return self.call(start)


@contextmanager
def served_dashboard(settings: Settings = SETTINGS, **options: Any) -> Iterator[ServedDashboard]:
    """Serve the dashboard on a free port until the block ends; ``options`` go to
    :func:`serve_dashboard`."""
    started: queue.Queue[ServedDashboard | BaseException] = queue.Queue()
    done: trio.Event | None = None

    async def main() -> None:
        nonlocal done
        done = trio.Event()
        try:
            async with AsyncOmniQ(settings) as omniq, trio.open_nursery() as nursery:
                url = await nursery.start(
                    lambda task_status: serve_dashboard(
                        settings, port=0, omniq=omniq, task_status=task_status, **options
                    )
                )
                served = ServedDashboard(url, omniq, trio.lowlevel.current_trio_token())
                served._nursery = nursery
                started.put(served)
                await done.wait()
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            started.put(exc)
            raise

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    served = started.get(timeout=30)
    if isinstance(served, BaseException):
        raise served
    try:
        yield served
    finally:

        async def finish() -> None:
            assert done is not None
            done.set()

        served.call(finish)
        thread.join(timeout=30)
