"""``StoreHealth``: how long the pool's store calls have kept failing, and when to give up.

The poller, the recorder and the lease keeper report each store call that
fails or succeeds. A store that fails and recovers (the journal reopens itself
with backoff, PostgreSQL reconnects) costs the pool nothing but the wait. A
store that stays unavailable for ``Settings.store_failure_timeout`` ends the
pool: a worker alive but doing nothing would not be restarted by anyone, so it
stops, and ``run()`` raises :class:`~omniq_trio.errors.StoreUnavailableError`
(``omniq-trio worker`` exits with status 75, EX_TEMPFAIL, for a supervisor).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..errors import StoreUnavailableError
from ..logging import worker_logger

__all__ = ["StoreHealth"]


class StoreHealth:
    """Store failures as the pool's actors see them."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._failing_since: float | None = None
        self._last_error: BaseException | None = None
        self._changed = trio.Event()

    @property
    def failing_since(self) -> float | None:
        """When (trio time) the current run of failures began; ``None`` if none."""
        return self._failing_since

    def failed(self, error: BaseException) -> None:
        """A store call raised ``error``."""
        self._last_error = error
        if self._failing_since is None:
            self._failing_since = trio.current_time()
            worker_logger.warning(
                "the store is failing (%s); retrying, and stopping the worker if it stays "
                "unavailable for %ss (store_failure_timeout)",
                error,
                self.timeout,
            )
            self._wake()

    def ok(self) -> None:
        """A store call succeeded."""
        if self._failing_since is not None:
            worker_logger.warning(
                "the store is available again after %.1fs of failures; carrying on",
                trio.current_time() - self._failing_since,
            )
            self._failing_since = None
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def watch(self, give_up: Callable[[StoreUnavailableError], None]) -> None:
        """Call ``give_up`` once the store has failed for ``timeout`` without a success
        in between; runs until then (or until cancelled)."""
        while True:
            while self._failing_since is None:
                await self._changed.wait()
            since = self._failing_since
            with trio.move_on_at(since + self.timeout):
                while self._failing_since == since:
                    await self._changed.wait()
            if self._failing_since == since:
                error = StoreUnavailableError(
                    f"the store has been unavailable for {self.timeout:g}s "
                    f"(store_failure_timeout); last error: {self._last_error}"
                )
                error.__cause__ = self._last_error
                worker_logger.error(
                    "%s; stopping the worker (omniq-trio worker exits with status 75 so "
                    "that its supervisor restarts it)",
                    error,
                )
                give_up(error)
                return
