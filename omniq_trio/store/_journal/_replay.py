"""Reading a segment back: frames to events to a task index."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import attrs
import orjson

from ...errors import JournalCorruptError
from .._events import Event
from .._index import TaskIndex
from ._frames import HEADER, scan
from ._records import decode_batch

__all__ = ["Replayed", "decode", "replay"]


@attrs.frozen
class Replayed:
    index: TaskIndex
    end: int
    records: int


def replay(data: bytes, path: Path, *, tolerate_holes: bool) -> tuple[Replayed, int | None]:
    """Rebuild an index from a whole segment; also returns where a torn tail starts.

    Raises ``JournalCorruptError`` for damage before the tail.
    """
    if not data.startswith(HEADER):
        raise JournalCorruptError(path, 0, "not an omniq_trio journal segment (bad header)")
    found = scan(data[len(HEADER) :], len(HEADER), tolerate_holes=tolerate_holes)
    if found.damaged:
        assert found.bad_offset is not None
        raise JournalCorruptError(path, found.bad_offset, found.reason)
    index = TaskIndex()
    # A replay allocates millions of objects and frees none: the cyclic
    # collector would scan the growing heap again and again for nothing
    # (half the time of a large replay).
    collecting = gc.isenabled()
    gc.disable()
    records = 0

    def events() -> Iterator[Event]:  # decoded a batch at a time, not all held at once
        nonlocal records
        for start, batch in zip(found.starts, found.batches, strict=True):
            decoded = decode(batch, path, start)
            records += len(decoded)
            yield from decoded

    try:
        index.load(events())
    finally:
        if collecting:
            gc.enable()
    return Replayed(index, found.end, records), (found.bad_offset if found.torn else None)


def decode(batch: list[bytes], path: Path, offset: int) -> list[Event]:
    try:
        return decode_batch(batch)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        # the checksum matched, so these bytes were written like this
        raise JournalCorruptError(path, offset, f"undecodable record ({exc})") from exc
