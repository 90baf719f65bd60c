"""Segment files as bytes: a header, then frames of ``length | crc32 | payload``.

A committed batch of events is one frame, or, past ``MAX_CHUNK`` bytes, a run
of frames whose payloads start with ``+`` ("more of this batch follows") and a
last one that does not. A batch only counts when its last frame is read, so a
batch is all or nothing on disk.

Reading stops at the first bad frame, which is either

* the *torn tail* of a write that never completed (no valid frame follows
  it): cut off; it was never acknowledged. With ``tolerate_holes`` (fsync
  policies that let the OS order writes), zeros up to the next valid frame
  also count as torn: the OS allocated those blocks but never wrote them; or
* *damage* to acknowledged data (a valid frame follows it): reported as
  :class:`~omniq_trio.errors.JournalCorruptError`; nothing is changed.

Payloads are JSON arrays encoded by orjson, which escapes control
characters, so they never contain a 0x00 byte; every frame header does (the
top byte of its length, as chunks stay under 16 MiB). The search for a later
valid frame therefore only stops at real headers, and is fast.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Final

import attrs

__all__ = ["FRAME_HEADER", "HEADER", "MAX_CHUNK", "Scan", "encode_batch", "scan"]

#: First bytes of every segment file: the format and its version.
HEADER: Final = b"OMNIQJ1\n"
FRAME_HEADER: Final = struct.Struct("<II")
#: Largest frame payload written (bytes); keeps the length's top byte zero.
MAX_CHUNK: Final = 4 << 20
_MAX_LENGTH: Final = (1 << 24) - 1
_MORE: Final = ord("+")


def encode_batch(events: Sequence[bytes]) -> bytes:
    """Frames for one batch: ``events`` are JSON objects, joined into arrays."""
    frames: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for event in events:
        if chunk and size + len(event) + 1 > MAX_CHUNK:
            frames.append(_frame(b"+[" + b",".join(chunk) + b"]"))
            chunk, size = [], 0
        chunk.append(event)
        size += len(event) + 1
    frames.append(_frame(b"[" + b",".join(chunk) + b"]"))
    return b"".join(frames)


def _frame(payload: bytes) -> bytes:
    return FRAME_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


@attrs.frozen
class Scan:
    """What reading a stretch of a segment found."""

    #: Complete batches in order, each a list of JSON-array payloads.
    batches: list[list[bytes]]
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
    return None


def scan(data: bytes, base: int = 0, *, tolerate_holes: bool = False) -> Scan:
    """Read the batches in ``data``, which starts at file offset ``base``."""
    batches: list[list[bytes]] = []
    starts: list[int] = []
    batch: list[bytes] = []
    batch_start = pos = 0
    while pos < len(data):
        length, reason = _frame_at(data, pos)
        if length < 0:
            following = _next_valid_frame(data, pos)
            damaged = following is not None and not (
                tolerate_holes and not any(memoryview(data)[pos:following])
            )
            return Scan(batches, starts, base + batch_start, base + pos, reason, damaged)
        start = pos + FRAME_HEADER.size
        payload = data[start : start + length]
        pos = start + length
        if payload[0] == _MORE:
            batch.append(payload[1:])
        else:
            batch.append(payload)
            batches.append(batch)
            starts.append(base + batch_start)
            batch = []
            batch_start = pos
    if batch:
        end = base + batch_start
        return Scan(batches, starts, end, end, "batch without its last frame")
    return Scan(batches, starts, base + pos)
