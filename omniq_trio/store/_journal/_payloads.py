"""``JournalPayloads``: the index's payload source for the journal, its own file.

A ref is where an event lies in the segment (``offset << 24 | length``, see
``_frames.py``): reading one is a ``pread`` of its bytes and one decode. The
events most likely to be read next (those just written or read: a task just
enqueued is about to be claimed) are kept decoded in a small LRU cache.

An event that was never written as such (an error worked out while replaying
an old record) is kept in memory under a ref of its own.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Final

import orjson

from ...errors import JournalCorruptError
from .._events import Event
from . import _fileio as fileio
from ._frames import ref_place
from ._records import decode_event

__all__ = ["JournalPayloads"]

#: Decoded events kept for reading again.
CACHE_SIZE: Final = 4096
#: Most bytes one read ahead spans (events enqueued one after another lie close).
PREFETCH_SPAN: Final = 64 * 1024
#: Refs at or above this are events kept in memory, not in the file.
_MEMORY: Final = 1 << 63


class JournalPayloads:
    """Events of the segment open on ``fd``, read back by ref."""

    def __init__(self, fd: int, path: Path, *, cache_size: int = CACHE_SIZE) -> None:
        self.fd = fd
        self.path = path
        self._cache: OrderedDict[int, Event] = OrderedDict()
        self._cache_size = cache_size
        self._kept: dict[int, Event] = {}
        self._next_kept = _MEMORY
        #: whether holding an event also caches it (off while replaying a whole log)
        self.caching = True

    def hold(self, event: Event, ref: int) -> int:
        if not ref:
            ref = self._next_kept
            self._next_kept += 1
            self._kept[ref] = event
        elif self.caching:
            self._remember(ref, event)
        return ref

    def release(self, ref: int) -> None:
        if ref >= _MEMORY:
            self._kept.pop(ref, None)

    def event(self, ref: int) -> Event:
        cache = self._cache
        event = cache.get(ref)
        if event is not None:
            cache.move_to_end(ref)
            return event
        if ref >= _MEMORY:
            return self._kept[ref]
        offset, length = ref_place(ref)
        event = self._decode(fileio.pread(self.fd, length, offset), offset, length)
        self._remember(ref, event)
        return event

    def prefetch(self, refs: list[int]) -> None:
        """Read the events of ``refs`` that are not cached with one ``pread``, if they lie
        within :data:`PREFETCH_SPAN` (bytes between two written events are written too)."""
        places = sorted(
            (*ref_place(ref), ref) for ref in refs if ref < _MEMORY and ref not in self._cache
        )
        if len(places) < 2:
            return
        start, end = places[0][0], max(offset + length for offset, length, _ in places)
        if end - start > PREFETCH_SPAN:
            return
        data = fileio.pread(self.fd, end - start, start)
        for offset, length, ref in places:
            at = offset - start
            self._remember(ref, self._decode(data[at : at + length], offset, length))

    def _decode(self, data: bytes, offset: int, length: int) -> Event:
        try:
            if len(data) != length:
                raise ValueError(f"{length - len(data)} bytes missing")
            return decode_event(data)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise JournalCorruptError(self.path, offset, f"unreadable record ({exc})") from exc

    def _remember(self, ref: int, event: Event) -> None:
        cache = self._cache
        cache[ref] = event
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
