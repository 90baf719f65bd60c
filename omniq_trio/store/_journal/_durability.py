"""When a batch of the journal is durable, and what a failed write or sync does to the store.

A mixin of :class:`~omniq_trio.store._journal._store.JournalStore` (its state
lives there): one durable sync for many waiters, the ``interval`` policy's
deferred sync, and the failed state, with the backoff after which the next call
reopens the journal from disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import trio

from ...config import FsyncPolicy
from ...errors import JournalError, StoreClosedError, StoreError
from .._index import TaskIndex
from .._indexed import Plan
from . import _fileio as fileio
from . import _files as files

__all__ = ["FIRST_BACKOFF", "MAX_BACKOFF", "Durability"]

log = logging.getLogger("omniq_trio.store.journal")

#: Seconds before a failed journal is first reopened; doubled after each failed try.
FIRST_BACKOFF: Final = 0.1
MAX_BACKOFF: Final = 10.0
#: Seconds a durable sync may have taken for the next one to run on the event loop
#: itself, when nothing else waits to run: a hop to a thread and back costs more
#: than a fast sync (~150 us against ~150-400 us on an SSD), but a slow disk must
#: not stall the loop, so one slow sync sends the next ones to a thread until a
#: sync is fast again.
INLINE_SYNC_MAX: Final = 0.002


@attrs.define(eq=False)
class Op:
    """A change waiting for a batch."""

    plan: Callable[[TaskIndex], Plan[Any]]
    wake: trio.Event = attrs.field(factory=trio.Event)
    finished: bool = False
    result: Any = None
    error: BaseException | None = None
    #: a written batch whose sync the leader handed to this op's owner (its own op
    #: needed none): the owner waits for the sync and acknowledges the batch
    settle: Written | None = None

    def finish(self, *, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True
        self.wake.set()


@attrs.frozen
class Written:
    """A written batch: the answers of the ops that wait for the sync, and where it ends."""

    durable: list[tuple[Op, Any]]
    #: (segment, offset) the journal must be synced to before they are acknowledged
    end: tuple[int, int]


class Durability:
    """Mixin of ``JournalStore``: when a batch is durable, and what a failure does."""

    # the store's state this uses (set by JournalStore.__init__)
    _base_dir: Path
    _fsync: FsyncPolicy
    _fsync_interval: float
    _state: Literal["closed", "open", "failed"]
    _failure: BaseException | None
    _retry_at: float
    _backoff: float
    #: (segment, from, to): our unsynced bytes when a sync failed, to drop at reopen
    _doubtful: tuple[int, int, int] | None
    _io_lock: trio.Lock
    _lock_fd: int
    _segment_fd: int
    _segment_number: int
    _offset: int
    #: bytes of the segment written and synced; one durable sync at a time
    _synced: int
    #: whether other processes' records lie after ``_synced`` (then what is unsynced
    #: is not all ours to drop after a failed sync)
    _foreign_unsynced: bool
    _sync_done: trio.Event | None
    _sync_scheduled: bool
    _last_sync: float
    #: seconds the last durable sync itself took (not counting a thread hop)
    _sync_took: float
    #: whether a claim, renewal or release was written since the last durable sync
    _worker_busy: bool
    _queue: list[Op]

    def _open_sync(self) -> None:
        raise NotImplementedError

    def _notify_all(self) -> None:
        raise NotImplementedError

    async def _usable(self) -> None:
        """Return if the store can serve a call; after a failure, reopen it once its
        backoff has passed (raising ``StoreError`` until that works)."""
        if self._state == "open":
            return
        if self._state == "closed":
            raise StoreClosedError(f"the journal in {self._base_dir} is closed; open it first")
        wait = self._retry_at - trio.current_time()
        if wait > 0:
            raise StoreError(
                f"the journal in {self._base_dir} failed ({self._failure}); it is "
                f"reopened in {wait:.1f}s"
            ) from self._failure
        with trio.CancelScope(shield=True):
            async with self._io_lock:
                if self._state != "failed":
                    return
                await self._sync_idle()
                try:
                    await trio.to_thread.run_sync(self._drop_doubtful)
                    await trio.to_thread.run_sync(self._open_sync)
                except (OSError, JournalError) as exc:
                    self._retry_at = trio.current_time() + self._backoff
                    self._backoff = min(MAX_BACKOFF, self._backoff * 2)
                    log.warning(
                        "journal %s: reopening failed (%s); trying again in %.1fs",
                        self._base_dir,
                        exc,
                        self._retry_at - trio.current_time(),
                    )
                    raise StoreError(
                        f"the journal in {self._base_dir} could not be reopened ({exc})"
                    ) from exc
        log.warning("journal %s: reopened after a failure; carrying on", self._base_dir)
        self._notify_all()

    def _drop_doubtful(self) -> None:
        """After a failed sync: remove the bytes it was to make durable, if they are all
        ours and nothing follows them (their callers were told the change failed; the
        disk must not say otherwise). Blocking."""
        if self._doubtful is None:
            return
        segment, start, end = self._doubtful
        if segment == self._segment_number and self._segment_fd >= 0:
            fileio.lock(self._lock_fd, exclusive=True)
            try:
                # nothing follows them (the file ends there, or a preallocated tail)
                if not fileio.has_data_at(self._segment_fd, end):
                    fileio.truncate(self._segment_fd, start)
                    fileio.durable_sync(self._segment_fd)
                    log.warning(
                        "journal %s: dropped %d bytes of changes whose sync failed (their "
                        "callers were told so)",
                        files.segment_path(self._base_dir, self._segment_number),
                        end - start,
                    )
            finally:
                fileio.unlock(self._lock_fd)
        self._doubtful = None

    def _fail(self, exc: BaseException) -> None:
        """The in-memory state may be ahead of the disk: stop using it until reopened."""
        if self._state != "open":
            return
        self._state, self._failure = "failed", exc
        if self._fsync == "always" and not self._foreign_unsynced and self._synced < self._offset:
            # nothing after _synced was acknowledged (claims aside, which need not last)
            self._doubtful = (self._segment_number, self._synced, self._offset)
        # failures with no success in between wait longer and longer, up to MAX_BACKOFF
        self._retry_at = trio.current_time() + self._backoff
        log.error(
            "journal %s failed: %s; reopening it from disk in %.1fs",
            self._base_dir,
            exc,
            self._backoff,
        )
        self._backoff = min(MAX_BACKOFF, self._backoff * 2)

    def _fail_ops(self, ops: Sequence[Op], exc: BaseException) -> None:
        if isinstance(exc, StoreError) and not isinstance(exc, JournalError):
            error: BaseException = exc  # the store had failed already: say so as it is
        else:
            self._fail(exc)
            error = StoreError(f"journal write failed: {exc}")
            error.__cause__ = exc
        for op in ops:
            if not op.finished:
                op.finish(error=error)

    async def _settle(self, written: Written) -> None:
        """Acknowledge the batch's durable ops once it is as durable as the policy asks."""
        if not written.durable:
            return
        segment, offset = written.end
        try:
            await self._sync_to(segment, offset)
        except OSError as exc:
            self._fail_ops([op for op, _ in written.durable], exc)
            return
        if self._fsync == "always" and segment == self._segment_number and self._synced < offset:
            # the store failed before its sync: it may not be on disk
            error = StoreError(f"the journal in {self._base_dir} failed before this was synced")
            error.__cause__ = self._failure
            for op, _ in written.durable:
                op.finish(error=error)
            return
        self._backoff = FIRST_BACKOFF  # written and synced: the journal works
        for op, result in written.durable:
            op.finish(result=result)

    async def _sync_to(self, segment: int, offset: int) -> None:
        """Wait until the journal is synced past ``offset`` (one sync for many waiters)."""
        while segment == self._segment_number and self._synced < offset and self._state == "open":
            if self._sync_done is not None:
                await self._sync_done.wait()
                continue
            if self._fsync == "never":
                return
            now = trio.current_time()
            if self._fsync == "interval" and now - self._last_sync < self._fsync_interval:
                self._sync_later(self._last_sync + self._fsync_interval)
                return
            target, self._sync_done = self._offset, trio.Event()
            inline, self._worker_busy = self._sync_inline(), False
            try:
                if inline:
                    self._timed_sync(self._segment_fd)
                else:
                    await trio.to_thread.run_sync(self._timed_sync, self._segment_fd)
            finally:
                self._sync_done.set()
                self._sync_done = None
            self._synced, self._last_sync = max(self._synced, target), now
            if self._synced >= self._offset:
                self._foreign_unsynced = False

    def _sync_inline(self) -> bool:
        """Whether to sync on the event loop: syncs have been fast, and no other task is
        ready to run (nor queued to commit) that the sync would hold up.

        Not in a process that claims tasks (a claim, renewal or release was written
        since the last sync): its executors and its poller are woken all the time,
        often by tasks that run later in this same scheduler pass, which the
        statistics do not count as runnable yet (nor a thread's result on its way)."""
        return (
            self._sync_took < INLINE_SYNC_MAX
            and not self._worker_busy
            and not self._queue
            and trio.lowlevel.current_statistics().tasks_runnable == 0
        )

    def _timed_sync(self, fd: int) -> None:
        started = time.perf_counter()
        try:
            fileio.durable_sync(fd)
        finally:
            self._sync_took = time.perf_counter() - started

    def _sync_later(self, deadline: float) -> None:
        """Under fsync="interval", make sure what was just acknowledged is synced by ``deadline``
        even if nothing else is written meanwhile."""
        if self._sync_scheduled:
            return
        self._sync_scheduled = True
        # a system task: the store may have been opened by code without a nursery
        trio.lowlevel.spawn_system_task(self._deferred_sync, deadline)

    async def _deferred_sync(self, deadline: float) -> None:
        try:
            await trio.sleep_until(deadline)
            self._sync_scheduled = False
            if self._state == "open":
                await self._sync_to(self._segment_number, self._offset)
        except OSError as exc:
            self._fail(exc)
        except Exception:
            log.exception("journal %s: deferred sync failed", self._base_dir)
        finally:
            self._sync_scheduled = False

    async def _sync_idle(self) -> None:
        """Wait for a sync in flight, before the descriptor it uses is closed."""
        while self._sync_done is not None:
            await self._sync_done.wait()
