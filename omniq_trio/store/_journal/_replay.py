"""Reading a segment back into a task index: its checkpoint, then the events after it.

Nothing here takes a lock: records are immutable once written, and a reader
stops at the end of the last complete batch, whatever a writer is doing past
it. What the reader finds after that end (a write in progress, or a torn or
damaged one) is for the caller to judge, under a lock (``Scan``).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Final

import attrs
import orjson

from ...errors import JournalCorruptError
from .._events import Event
from .._index import TaskIndex
from . import _fileio as fileio
from . import _files as files
from ._checkpoint import load_checkpoint
from ._frames import HEADER_SIZE, Scan, data_start, read_header, scan
from ._payloads import JournalPayloads
from ._records import decode_batch, decode_lines

__all__ = ["Loaded", "apply_scan", "load_segment"]

#: Bytes of events past which a replay pauses the cyclic collector and caches no payloads.
_BULK: Final = 1 << 20


@attrs.define(eq=False)
class Loaded:
    """A segment opened and read into an index."""

    fd: int
    number: int
    version: int
    segment_id: bytes
    index: TaskIndex
    #: the end of the last complete batch read
    end: int
    #: events before ``end``
    records: int
    #: events the checkpoint it started from covered (0: none)
    checkpoint_records: int
    #: (offset, crc32) of the frame that ends at ``end``
    last_frame: tuple[int, int] | None
    #: what reading the tail found past ``end``
    tail: Scan


def read_segment_header(fd: int, path: Path) -> tuple[int, bytes]:
    info = read_header(fileio.pread(fd, HEADER_SIZE, 0))
    if info is None:
        raise JournalCorruptError(path, 0, "not an omniq_trio journal segment (bad header)")
    return info


def load_segment(base_dir: Path, number: int, fd: int, *, tolerate_holes: bool) -> Loaded:
    """Read segment ``number`` (open on ``fd``): its checkpoint if it has a usable one,
    then every complete batch after it. Raises ``JournalCorruptError`` for damage found
    before the end of the tail that is not a write in progress (see :class:`Scan`:
    the caller decides, as only it knows whether a writer may be at work)."""
    path = files.segment_path(base_dir, number)
    version, segment_id = read_segment_header(fd, path)
    start, records, checkpoint_records, last_frame = data_start(version), 0, 0, None
    index: TaskIndex | None = None
    if version == 2:
        payloads = JournalPayloads(fd, path)
        loaded = load_checkpoint(base_dir, number, segment_id, payloads, segment_fd=fd)
        if loaded is not None:
            index, start, records = loaded
            checkpoint_records = records
        else:
            index = TaskIndex(payloads)
    else:
        index = TaskIndex()  # format 1 has no refs: the payloads stay in memory
    data = fileio.read_from(fd, start)
    found = scan(data, start, version=version, tolerate_holes=tolerate_holes)
    del data
    records += apply_scan(index, found, path, version)
    if found.last_frame is not None:
        last_frame = found.last_frame
    elif checkpoint_records:
        last_frame = _checkpoint_frame(base_dir, number)
    return Loaded(
        fd,
        number,
        version,
        segment_id,
        index,
        found.end,
        records,
        checkpoint_records,
        last_frame,
        found,
    )


def _checkpoint_frame(base_dir: Path, number: int) -> tuple[int, int] | None:
    """The last frame a checkpoint covers, as its meta says (read again: it is small)."""
    path = files.checkpoint_path(base_dir, number)
    try:
        with path.open("rb") as f:
            head = f.read(16)
            meta = orjson.loads(f.read(int.from_bytes(head[8:12], "little")))
    except (OSError, orjson.JSONDecodeError):
        return None
    frame = meta.get("last_frame")
    return None if frame is None else (frame[0], frame[1])


def apply_scan(
    index: TaskIndex,
    found: Scan,
    path: Path,
    version: int,
    *,
    collect: list[Event] | None = None,
) -> int:
    """Apply the complete batches ``found`` holds; returns how many events (which it
    appends to ``collect`` if given)."""
    size = sum(len(payload) for batch in found.batches for _, payload in batch)
    bulk = size > _BULK
    payloads = index.payloads
    caching = isinstance(payloads, JournalPayloads) and payloads.caching
    # A replay allocates many objects and frees few: the cyclic collector would
    # scan the growing heap again and again for nothing.
    collecting = gc.isenabled()
    if bulk:
        gc.disable()
        if isinstance(payloads, JournalPayloads):
            payloads.caching = False
    records = 0
    try:
        for start, batch in zip(found.starts, found.batches, strict=True):
            records += _apply_batch(index, batch, path, start, version, collect)
    finally:
        if bulk and collecting:
            gc.enable()
        if isinstance(payloads, JournalPayloads):
            payloads.caching = caching
    return records


def _apply_batch(
    index: TaskIndex,
    batch: list[tuple[int, bytes]],
    path: Path,
    start: int,
    version: int,
    collect: list[Event] | None,
) -> int:
    try:
        if version == 1:
            events = decode_batch([payload for _, payload in batch])
            index.apply_all(events)
            if collect is not None:
                collect.extend(events)
            return len(events)
        records = 0
        for offset, payload in batch:
            events, refs = decode_lines(offset, payload)
            index.apply_all(events, refs)
            records += len(events)
            if collect is not None:
                collect.extend(events)
        return records
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        # the checksum matched, so these bytes were written like this
        raise JournalCorruptError(path, start, f"undecodable record ({exc})") from exc
