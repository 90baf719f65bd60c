"""Opening a journal directory: find the newest segment, read it, settle its tail.

Opening takes no lock to read: other processes go on committing meanwhile.
It takes the exclusive lock only for what needs it, briefly: creating the
first segment, deciding about bytes found after the last complete batch
(a write in progress finishes; a torn one is cut off), and the one-time
upgrade of a journal of format 1. Leftovers of interrupted compactions and
checkpoints are cleared by whoever holds the maintenance lock.

All functions are blocking: the store calls them from a thread.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from ...errors import JournalCorruptError, JournalError
from . import _fileio as fileio
from . import _files as files
from ._checkpoint import take_snapshot, write_checkpoint
from ._frames import scan
from ._replay import Loaded, apply_scan, load_segment
from ._segment import create_segment, write_segment

__all__ = ["clear_leftovers", "load_newest", "upgrade"]

log = logging.getLogger("omniq_trio.store.journal")

#: Times the newest segment may be replaced under an opener before it gives up.
_ATTEMPTS: Final = 20


def load_newest(
    base_dir: Path, lock_fd: int, maintenance_fd: int, *, tolerate_holes: bool
) -> Loaded:
    """The newest segment, read up to the end of its last complete batch."""
    for _ in range(_ATTEMPTS):
        numbers = files.list_segments(base_dir)
        if not numbers:
            _create_first(base_dir, lock_fd, maintenance_fd)
            continue
        number = numbers[-1]
        try:
            fd = files.open_segment(files.segment_path(base_dir, number))
        except FileNotFoundError:  # compacted away meanwhile
            continue
        try:
            loaded = load_segment(base_dir, number, fd, tolerate_holes=tolerate_holes)
            if loaded.tail.bad_offset is not None:
                settled = settle_tail(base_dir, loaded, lock_fd, tolerate_holes=tolerate_holes)
                if settled is None:
                    os.close(fd)
                    continue
            return loaded
        except BaseException:
            os.close(fd)
            raise
    raise JournalError(f"the journal in {base_dir} kept changing segments while it was opened")


def _create_first(base_dir: Path, lock_fd: int, maintenance_fd: int) -> None:
    # the maintenance lock too: whoever clears leftovers must not take its temporary file
    fileio.lock(maintenance_fd, exclusive=True)
    fileio.lock(lock_fd, exclusive=True)
    try:
        if not files.list_segments(base_dir):
            create_segment(base_dir, 1)
    finally:
        fileio.unlock(lock_fd)
        fileio.unlock(maintenance_fd)


def settle_tail(
    base_dir: Path, loaded: Loaded, lock_fd: int, *, tolerate_holes: bool
) -> Loaded | None:
    """Something follows the last complete batch: under the exclusive lock (no writer at
    work), read it again; apply what has completed meanwhile, cut what is torn, raise
    for damage. ``None`` if a newer segment appeared (open that one)."""
    path = files.segment_path(base_dir, loaded.number)
    fileio.lock(lock_fd, exclusive=True)
    try:
        if files.list_segments(base_dir)[-1:] != [loaded.number]:
            return None
        start = loaded.end
        data = fileio.read_from(loaded.fd, start)
        found = scan(data, start, version=loaded.version, tolerate_holes=tolerate_holes)
        if found.damaged:
            assert found.bad_offset is not None
            raise JournalCorruptError(path, found.bad_offset, found.reason)
        loaded.records += apply_scan(loaded.index, found, path, loaded.version)
        loaded.end = found.end
        if found.last_frame is not None:
            loaded.last_frame = found.last_frame
        if found.torn:
            log.warning(
                "journal %s: cutting off a torn write at offset %d (%d bytes that were "
                "never acknowledged)",
                path,
                found.end,
                start + len(data) - found.end,
            )
            fileio.truncate(loaded.fd, found.end)
            fileio.durable_sync(loaded.fd)
        loaded.tail = found
        return loaded
    finally:
        fileio.unlock(lock_fd)


def clear_leftovers(base_dir: Path, maintenance_fd: int) -> None:
    """Remove what interrupted compactions and checkpoints left (temporary files, segments
    older than the newest, checkpoints without their segment), if no process is at such
    work now."""
    if not fileio.try_lock(maintenance_fd, exclusive=True):
        return
    try:
        for name in os.listdir(base_dir):
            if name.endswith(".tmp"):
                files.remove_quietly(base_dir / name)
        numbers = files.list_segments(base_dir)
        for older in numbers[:-1]:
            files.remove_quietly(files.segment_path(base_dir, older))
        for number in files.list_checkpoints(base_dir):
            if number not in numbers[-1:]:
                files.remove_quietly(files.checkpoint_path(base_dir, number))
    finally:
        fileio.unlock(maintenance_fd)


def upgrade(base_dir: Path, loaded: Loaded, lock_fd: int, maintenance_fd: int) -> None:
    """Rewrite a segment of format 1 (0.1) as format 2, crash-safely: the new segment
    is complete on disk before the old one goes. Holds the exclusive lock meanwhile
    (once, for a journal written by 0.1). Closes ``loaded.fd``."""
    path = files.segment_path(base_dir, loaded.number)
    fileio.lock(maintenance_fd, exclusive=True)
    fileio.lock(lock_fd, exclusive=True)
    try:
        if files.list_segments(base_dir)[-1:] != [loaded.number]:
            return  # upgraded by another process meanwhile
        data = fileio.read_from(loaded.fd, loaded.end)
        found = scan(data, loaded.end, version=1, tolerate_holes=True)
        if found.damaged:
            assert found.bad_offset is not None
            raise JournalCorruptError(path, found.bad_offset, found.reason)
        apply_scan(loaded.index, found, path, 1)
        number = loaded.number + 1
        written = write_segment(base_dir, number, loaded.index.snapshot())
        assert written.index is not None
        try:
            snap = take_snapshot(
                written.index,
                segment=number,
                segment_id=written.segment_id,
                end=written.size,
                records=written.records,
                last_frame=written.last_frame,
            )
            write_checkpoint(base_dir, snap)
            os.replace(written.tmp, files.segment_path(base_dir, number))
        finally:
            os.close(written.fd)
        fileio.fsync_dir(base_dir)
        files.remove_quietly(path)
        fileio.fsync_dir(base_dir)
        log.warning(
            "journal %s: upgraded from format 1 (omniq_trio 0.1) to format 2: %d tasks",
            base_dir,
            written.index.live,
        )
    finally:
        fileio.unlock(lock_fd)
        fileio.unlock(maintenance_fd)
        os.close(loaded.fd)
