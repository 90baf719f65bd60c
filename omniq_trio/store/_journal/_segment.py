"""Writing a whole segment (a new journal, a compacted one) safely, and its index with it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import attrs

from .._events import Event
from .._index import TaskIndex
from . import _fileio as fileio
from . import _files as files
from ._frames import BatchBuilder, new_header
from ._payloads import JournalPayloads
from ._records import encode_event

__all__ = ["Written", "create_segment", "write_segment"]

#: Events per batch in a compacted segment.
_SNAPSHOT_BATCH: Final = 10_000


@attrs.define(eq=False)
class Written:
    """A segment written to ``tmp`` (not yet in place; open, for appending, on ``fd``),
    and the index of what it holds."""

    tmp: Path
    fd: int
    segment_id: bytes
    size: int
    records: int
    last_frame: tuple[int, int] | None
    #: its index, when it was built by replaying what was written (not by compaction)
    index: TaskIndex | None


def write_segment(base_dir: Path, number: int, events: Iterable[Event]) -> Written:
    """Write segment ``number`` with ``events`` to a synced temporary file, building its
    index (refs into the new file) as it goes. Blocking: call from a thread. The caller
    renames ``tmp`` into place and syncs the directory, or closes ``fd`` and removes it."""
    path = files.segment_path(base_dir, number)
    tmp = files.temporary(path)
    header, segment_id = new_header()
    fd = files.open_segment(tmp, create=True)
    try:
        payloads = JournalPayloads(fd, path)
        payloads.caching = False
        index = TaskIndex(payloads)
        fileio.write_all(fd, header)
        size, records, last_frame = len(header), 0, None
        chunk: list[Event] = []
        for event in events:
            chunk.append(event)
            if len(chunk) >= _SNAPSHOT_BATCH:
                size, last_frame = _write_batch(fd, index, chunk, size)
                records += len(chunk)
                chunk = []
        if chunk:
            size, last_frame = _write_batch(fd, index, chunk, size)
            records += len(chunk)
        # An empty batch seals the snapshot: damage to the snapshot's last batch
        # is then followed by a valid frame, so it reads as damage
        # (JournalCorruptError) rather than as a torn tail to cut off, which
        # would drop the whole state.
        size, last_frame = _write_batch(fd, index, [], size)
        fileio.full_sync(fd)
    except BaseException:
        os.close(fd)
        files.remove_quietly(tmp)
        raise
    payloads.caching = True
    return Written(tmp, fd, segment_id, size, records, last_frame, index)


def _write_batch(
    fd: int, index: TaskIndex, events: list[Event], offset: int
) -> tuple[int, tuple[int, int] | None]:
    builder = BatchBuilder(offset)
    refs = [builder.add(encode_event(event)) for event in events]
    data = builder.finish()
    fileio.write_all(fd, data)
    index.apply_all(events, refs)
    return offset + len(data), builder.last_frame


def create_segment(base_dir: Path, number: int) -> None:
    """A new, empty segment ``number`` (a journal's first), in place and synced."""
    written = write_segment(base_dir, number, [])
    os.close(written.fd)
    os.replace(written.tmp, files.segment_path(base_dir, number))
    fileio.fsync_dir(base_dir)
