"""Segment files as bytes: a header, then frames of ``length | crc32 | payload``.

A committed batch of events is one frame, or, past ``MAX_CHUNK`` bytes, a run
of frames each marked "more of this batch follows" but the last. A batch only
counts when its last frame is read, so a batch is all or nothing on disk.

Two formats of payload (the segment header says which):

* **2** (written now): a flag byte, ``+`` (more follows) or ``.`` (last
  frame), then the events as JSON objects, one per line. Each event has a
  place in the file of its own, which the index refers to (a *ref*:
  ``offset << 24 | length``) to read it back alone.
* **1** (0.1 and before): a JSON array of events, ``+``-prefixed when more
  follows. Read, never written; opening one upgrades it.

Reading stops at the first bad frame, which is either

* the *torn tail* of a write that never completed (no valid frame follows
  it): cut off; it was never acknowledged. With ``tolerate_holes`` (fsync
  policies that let the OS order writes), zeros up to the next valid frame
  also count as torn: the OS allocated those blocks but never wrote them; or
* *damage* to acknowledged data (a valid frame follows it): reported as
  :class:`~omniq_trio.errors.JournalCorruptError`; nothing is changed.

Events are encoded by orjson, which escapes control characters, so payloads
never contain a 0x00 byte (nor, in format 2, a newline inside an event);
every frame header does (the top byte of its length, as frames stay under
16 MiB). The search for a later valid frame therefore only stops at real
headers, and is fast. The end of the data is where the frames end, not the
file's size.

**Preallocated tails.** The store grows the segment in chunks of zeros
(``posix_fallocate``) ahead of its writes, so that a durable sync has no
change of file size to flush. Zeros from a frame boundary to the end of what
was read are "no more frames": a clean end, neither torn nor damaged. No run
of eight zero bytes occurs inside frames (a header holds at most seven, and
payloads none), so a read can stop where one starts (``read_frames``).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from typing import Final

import attrs

from ...errors import SerializationError

__all__ = [
    "FRAME_HEADER",
    "HEADER",
    "MAX_CHUNK",
    "BatchBuilder",
    "Scan",
    "encode_batch",
    "new_header",
    "read_header",
    "ref_of",
    "scan",
]

#: First bytes of a segment of format 1.
HEADER_V1: Final = b"OMNIQJ1\n"
#: First bytes of a segment of format 2, followed by its 16-byte id and 8 reserved bytes.
HEADER: Final = b"OMNIQJ2\n"
HEADER_SIZE: Final = 32
FRAME_HEADER: Final = struct.Struct("<II")
#: Largest frame payload written (bytes) when events can be split; keeps the length's
#: top byte zero.
MAX_CHUNK: Final = 4 << 20
_MAX_LENGTH: Final = (1 << 24) - 1
#: Largest event: one alone in a frame, with its flag byte.
MAX_EVENT: Final = _MAX_LENGTH - 1
_MORE: Final = ord("+")
_LAST: Final = b"."
_LENGTH_BITS: Final = 24
_NONZERO: Final = re.compile(rb"[^\x00]")


def new_header() -> tuple[bytes, bytes]:
    """A format-2 segment header, and the segment's id in it."""
    segment_id = os.urandom(16)
    return HEADER + segment_id + bytes(8), segment_id


def read_header(data: bytes) -> tuple[int, bytes] | None:
    """(format, segment id) from a segment's first bytes; ``None`` if it is not one."""
    if data.startswith(HEADER) and len(data) >= HEADER_SIZE:
        return 2, data[8:24]
    if data.startswith(HEADER_V1):
        return 1, b""
    return None


def data_start(version: int) -> int:
    """Where a segment's first frame starts."""
    return HEADER_SIZE if version == 2 else len(HEADER_V1)


def ref_of(offset: int, length: int) -> int:
    """The ref of an event of ``length`` bytes at file offset ``offset``."""
    return offset << _LENGTH_BITS | length


def ref_place(ref: int) -> tuple[int, int]:
    """(offset, length) of the event at ``ref``."""
    return ref >> _LENGTH_BITS, ref & _MAX_LENGTH


def _frame(payload: bytes | bytearray) -> bytes:
    return FRAME_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class BatchBuilder:
    """Frames for one batch starting at file offset ``base``, event by event, each
    event's ref known as it is added."""

    def __init__(self, base: int) -> None:
        self._base = base
        self._frames: list[bytes] = []
        self._size = 0  # bytes of the finished frames
        self._chunk = bytearray()
        self.events = 0
        #: (file offset, crc32) of the batch's last frame, once finished
        self.last_frame: tuple[int, int] | None = None

    def add(self, event: bytes) -> int:
        """Add one encoded event; returns its ref."""
        if len(event) > MAX_EVENT:
            raise SerializationError(
                f"an event of {len(event):,} bytes is too large for the journal "
                f"(at most {MAX_EVENT:,}); keep task arguments and results smaller"
            )
        chunk = self._chunk
        if chunk and len(chunk) + 1 + len(event) > MAX_CHUNK:
            self._close(more=True)
            chunk = self._chunk
        if chunk:
            chunk += b"\n"
        else:
            chunk += _LAST  # the flag: set to "+" if another frame follows
        # where it will be: after the finished frames, this frame's header and the chunk so far
        offset = self._base + self._size + FRAME_HEADER.size + len(chunk)
        chunk += event
        self.events += 1
        return ref_of(offset, len(event))

    def _close(self, *, more: bool) -> None:
        if more:
            self._chunk[0] = _MORE
        frame = _frame(self._chunk)
        self.last_frame = (self._base + self._size, zlib.crc32(self._chunk))
        self._frames.append(frame)
        self._size += len(frame)
        self._chunk = bytearray()

    def finish(self) -> bytes:
        """The batch's bytes (an empty batch is one frame holding only the flag)."""
        if not self._chunk:
            self._chunk += _LAST
        self._close(more=False)
        return b"".join(self._frames)


