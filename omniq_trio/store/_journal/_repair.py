"""Repair: keep every record before the damage in a journal, set the rest aside."""

from __future__ import annotations

import os
import re
from pathlib import Path

import attrs

from ...errors import JournalError
from . import _fileio as fileio
from . import _files as files
from ._frames import data_start, read_header, scan
from ._records import decode_batch, decode_lines

__all__ = ["RepairReport", "repair_journal"]


@attrs.frozen
class RepairReport:
    """What :func:`repair_journal` found, and did unless it was a dry run."""

    #: The segment examined (the newest; older ones are superseded).
    path: Path
    #: Its size before the repair, in bytes.
    size: int
    #: Bytes kept: everything up to the end of the last intact batch.
    kept: int
    #: Events in the kept part.
    records_kept: int
    #: Where the first damaged or incomplete frame starts (``None``: the journal is intact).
    damaged_at: int | None
    reason: str = ""
    #: Where the bytes that were cut were saved (``None`` for a dry run or an intact journal).
    saved_to: Path | None = None
    dry_run: bool = False

    @property
    def cut(self) -> int:
        """Bytes that are (or would be) removed."""
        return self.size - self.kept

    def __str__(self) -> str:
        if self.damaged_at is None:
            return f"{self.path}: intact ({self.records_kept} records, {self.size} bytes)"
        verb = "would cut" if self.dry_run else "cut"
        where = f"; the cut bytes are in {self.saved_to}" if self.saved_to else ""
        return (
            f"{self.path}: damage at offset {self.damaged_at} ({self.reason}); kept "
            f"{self.records_kept} records ({self.kept} bytes), {verb} {self.cut} bytes{where}"
        )


def repair_journal(base_dir: Path | str, *, dry_run: bool = False) -> RepairReport:
    """Truncate the journal in ``base_dir`` to its last intact batch.

    Every record before the first damaged frame is kept; the bytes from there
    on are saved next to the segment (``journal-N.log.damaged-K``) and cut
    off. With ``dry_run``, only reports what it would do. Takes the journal's
    exclusive lock, so running writers wait; processes that had the journal
    open must reopen it afterwards. Blocking: call it from a thread in async code.
    """
    base_dir = Path(base_dir)
    if not base_dir.is_dir():
        raise JournalError(f"{base_dir} is not a directory")
    numbers = files.list_segments(base_dir)
    if not numbers:
        raise JournalError(f"{base_dir} holds no journal (no journal-*.log file)")
    lock_fd = files.open_lock(base_dir)
    try:
        files.lock(lock_fd, exclusive=True)
        path = files.segment_path(base_dir, files.list_segments(base_dir)[-1])
        fd = files.open_segment(path)
        try:
            return _repair(fd, path, dry_run=dry_run)
        finally:
            os.close(fd)
    finally:
        os.close(lock_fd)  # releases the lock


def _repair(fd: int, path: Path, *, dry_run: bool) -> RepairReport:
    data = fileio.read_from(fd, 0)
    info = read_header(data)
    if info is None:
        raise JournalError(f"{path} is not an omniq_trio journal segment (bad header)")
    version = info[0]
    start = data_start(version)
    found = scan(data[start:], start, version=version, tolerate_holes=True)
    kept, records, damaged_at, reason = found.end, 0, found.bad_offset, found.reason
    for start, batch in zip(found.starts, found.batches, strict=True):
        try:
            if version == 1:
                records += len(decode_batch([payload for _, payload in batch]))
            else:
                records += sum(len(decode_lines(offset, p)[0]) for offset, p in batch)
        except Exception as exc:  # intact checksum, unreadable content: damage all the same
            kept, damaged_at, reason = start, start, f"undecodable record ({exc})"
            break
    if damaged_at is None and data.count(0, kept) != len(data) - kept:  # not just zeros
        damaged_at, reason = kept, "trailing bytes"
    report = RepairReport(path, len(data), kept, records, damaged_at, reason, dry_run=dry_run)
    if dry_run or damaged_at is None:
        return report
    saved = _save_aside(path, data[kept:])
    # its checkpoint may cover what is cut: the next open replays the whole segment
    match = re.match(r"journal-(\d+)\.log$", path.name)
    if match:
        files.remove_quietly(files.checkpoint_path(path.parent, int(match.group(1))))
    fileio.truncate(fd, kept)
    fileio.full_sync(fd)
    files.fsync_dir(path.parent)
    return attrs.evolve(report, saved_to=saved)


def _save_aside(path: Path, data: bytes) -> Path:
    n = 1
    while (target := path.with_name(f"{path.name}.damaged-{n}")).exists():
        n += 1
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, files.FILE_MODE)
    try:
        fileio.write_all(fd, data)
        fileio.full_sync(fd)
    finally:
        os.close(fd)
    return target
