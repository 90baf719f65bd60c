"""``JournalStore``: the default store, an append-only journal of events in ``base_dir``.

Every change is an event appended to the newest segment; the in-memory index
(``TaskIndex``, small fixed-size entries per task) is rebuilt on open from the
segment's newest checkpoint and the events after it, and payloads (arguments,
results, errors) are read back from the file by offset when needed. Several
processes can share one directory:

* A change is committed under an exclusive ``flock`` on the lock file, after
  catching up on what other processes appended, and is checked against that
  up-to-date state, so no task is ever claimed by two workers.
* Reading takes no lock: records are immutable once written, so opening and
  catching up read bytes and decode them while others commit (``_opening.py``).
* Checkpoints and compactions run in the background, started by commits (a
  process that only reads never writes them), by one process at a time
  (``_maintenance.py``); a compaction holds the exclusive lock only to copy
  the latest batches over.
* A commit wakes the processes waiting for what it did (``_wakeup.py``).

**Group commit.** Concurrent changes share one write and one durable sync.
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
the task to the queue, which is what a crash does anyway.

**Failures heal.** A failed write or sync fails the calls of its batch (they
were not acknowledged) and puts the store in a failed state: after a failed
``fsync`` the kernel may have dropped the data, so the in-memory state is not
trusted. The next call after a backoff reopens the journal from disk, which is
the recovery; until then calls fail fast with ``StoreError``.

Within this process, a change is visible to readers from the moment its
batch is written, up to one durable sync before its caller is acknowledged.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar, final

import trio

from ...config import FsyncPolicy, Settings
from ...errors import JournalCorruptError, JournalError, SerializationError, StoreError
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
from . import _fileio as fileio
from . import _files as files
from ._durability import FIRST_BACKOFF, Durability, Op, Written
from ._frames import MAX_EVENT, BatchBuilder, Scan, scan
from ._maintenance import Maintenance
from ._opening import clear_leftovers, load_newest, upgrade
from ._records import encode_event
from ._replay import Loaded, apply_scan
from ._room import Room
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


@final
class JournalStore(Durability, IndexedStore):
    """Tasks in an append-only journal in ``base_dir``, shared safely between processes.

    ``fsync``, ``fsync_interval``, ``compact_threshold`` and ``compact_min_records``
    are the settings of those names; ``checkpoint_records``: events after the newest
    checkpoint past which a commit starts writing a new one.
    """

    def __init__(
        self,
        base_dir: Path | str,
        *,
        fsync: FsyncPolicy = "always",
        fsync_interval: float = 0.05,
        compact_threshold: float = 0.5,
        compact_min_records: int = 10_000,
        checkpoint_records: int = 20_000,
    ) -> None:
        super().__init__()
        self._base_dir = Path(base_dir)
        self._fsync = fsync
        self._fsync_interval = fsync_interval
        self._state = "closed"
        self._failure = None
        self._retry_at = 0.0
        self._backoff = FIRST_BACKOFF
        self._lock_fd = self._maintenance_fd = -1
        self._segment_fd = -1
        self._segment_number = 0
        self._next_segment = ""
        self._segment = 0  # also sets _next_segment
        self._offset = 0
        #: whether this store has written (then it trims the preallocated zeros when it
        #: closes)
        self._wrote = False
        #: preallocated room ahead of the writes
        self._room = Room()
        self._records = 0
        self._last_frame: tuple[int, int] | None = None
        self._segment_id = b""
        self._synced = 0
        self._foreign_unsynced = False
        self._doubtful = None
        self._sync_done = None
        self._sync_scheduled = False
        self._last_sync = -float("inf")
        self._sync_took = 0.0
        self._worker_busy = False
        # Serialises file I/O and index catch-up in this process. flock alone
        # cannot: a shared lock taken on the same descriptor would silently
        # downgrade an exclusive one held by a concurrent commit.
        self._io_lock = trio.Lock()
        self._queue: list[Op] = []
        self._leading = False
        self._maintenance = Maintenance(
            self,
            compact_threshold=compact_threshold,
            compact_min_records=compact_min_records,
            checkpoint_records=checkpoint_records,
        )
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

    @property
    def _tolerate_holes(self) -> bool:
        return self._fsync != "always"

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
        fileio.check_platform()
        self._close_fds()
        files.create_dir(self._base_dir)
        lock_fd = files.open_lock(self._base_dir)
        maintenance_fd = -1
        try:
            maintenance_fd = files.open_lock(self._base_dir, files.MAINTENANCE_LOCK_NAME)
            clear_leftovers(self._base_dir, maintenance_fd)
            loaded = load_newest(
                self._base_dir, lock_fd, maintenance_fd, tolerate_holes=self._tolerate_holes
            )
            if loaded.version == 1:
                upgrade(self._base_dir, loaded, lock_fd, maintenance_fd)
                loaded = load_newest(
                    self._base_dir, lock_fd, maintenance_fd, tolerate_holes=self._tolerate_holes
                )
        except BaseException:
            os.close(lock_fd)
            if maintenance_fd >= 0:
                os.close(maintenance_fd)
            raise
        self._lock_fd, self._maintenance_fd = lock_fd, maintenance_fd
        self._adopt(loaded)
        self._state, self._failure = "open", None

    def _adopt(self, loaded: Loaded) -> None:
        """Make ``loaded`` the segment appends go to (its descriptor is ours to close)."""
        self._segment_fd, self._segment = loaded.fd, loaded.number
        self._segment_id = loaded.segment_id
        self._index, self._offset, self._records = loaded.index, loaded.end, loaded.records
        self._last_frame = loaded.last_frame
        self._synced = self._offset
        self._foreign_unsynced = False
        self._room.forget()
        self._maintenance.loaded(loaded.checkpoint_records)

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            self._maintenance.cancel()
            await self._maintenance.wait_idle()
            async with self._io_lock:
                if self._state == "closed":
                    return
                self._wakeups.close()
                await self._sync_idle()
                try:
                    if self._state == "open" and self._synced < self._offset:
                        await trio.to_thread.run_sync(fileio.durable_sync, self._segment_fd)
                    if self._state == "open" and self._wrote:
                        await self._trim()
                finally:
                    self._close_fds()
                    self._state = "closed"

    async def _trim(self) -> None:
        """Cut the preallocated zeros after the frames, if no other process wrote
        after ours: a closed journal is then as long as its data (as journals that
        were never preallocated are). Only tidiness: a failure is ignored (and a
        process still writing preallocates again)."""
        if os.fstat(self._segment_fd).st_size <= self._offset:
            return
        try:
            await self._flock(exclusive=True)
            try:
                if not os.path.exists(self._next_segment) and not fileio.has_data_at(  # noqa: ASYNC240
                    self._segment_fd, self._offset
                ):
                    fileio.truncate(self._segment_fd, self._offset)
            finally:
                fileio.unlock(self._lock_fd)
        except OSError as exc:
            log.debug("journal %s: not trimmed at close (%s)", self._base_dir, exc)

    def _close_fds(self) -> None:
        for fd in (self._segment_fd, self._lock_fd, self._maintenance_fd):
            if fd >= 0:
                os.close(fd)
        self._segment_fd = self._lock_fd = self._maintenance_fd = -1

    def _notify_all(self) -> None:
        """Everything may have changed (opened, or another process compacted)."""
        self._notify(Change.WORK)
        self._notify(Change.FINISHED)

    # ---------------------------------------------------------------- commit

    async def _commit(self, plan: Callable[[TaskIndex], Plan[R]]) -> R:
        # a cancelled caller changes nothing: the rest is shielded
        await trio.lowlevel.checkpoint_if_cancelled()
        await self._usable()
        op = Op(plan)
        self._queue.append(op)
        with trio.CancelScope(shield=True):
            if self._leading:
                await op.wake.wait()
            if op.settle is not None:
                await self._settle(op.settle)
            elif not op.finished:
                await self._lead(op)
        if op.error is not None:
            raise op.error
        result: R = op.result
        return result

    async def _lead(self, own: Op) -> None:
        """Write everything queued as one batch (``own`` among it), pass the lead on, then
        wait for the sync, or hand that wait to a change that needs it."""
        self._leading = True
        written: Written | None = None
        try:
            # let the other tasks that are ready to run queue their changes too
            await trio.lowlevel.cancel_shielded_checkpoint()
            batch, self._queue = self._queue, []
            written = await self._commit_batch(batch)
        finally:
            if self._queue:
                self._queue[0].wake.set()  # its owner leads next; _leading stays True
            else:
                self._leading = False
        self._maintenance.maybe_start()
        # The next batch is written while this one syncs: a claim never waits
        # for a sync it does not need, not even as the leader of a batch that
        # does (the poller would hold back the tasks it claimed).
        if written is None or not written.durable:
            return
        if own.finished:
            first = written.durable[0][0]
            first.settle = written
            first.wake.set()
        else:
            await self._settle(written)

    async def _commit_batch(self, batch: list[Op]) -> Written | None:
        applied: list[Event] = []
        ours = 0  # where this batch's own events start in `applied`, for other processes
        try:
            await self._usable()
            await self._lock_io()
            try:
                await self._flock(exclusive=True)
                try:
                    applied.extend(await self._catch_up(exclusive=True))
                    ours = len(applied)
                    return self._write(batch, applied)
                finally:
                    fileio.unlock(self._lock_fd)
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

    def _write(self, batch: list[Op], applied: list[Event]) -> Written:
        """Plan, apply and write the batch (no await: nothing else sees it half done)."""
        index = self._index
        builder = BatchBuilder(self._offset)
        durable: list[tuple[Op, Any]] = []
        immediate: list[tuple[Op, Any]] = []
        for op in batch:
            try:
                events, answer = op.plan(index)
                records = [encode_event(event) for event in events]
                if any(len(record) > MAX_EVENT for record in records):
                    size = max(len(record) for record in records)
                    raise SerializationError(
                        f"a change of {size:,} bytes is too large for the journal (at most "
                        f"{MAX_EVENT:,}); keep task arguments and results smaller"
                    )
            except Exception as exc:
                op.finish(error=exc)
                continue
            index.apply_all(events, [builder.add(record) for record in records])
            waits = any(isinstance(event, _DURABLE) for event in events)
            (durable if waits else immediate).append((op, answer()))
            applied.extend(events)
        if builder.events:
            data = builder.finish()
            self._room.make(self._segment_fd, self._offset, len(data), self._base_dir)
            self._wrote = True
            try:
                fileio.pwrite_all(self._segment_fd, data, self._offset)
            except OSError:
                # leave no partial frame behind for other processes to trip on (if
                # that fails too, the next committer cuts it: it reads as a torn write)
                with contextlib.suppress(OSError):
                    fileio.truncate(self._segment_fd, self._offset)
                raise
            self._offset += len(data)
            self._records += builder.events
            self._last_frame = builder.last_frame
        # a claim, renewal or release is acknowledged once written: it need
        # not survive a crash, and it must not wait behind a sync
        for op, result in immediate:
            op.finish(result=result)
        if immediate:
            self._worker_busy = True
        return Written(durable, (self._segment, self._offset))

    async def _lock_io(self) -> None:
        # Lock.acquire always yields; when the lock is free, skip the trip
        # through the scheduler (this runs once per batch).
        try:
            self._io_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._io_lock.acquire()

    async def _flock(self, *, exclusive: bool) -> None:
        if not fileio.try_lock(self._lock_fd, exclusive=exclusive):
            await trio.to_thread.run_sync(lambda: fileio.lock(self._lock_fd, exclusive=exclusive))

    # ------------------------------------------------------------------ read

    async def _read(self, query: Callable[[TaskIndex], R]) -> R:
        await self._usable()
        try:
            if self._may_have_news():
                with trio.CancelScope(shield=True):
                    async with self._io_lock:
                        events = await self._catch_up(exclusive=False)
                self._applied(events)
            else:
                await trio.lowlevel.checkpoint()
            return query(self._index)
        except (OSError, JournalError) as exc:
            # a read that failed (or found damage): the state is not to be trusted
            self._fail(exc)
            if isinstance(exc, JournalError):
                raise
            raise StoreError(f"journal read failed: {exc}") from exc

    def _may_have_news(self) -> bool:
        """Whether another process may have appended or compacted (cheap: a read of a
        few bytes and a stat)."""
        return fileio.has_data_at(self._segment_fd, self._offset) or os.path.exists(
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
        """Apply what other processes appended since we last looked. Call under the
        in-process I/O lock (and, with ``exclusive``, the exclusive flock)."""
        # Small file operations (stat, pread of what others appended, write of a
        # batch) run inline: microseconds, against ~180 us for a thread round trip.
        if os.path.exists(self._next_segment):  # noqa: ASYNC240
            await self._reload()
            self._notify_all()
            return []
        # the end of the frames, not of the file (which may be preallocated)
        probe = fileio.pread(self._segment_fd, len(fileio.ZERO_RUN), self._offset)
        if not any(probe):
            if len(probe) == len(fileio.ZERO_RUN):
                return []  # zeros after our end: the file did not shrink
            size = os.fstat(self._segment_fd).st_size
            if size < self._offset:
                raise JournalError(
                    f"journal {self.segment_path} shrank under us (to {size} bytes from "
                    f"{self._offset}); was it repaired while in use? Reopen the store."
                )
            return []
        data = fileio.read_frames(self._segment_fd, self._offset)
        found = scan(data, self._offset, tolerate_holes=self._tolerate_holes)
        if found.damaged and not exclusive:
            # maybe a write that was still being copied in as we read: look again
            # with writers kept out
            await self._flock(exclusive=False)
            try:
                data = fileio.read_frames(self._segment_fd, self._offset)
                found = scan(data, self._offset, tolerate_holes=self._tolerate_holes)
            finally:
                fileio.unlock(self._lock_fd)
        if found.damaged:
            assert found.bad_offset is not None
            raise JournalCorruptError(self.segment_path, found.bad_offset, found.reason)
        events = self._apply_found(found)
        if found.torn and exclusive:
            # we hold the exclusive lock, so no writer is mid-write: a dead one left this
            log.warning(
                "journal %s: cutting off a torn write at offset %d left by a crashed process",
                self.segment_path,
                found.end,
            )
            fileio.truncate(self._segment_fd, found.end)
            self._room.forget()
        return events

    def _apply_found(self, found: Scan) -> list[Event]:
        if self._synced < self._offset and found.end > self._offset:
            self._foreign_unsynced = True
        if found.end > self._offset:
            # another process wrote: it may cut the zeros after its frames when it closes
            self._room.forget()
        events: list[Event] = []
        apply_scan(self._index, found, self.segment_path, 2, collect=events)
        self._offset = found.end
        self._records += len(events)
        if found.last_frame is not None:
            self._last_frame = found.last_frame
        return events

    async def _reload(self) -> None:
        """Another process compacted: switch to the newest segment."""
        loaded = await trio.to_thread.run_sync(
            lambda: load_newest(
                self._base_dir,
                self._lock_fd,
                self._maintenance_fd,
                tolerate_holes=self._tolerate_holes,
            )
        )
        await self._sync_idle()
        os.close(self._segment_fd)
        self._adopt(loaded)

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

        The new segment is written to a temporary file and synced while other
        processes go on committing; then, under the exclusive lock, what they
        committed meanwhile is copied over, the new segment renamed into place
        and the directory synced before the old segment is removed. A crash at
        any point leaves one complete segment to open.
        """
        await self._usable()
        with trio.CancelScope(shield=True):
            await self._maintenance.compact()