def encode_batch(events: list[bytes], base: int = 0) -> bytes:
    """The frames of one batch of encoded events."""
    builder = BatchBuilder(base)
    for event in events:
        builder.add(event)
    return builder.finish()


@attrs.frozen
class Scan:
    """What reading a stretch of a segment found."""

    #: Complete batches in order; each a list of (file offset of the payload's events,
    #: events bytes) per frame: format 2, newline-separated; format 1, a JSON array.
    batches: list[list[tuple[int, bytes]]]
    #: File offset where each batch starts.
    starts: list[int]
    #: Offset just past the last complete batch.
    end: int
    #: Offset of the first bad or incomplete data, if the stretch does not end cleanly.
    bad_offset: int | None = None
    #: Why it is bad.
    reason: str = ""
    #: True when valid frames follow the bad one (damage, not a torn write).
    damaged: bool = False
    #: (file offset, crc32) of the last frame of the last complete batch.
    last_frame: tuple[int, int] | None = None

    @property
    def torn(self) -> bool:
        """Whether the stretch ends in a torn write that may be cut off."""
        return self.bad_offset is not None and not self.damaged


def _frame_at(data: bytes, pos: int) -> tuple[int, str]:
    """The payload length of the valid frame at ``pos``, or ``(-1, why not)``."""
    if len(data) - pos < FRAME_HEADER.size:
        return -1, "incomplete frame header"
    length, crc = FRAME_HEADER.unpack_from(data, pos)
    if length == 0 or length > _MAX_LENGTH:
        return -1, f"implausible frame length {length}"
    start = pos + FRAME_HEADER.size
    if start + length > len(data):
        return -1, "frame runs past the end of the file"
    if zlib.crc32(memoryview(data)[start : start + length]) != crc:
        return -1, "checksum mismatch"
    return length, ""


def _next_valid_frame(data: bytes, pos: int) -> int | None:
    """The offset of the first valid frame after ``pos``, if any."""
    search = pos + 4
    while (zero := data.find(b"\x00", search)) >= 0:
        candidate = zero - 3  # the length's top byte is the header's fourth byte
        if _frame_at(data, candidate)[0] > 0:
            return candidate
        search = zero + 1
        if candidate >= pos and not any(memoryview(data)[candidate:zero]):
            # inside a run of zeros (a preallocated tail): a header starting in
            # it has its fourth byte past the run's first non-zero byte
            following = _NONZERO.search(data, zero)
            if following is None:
                return None
            search = following.start() + 1
    return None


def _zeros_from(data: bytes, pos: int) -> bool:
    """Whether ``data`` holds only zeros from ``pos`` on (a preallocated tail)."""
    return data.count(0, pos) == len(data) - pos


def scan(data: bytes, base: int = 0, *, version: int = 2, tolerate_holes: bool = False) -> Scan:
    """Read the batches in ``data``, which starts at file offset ``base``."""
    batches: list[list[tuple[int, bytes]]] = []
    starts: list[int] = []
    batch: list[tuple[int, bytes]] = []
    batch_start = pos = 0
    last_frame = frame = None
    while pos < len(data):
        length, reason = _frame_at(data, pos)
        if length < 0:
            if _zeros_from(data, pos):
                if not batch:  # the frames end here
                    return Scan(batches, starts, base + pos, last_frame=last_frame)
                end = base + batch_start
                return Scan(
                    batches, starts, end, end, "batch without its last frame", False, last_frame
                )
            following = _next_valid_frame(data, pos)
            damaged = following is not None and not (
                tolerate_holes and data.count(0, pos, following) == following - pos
            )
            end = base + batch_start
            return Scan(batches, starts, end, base + pos, reason, damaged, last_frame)
        frame = (base + pos, FRAME_HEADER.unpack_from(data, pos)[1])
        start = pos + FRAME_HEADER.size
        pos = start + length
        more = data[start] == _MORE
        if version == 2 or more:  # format 2 always has the flag; format 1 only "+"
            start += 1
        batch.append((base + start, data[start:pos]))
        if not more:
            batches.append(batch)
            starts.append(base + batch_start)
            batch = []
            batch_start = pos
            last_frame = frame
    if batch:
        end = base + batch_start
        return Scan(batches, starts, end, end, "batch without its last frame", False, last_frame)
    return Scan(batches, starts, base + pos, last_frame=last_frame)
