"""Checkpoints and compaction, in the background; compaction in two steps, so that other
processes wait for it only briefly.

1. Without any lock, from a copy of the index as of offset ``start`` of the
   old segment, write the live state as a new segment (a temporary file,
   synced) and its checkpoint. Other processes go on committing to the old
   segment meanwhile.
2. Under the exclusive lock, for as long as a copy of a few recent batches
   takes: append what was committed to the old segment since ``start`` (the
   frames, byte for byte: they mean the same after the snapshot as they did
   after the old state), sync, rename the new segment into place, sync the
   directory, remove the old one.

A crash at any point leaves one complete segment to open (the old, or the
new), so compaction never loses an acknowledged record.

All functions are blocking: the store calls them from a thread.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final, Literal, Protocol

import trio

from ...config import FsyncPolicy
from .._events import Event
from .._index import TaskIndex
from . import _fileio as fileio
from . import _files as files
from ._checkpoint import Snapshot, take_snapshot, write_checkpoint
from ._compactor import compact_snapshot
from ._segment import Written

__all__ = ["Maintenance", "abandon", "finish_compaction", "write_compacted"]

log = logging.getLogger("omniq_trio.store.journal")


class JournalState(Protocol):
    """What maintenance reads and calls of its ``JournalStore`` (a protocol, since the
    store imports this module): the segment's state and the store's commit steps."""

    @property
    def base_dir(self) -> Path: ...
    @property
    def segment_path(self) -> Path: ...
    @property
    def _state(self) -> Literal["closed", "open", "failed"]: ...
    @property
    def _fsync(self) -> FsyncPolicy: ...
    @property
    def _index(self) -> TaskIndex: ...
    @property
    def _io_lock(self) -> trio.Lock: ...
    @property
    def _lock_fd(self) -> int: ...
    @property
    def _maintenance_fd(self) -> int: ...
    @property
    def _segment(self) -> int: ...
    @property
    def _segment_fd(self) -> int: ...
    @property
    def _segment_id(self) -> bytes: ...
    @property
    def _offset(self) -> int: ...
    @property
    def _records(self) -> int: ...
    @property
    def _last_frame(self) -> tuple[int, int] | None: ...
    def _applied(self, events: Iterable[Event]) -> None: ...
    async def _catch_up(self, *, exclusive: bool) -> list[Event]: ...
    async def _flock(self, *, exclusive: bool) -> None: ...
    def _notify_all(self) -> None: ...
    async def _reload(self) -> None: ...


#: Seconds before trying again when another process holds the maintenance lock.
_BUSY_RETRY: Final = 1.0
#: Seconds before trying again after a checkpoint or compaction failed.
_FAILED_RETRY: Final = 30.0


def write_compacted(
    base_dir: Path, number: int, snap: Snapshot, old_fd: int, old_path: Path
) -> Written:
    """Step 1: segment ``number`` (as a temporary file) and its checkpoint, from ``snap``
    of the old segment (open on ``old_fd``)."""
    written, new = compact_snapshot(base_dir, number, snap, old_fd, old_path)
    try:
        write_checkpoint(base_dir, new)
    except BaseException:
        abandon(base_dir, written, number)
        raise
    return written


def finish_compaction(
    base_dir: Path, written: Written, number: int, old_fd: int, start: int, end: int
) -> None:
    """Step 2 (call under the exclusive lock): the old segment's bytes from ``start`` to
    ``end`` join the new one, which replaces it."""
    tail = fileio.read_from(old_fd, start, end)
    if tail:
        fileio.write_all(written.fd, tail)
        fileio.durable_sync(written.fd)
    os.replace(written.tmp, files.segment_path(base_dir, number))
    fileio.fsync_dir(base_dir)
    files.remove_quietly(files.segment_path(base_dir, number - 1))
    files.remove_quietly(files.checkpoint_path(base_dir, number - 1))


def abandon(base_dir: Path, written: Written, number: int) -> None:
    """A compaction that will not finish: remove what it wrote."""
    os.close(written.fd)
    files.remove_quietly(written.tmp)
    files.remove_quietly(files.checkpoint_path(base_dir, number))


# ------------------------------------------------------------------ the runner


class Maintenance:
    """When and how one store checkpoints and compacts: in the background, one process
    at a time (the one that holds the maintenance lock)."""

    def __init__(
        self,
        store: JournalState,
        *,
        compact_threshold: float,
        compact_min_records: int,
        checkpoint_records: int,
    ) -> None:
        self._store = store
        self._threshold = compact_threshold
        self._min_records = compact_min_records
        self._checkpoint_every = checkpoint_records
        #: records of the segment the newest checkpoint this process knows of covers
        self._checkpointed = 0
        self._running: trio.Event | None = None
        #: the background run's scope: closing the store cancels it (its thread, if
        #: any, finishes by itself: it only writes temporary files)
        self._scope: trio.CancelScope | None = None
        self._not_before = -math.inf

    def loaded(self, checkpoint_records: int) -> None:
        """A segment was (re)loaded from a checkpoint covering that many records (0: none)."""
        self._checkpointed = checkpoint_records

    def due(self) -> Literal["compact", "checkpoint"] | None:
        store = self._store
        if store._state != "open":
            return None
        records, live = store._records, store._index.live
        if records >= self._min_records and records - live >= self._threshold * records:
            return "compact"
        if records - self._checkpointed >= self._checkpoint_every:
            return "checkpoint"
        return None

    def maybe_start(self) -> None:
        """Start what is due, in the background, unless something runs already."""
        if self._running is not None or trio.current_time() < self._not_before:
            return
        kind = self.due()
        if kind is None:
            return
        self._running = trio.Event()
        # a system task: the store may have been opened by code without a nursery
        trio.lowlevel.spawn_system_task(self._background, kind)

    async def wait_idle(self) -> None:
        while self._running is not None:
            await self._running.wait()

    def cancel(self) -> None:
        """Stop what runs in the background (the store is closing)."""
        if self._scope is not None:
            self._scope.cancel()

    async def compact(self) -> None:
        """Compact now (waiting for maintenance in this or another process to finish)."""
        await self.wait_idle()
        self._running = trio.Event()
        try:
            fd = self._store._maintenance_fd
            if not fileio.try_lock(fd, exclusive=True):
                await trio.to_thread.run_sync(lambda: fileio.lock(fd, exclusive=True))
            try:
                await self._compact()
            finally:
                fileio.unlock(fd)
        finally:
            self._done()

    def _done(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.set()

    async def _background(self, kind: str) -> None:
        store = self._store
        try:
            fd = store._maintenance_fd
            if fd < 0 or not fileio.try_lock(fd, exclusive=True):
                # another process is at it: look again later
                self._not_before = trio.current_time() + _BUSY_RETRY
                return
            try:
                with trio.CancelScope() as self._scope:
                    if kind == "compact":
                        await self._compact(detach=True)
                    else:
                        await self._checkpoint()
            finally:
                self._scope = None
                fileio.unlock(fd)
        except Exception:
            log.exception("journal %s: background %s failed", store.base_dir, kind)
            self._not_before = trio.current_time() + _FAILED_RETRY
        finally:
            self._done()

    async def _checkpoint(self) -> None:
        store = self._store
        if store._state != "open":
            return
        number, records = store._segment, store._records
        snap = take_snapshot(
            store._index,
            segment=number,
            segment_id=store._segment_id,
            end=store._offset,
            records=records,
            last_frame=store._last_frame,
        )
        fd = os.dup(store._segment_fd)
        sync = store._fsync != "never"

        def write() -> None:
            try:
                if sync:  # a checkpoint must not cover what a crash could still take
                    fileio.durable_sync(fd)
                write_checkpoint(store.base_dir, snap)
            finally:
                os.close(fd)

        await trio.to_thread.run_sync(write, abandon_on_cancel=True)
        if store._segment == number:
            self._checkpointed = max(self._checkpointed, records)
        log.debug("journal %s: checkpoint at %d records", store.base_dir, records)

    async def _compact(self, *, detach: bool = False) -> None:
        """Compact; with ``detach``, a cancel leaves step 1 to its thread (which only
        writes temporary files, cleared later) rather than waiting for it."""
        store = self._store
        if store._state != "open":
            return
        base_dir = store.base_dir
        async with store._io_lock:
            store._applied(await store._catch_up(exclusive=False))
            number, start = store._segment, store._offset
            snap = take_snapshot(
                store._index,
                segment=number,
                segment_id=store._segment_id,
                end=start,
                records=store._records,
                last_frame=store._last_frame,
            )
            fd, path = os.dup(store._segment_fd), store.segment_path

        def write(snap: Snapshot) -> Written:
            try:
                return write_compacted(base_dir, number + 1, snap, fd, path)
            finally:
                os.close(fd)

        written = await trio.to_thread.run_sync(write, snap, abandon_on_cancel=detach)
        del snap  # the copy: its memory can go before the new segment is loaded
        async with store._io_lock:
            finished = False
            try:
                await store._flock(exclusive=True)
                try:
                    if store._state == "open" and store._segment == number:
                        store._applied(await store._catch_up(exclusive=True))
                    if store._state == "open" and store._segment == number:
                        end, old_fd = store._offset, store._segment_fd
                        await trio.to_thread.run_sync(
                            finish_compaction, base_dir, written, number + 1, old_fd, start, end
                        )
                        finished = True
                finally:
                    fileio.unlock(store._lock_fd)
            finally:
                if finished:
                    os.close(written.fd)
                else:
                    abandon(base_dir, written, number + 1)
            if finished:
                await store._reload()
        if finished:
            store._notify_all()
            log.info("journal %s compacted: %d live tasks", base_dir, store._index.live)
