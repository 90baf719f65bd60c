"""Writing a whole segment (a new journal, a compacted snapshot) safely."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from .._events import Event
from . import _files as files
from ._frames import HEADER, encode_batch
from ._records import encode_event

__all__ = ["write_segment"]

#: Events per batch in a compacted segment.
_SNAPSHOT_BATCH: Final = 10_000


def write_segment(base_dir: Path, number: int, events: Sequence[Event]) -> int:
    """Write a complete segment via a synced temporary file; returns its size."""
    path = files.segment_path(base_dir, number)
    tmp = path.with_name(path.name + ".tmp")
    fd = files.open_segment(tmp, create=True)
    try:
        size = len(HEADER)
        files.write_all(fd, HEADER)
        for start in range(0, len(events), _SNAPSHOT_BATCH):
            chunk = encode_batch([encode_event(e) for e in events[start : start + _SNAPSHOT_BATCH]])
            files.write_all(fd, chunk)
            size += len(chunk)
        # An empty batch seals the snapshot: damage to the snapshot's last
        # batch is then followed by a valid frame, so it reads as damage
        # (JournalCorruptError) rather than as a torn tail to cut off,
        # which would drop the whole state.
        seal = encode_batch([])
        files.write_all(fd, seal)
        size += len(seal)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    files.fsync_dir(base_dir)
    return size
