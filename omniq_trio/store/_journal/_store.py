"""``JournalStore``: the default store, an append-only journal of events in ``base_dir``.

Opening replays the newest segment into a :class:`TaskIndex`; every change
is an event appended to it. Several processes can share one directory:

* A change is committed under an exclusive ``flock`` on the lock file, after
  catching up on what other processes appended, and is checked against that
  up-to-date state, so no task is ever claimed by two workers.
* A read catches up first (under a shared lock) when the segment has grown.
* A commit wakes the processes waiting for what it did (``_wakeup.py``).

**Group commit.** Concurrent changes share one write and one ``fdatasync``.
There is no writer task: the first caller to find no commit in progress
becomes the *leader*, lets the other ready tasks queue their changes, then
writes them all as one batch; when it is done it hands the lead to the first
change queued meanwhile. (A writer actor would need a nursery to live in, and
a store may be opened lazily by ``AsyncOmniQ`` from code that has none.) A
queued change is shielded: once requested it is carried out, so a caller
cancelled while waiting cannot leave its change half made.

**Durability.** Under ``fsync="always"``, a call that creates, finishes,
cancels, retries or purges returns only after its batch is on disk. Claims,
renewals and releases are not waited on: losing one in a crash only returns
the task to the queue, which is what a crash does anyway. A failed write or
sync puts the store in a failed state (reopen it to continue): after a failed
``fsync`` the kernel may have dropped the data, so carrying on could
acknowledge changes that are not on disk.

Within this process, a change is visible to readers from the moment its
batch is written, up to one ``fdatasync`` before its caller is acknowledged.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, final

import attrs
import trio

from ...config import FsyncPolicy, Settings
from ...errors import JournalCorruptError, JournalError, StoreClosedError, StoreError
from .._base import Change, Outcome, StoreCapabilities
from .._events import (
    Cancelled,
    Event,
    Expired,
    Purged,
    Put,
    QueueLimited,
    QueuePaused,
    Retried,
    ScheduleFired,
    SchedulesRecorded,
)
from .._index import TaskIndex
from .._indexed import IndexedStore, Plan, changes_of
from . import _files as files
from ._frames import encode_batch, scan
from ._records import encode_event
from ._replay import Replayed, decode, replay
from ._segment import write_segment
from ._wakeup import Wakeups

__all__ = ["JournalStore"]

R = TypeVar("R")
log = logging.getLogger("omniq_trio.store.journal")

#: Events whose callers wait for them to be on disk (under fsync="always").
_DURABLE: Final = (
    Put,
    Outcome,
    Cancelled,
    Retried,
    Purged,
    Expired,
    QueuePaused,
    QueueLimited,
    ScheduleFired,
    SchedulesRecorded,
)
#: Processes of one machine share it.
_CAPABILITIES: Final = StoreCapabilities(shared=True, wakes_other_processes=True)


@attrs.define(eq=False)
class _Op:
    """A change waiting for a batch."""

    plan: Callable[[TaskIndex], Plan[Any]]
    wake: trio.Event = attrs.field(factory=trio.Event)
    finished: bool = False
    result: Any = None
    error: BaseException | None = None

    def finish(self, *, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True
        self.wake.set()


@attrs.frozen
class _Written:
    """A written batch: the answers of the ops that wait for the sync, and where it ends."""

    durable: list[tuple[_Op, Any]]
    #: (segment, offset) the journal must be synced to before they are acknowledged
    end: tuple[int, int]


@final
class JournalStore(IndexedStore):
    """Tasks in an append-only journal in ``base_dir``, shared safely between processes."""

    def __init__(
        self,
        base_dir: Path | str,
        *,
        fsync: FsyncPolicy = "always",
        fsync_interval: float = 0.05,
        compact_threshold: float = 0.5,
        compact_min_records: int = 10_000,
    ) -> None:
        super().__init__()
        self._base_dir = Path(base_dir)
        self._fsync = fsync
        self._fsync_interval = fsync_interval
        self._compact_threshold = compact_threshold
        self._compact_min_records = compact_min_records
        self._state: Literal["closed", "open", "failed"] = "closed"
        self._failure: BaseException | None = None
        self._lock_fd = -1
        self._segment_fd = -1
        self._segment_number = 0
        self._next_segment = ""
        self._segment = 0  # also sets _next_segment
        self._offset = 0
        self._records = 0
        # bytes of the segment written and synced; one fdatasync at a time
        self._synced = 0
        self._sync_done: trio.Event | None = None
        self._sync_scheduled = False
        self._last_sync = -float("inf")
        # Serialises file I/O and index catch-up in this process. flock alone
        # cannot: a shared lock taken on the same descriptor would silently
        # downgrade an exclusive one held by a concurrent commit.
        self._io_lock = trio.Lock()
        self._queue: list[_Op] = []
        self._leading = False
        self._wakeups = Wakeups(self._base_dir, self._notify)

    @classmethod
    def from_settings(cls, settings: Settings) -> JournalStore:
        return cls(
            settings.base_dir,
            fsync=settings.fsync,
            fsync_interval=settings.fsync_interval,
            compact_threshold=settings.compact_threshold,
            compact_min_records=settings.compact_min_records,
        )

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def capabilities(self) -> StoreCapabilities:
        return _CAPABILITIES

    @property
    def segment_path(self) -> Path:
        """The segment file appends go to."""
        return files.segment_path(self._base_dir, self._segment)

    # ------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        if self._is_open():
            await trio.lowlevel.checkpoint()
            return
        with trio.CancelScope(shield=True):
            async with self._io_lock:
                if self._is_open():  # opened by a concurrent call meanwhile
                    return
                await trio.to_thread.run_sync(self._open_sync)
        self._notify_all()

    def _is_open(self) -> bool:
        return self._state == "open"

    def _open_sync(self) -> None:
        if self._state == "failed":
            self._close_fds()
        files.create_dir(self._base_dir)
        lock_fd = files.open_lock(self._base_dir)
        try:
            files.lock(lock_fd, exclusive=True)
            try:
                number = self._prepare_segments()
                segment_fd, replayed = self._load(number, exclusive=True)
            finally:
                files.unlock(lock_fd)
        except BaseException:
            os.close(lock_fd)
            raise
        self._lock_fd, self._segment_fd, self._segment = lock_fd, segment_fd, number
        self._index, self._offset, self._records = replayed.index, replayed.end, replayed.records
        self._synced = self._offset
        self._state, self._failure = "open", None

    def _prepare_segments(self) -> int:
        """The newest segment's number, after clearing what an interrupted compaction left."""
        for name in os.listdir(self._base_dir):
            if name.endswith(".tmp"):
                files.remove_quietly(self._base_dir / name)
        numbers = files.list_segments(self._base_dir)
        if not numbers:
            write_segment(self._base_dir, 1, [])
            return 1
        for older in numbers[:-1]:
            files.remove_quietly(files.segment_path(self._base_dir, older))
        return numbers[-1]

    def _load(self, number: int, *, exclusive: bool) -> tuple[int, Replayed]:
        """Open and replay segment ``number``; under ``exclusive``, cut a torn tail."""
        path = files.segment_path(self._base_dir, number)
        fd = files.open_segment(path)
        try:
            data = files.read_from(fd, 0)
            replayed, torn_at = replay(data, path, tolerate_holes=self._fsync != "always")
            if torn_at is not None and exclusive:
                log.warning(
                    "journal %s: cutting off a torn write at offset %d (%d bytes that were "
                    "never acknowledged)",
                    path,
                    replayed.end,
                    len(data) - replayed.end,
                )
                os.ftruncate(fd, replayed.end)
                os.fdatasync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, replayed

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            async with self._io_lock:
                if self._state == "closed":
                    return
                self._wakeups.close()
                await self._sync_idle()
                try:
                    if self._state == "open" and self._synced < self._offset:
                        await trio.to_thread.run_sync(os.fdatasync, self._segment_fd)
                finally:
                    self._close_fds()

    def _close_fds(self) -> None:
        os.close(self._segment_fd)
        os.close(self._lock_fd)
        self._segment_fd = self._lock_fd = -1
        self._state = "closed"

    def _check_usable(self) -> None:
        if self._state == "open":
            return
        if self._state == "failed":
            raise StoreClosedError(
                f"the journal in {self._base_dir} failed ({self._failure}); close and reopen it"
            ) from self._failure
        raise StoreClosedError(f"the journal in {self._base_dir} is closed; open it first")

    def _fail(self, exc: BaseException) -> None:
        log.error("journal %s failed: %s", self._base_dir, exc)
        self._state, self._failure = "failed", exc

    def _notify_all(self) -> None:
        """Everything may have changed (opened, or another process compacted)."""
        self._notify(Change.WORK)
        self._notify(Change.FINISHED)

    # ---------------------------------------------------------------- commit

    async def _commit(self, plan: Callable[[TaskIndex], Plan[R]]) -> R:
        # a cancelled caller changes nothing: the rest is shielded
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_usable()
        op = _Op(plan)
        self._queue.append(op)
        with trio.CancelScope(shield=True):
            if self._leading:
                await op.wake.wait()
            if not op.finished:
                await self._lead()
        if op.error is not None:
            raise op.error
        result: R = op.result
        return result

    async def _lead(self) -> None:
        """Write everything queued as one batch, pass the lead on, then wait for the sync."""
        self._leading = True
        written: _Written | None = None
        try:
            # let the other tasks that are ready to run queue their changes too
            await trio.lowlevel.cancel_shielded_checkpoint()
            batch, self._queue = self._queue, []
            written = await self._commit_batch(batch)
            await self._maybe_compact()
        finally:
            if self._queue:
                self._queue[0].wake.set()  # its owner leads next; _leading stays True
            else:
                self._leading = False
        # The next batch is written while this one syncs: a claim never waits
        # for an fsync it does not need.
        if written is not None:
            await self._settle(written)

    async def _commit_batch(self, batch: list[_Op]) -> _Written | None:
        applied: list[Event] = []
        ours = 0  # where this batch's own events start in `applied`, for other processes
        try:
            self._check_usable()
            await self._lock_io()
            try:
                await self._flock(exclusive=True)
                try:
                    applied.extend(await self._catch_up(exclusive=True))
                    ours = len(applied)
                    return self._write(batch, applied)
                finally:
                    files.unlock(self._lock_fd)
            finally:
                self._io_lock.release()
        except (OSError, JournalError) as exc:
            self._fail_ops(batch, exc)
        except Exception as exc:  # e.g. closed meanwhile: each waiting caller gets it
            for op in batch:
                if not op.finished:
                    op.finish(error=exc)
        except BaseException as exc:
            for op in batch:
                if not op.finished:
                    op.finish(error=exc)
            raise
        finally:
            self._applied(applied)
            self._wakeups.announce(changes_of(applied[ours:]))  # before the sync, as here
        return None

    def _fail_ops(self, ops: Sequence[_Op], exc: BaseException) -> None:
        if self._state == "open":
            self._fail(exc)
        error = StoreError(f"journal write failed: {exc}")
        error.__cause__ = exc
        for op in ops:
            if not op.finished:
                op.finish(error=error)

    def _write(self, batch: list[_Op], applied: list[Event]) -> _Written:
        """Plan, apply and write the batch (no await: nothing else sees it half done)."""
        index = self._index
        encoded: list[bytes] = []
        durable: list[tuple[_Op, Any]] = []
        immediate: list[tuple[_Op, Any]] = []
        for op in batch:
            try:
                events, answer = op.plan(index)
                records = [encode_event(event) for event in events]
            except Exception as exc:
                op.finish(error=exc)
                continue
            index.apply_all(events)
            waits = any(isinstance(event, _DURABLE) for event in events)
            (durable if waits else immediate).append((op, answer()))
            applied.extend(events)
            encoded.extend(records)
        if encoded:
            data = encode_batch(encoded)
            try:
                files.write_all(self._segment_fd, data)
            except OSError:
                # leave no partial frame behind for other processes to trip on
                os.ftruncate(self._segment_fd, self._offset)
                raise
            self._offset += len(data)
            self._records += len(encoded)
        # a claim, renewal or release is acknowledged once written: it need
        # not survive a crash, and it must not wait behind an fsync
        for op, result in immediate:
            op.finish(result=result)
        return _Written(durable, (self._segment, self._offset))

    async def _settle(self, written: _Written) -> None:
        """Acknowledge the batch's durable ops once it is as durable as the policy asks."""
        if not written.durable:
            return
        try:
            await self._sync_to(*written.end)
        except OSError as exc:
            self._fail_ops([op for op, _ in written.durable], exc)
            return
        for op, result in written.durable:
            op.finish(result=result)

    async def _sync_to(self, segment: int, offset: int) -> None:
        """Wait until the journal is synced past ``offset`` (one fdatasync for many waiters)."""
        while segment == self._segment and self._synced < offset and self._state == "open":
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
            try:
                await trio.to_thread.run_sync(os.fdatasync, self._segment_fd)
            finally:
                self._sync_done.set()
                self._sync_done = None
            self._synced, self._last_sync = max(self._synced, target), now

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
                await self._sync_to(self._segment, self._offset)
        except Exception:
            log.exception("journal %s: deferred fsync failed", self._base_dir)
        finally:
            self._sync_scheduled = False

    async def _sync_idle(self) -> None:
        """Wait for an fdatasync in flight, before the descriptor it uses is closed."""
        while self._sync_done is not None:
            await self._sync_done.wait()

    async def _lock_io(self) -> None:
        # Lock.acquire always yields; when the lock is free, skip the trip
        # through the scheduler (this runs once per batch).
        try:
            self._io_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._io_lock.acquire()

    async def _flock(self, *, exclusive: bool) -> None:
        if not files.try_lock(self._lock_fd, exclusive=exclusive):
            await trio.to_thread.run_sync(lambda: files.lock(self._lock_fd, exclusive=exclusive))

    # ------------------------------------------------------------------ read

    async def _read(self, query: Callable[[TaskIndex], R]) -> R:
        self._check_usable()
        if self._may_have_news():
            with trio.CancelScope(shield=True):
                async with self._io_lock:
                    await self._flock(exclusive=False)
                    try:
                        events = await self._catch_up(exclusive=False)
                    except JournalError as exc:
                        self._fail(exc)
                        raise
                    finally:
                        files.unlock(self._lock_fd)
            self._applied(events)
        else:
            await trio.lowlevel.checkpoint()
        return query(self._index)

    def _may_have_news(self) -> bool:
        """Whether another process may have appended or compacted (cheap: two stats)."""
        return os.fstat(self._segment_fd).st_size != self._offset or os.path.exists(
            self._next_segment
        )

    @property
    def _segment(self) -> int:
        return self._segment_number

    @_segment.setter
    def _segment(self, number: int) -> None:
        self._segment_number = number
        # checked before every append: kept as a str, a Path costs more to build than the stat
        self._next_segment = str(files.segment_path(self._base_dir, number + 1))

    async def _catch_up(self, *, exclusive: bool) -> list[Event]:
        """Apply what other processes appended since we last looked. Call under the locks."""
        # Small file operations (stat, pread of what others appended, write of a
        # batch) run inline: microseconds, against ~180 us for a thread round trip.
        if os.path.exists(self._next_segment):  # noqa: ASYNC240
            await self._reload()
            self._notify_all()
            return []
        size = os.fstat(self._segment_fd).st_size
        if size == self._offset:
            return []
        if size < self._offset:
            raise JournalError(
                f"journal {self.segment_path} shrank under us (to {size} bytes from "
                f"{self._offset}); was it repaired while in use? Reopen the store."
            )
        data = files.read_from(self._segment_fd, self._offset)
        found = scan(data, self._offset, tolerate_holes=self._fsync != "always")
        if found.damaged:
            assert found.bad_offset is not None
            raise JournalCorruptError(self.segment_path, found.bad_offset, found.reason)
        events: list[Event] = []
        for batch in found.batches:
            events.extend(decode(batch, self.segment_path, found.end))
        self._index.apply_all(events)
        self._offset = found.end
        self._records += len(events)
        if found.torn and exclusive:
            # we hold the exclusive lock, so no writer is mid-write: a dead one left this
            log.warning(
                "journal %s: cutting off a torn write at offset %d left by a crashed process",
                self.segment_path,
                found.end,
            )
            os.ftruncate(self._segment_fd, found.end)
        return events

    async def _reload(self) -> None:
        """Another process compacted: switch to the newest segment."""
        number = files.list_segments(self._base_dir)[-1]
        fd, replayed = await trio.to_thread.run_sync(lambda: self._load(number, exclusive=False))
        await self._sync_idle()
        os.close(self._segment_fd)
        self._segment_fd, self._segment = fd, number
        self._index, self._offset, self._records = replayed.index, replayed.end, replayed.records
        self._synced = self._offset

    def change_version(self, change: Change) -> int:
        self._wakeups.drain(change)  # what other processes announced counts too
        return super().change_version(change)

    async def wait_for_change(self, change: Change, seen: int, deadline: float) -> None:
        """Also woken by other processes' commits (``_wakeup.py``); polls where it cannot be."""
        wait_here = functools.partial(super().wait_for_change, change, seen)
        if self._is_open() and self._wakeups.listen(change) and self.change_version(change) == seen:
            await self._wakeups.wait(change, wait_here, deadline)
        else:
            await wait_here(deadline)

    # ------------------------------------------------------------ compaction

    async def compact(self) -> None:
        """Rewrite the journal as its live state only, safely at any instant.

        The new segment is written to a temporary file, synced, renamed into
        place and the directory synced before the old segment is removed; a
        crash at any point leaves one complete segment to open. Holds the
        exclusive lock meanwhile, so other processes wait.
        """
        self._check_usable()
        with trio.CancelScope(shield=True):
            async with self._io_lock:
                await self._flock(exclusive=True)
                try:
                    self._applied(await self._catch_up(exclusive=True))
                    await self._compact_locked()
                finally:
                    files.unlock(self._lock_fd)

    async def _compact_locked(self) -> None:
        snapshot = self._index.snapshot()
        number = self._segment + 1
        old_fd, old_path = self._segment_fd, self.segment_path

        def write() -> tuple[int, int]:
            size = write_segment(self._base_dir, number, snapshot)
            return files.open_segment(files.segment_path(self._base_dir, number)), size

        fd, size = await trio.to_thread.run_sync(write)
        await self._sync_idle()
        self._segment_fd, self._segment = fd, number
        self._offset, self._records, self._synced = size, len(snapshot), size
        os.close(old_fd)
        files.remove_quietly(old_path)
        await trio.to_thread.run_sync(files.fsync_dir, self._base_dir)
        log.info("journal %s compacted: %d live tasks", self._base_dir, len(self._index.tasks))

    async def _maybe_compact(self) -> None:
        records = self._records
        if self._state != "open" or records < self._compact_min_records:
            return
        dead = records - len(self._index.tasks)
        if dead >= self._compact_threshold * records:
            try:
                await self.compact()
            except (OSError, StoreError):
                log.exception("journal %s: compaction failed", self._base_dir)
