"""Checkpoints ("hint files", as Bitcask calls them): the index as of a point in a segment.

Opening a journal loads the newest checkpoint of its segment and replays only
the events after the point it covers, so opening takes time in proportion to
the tasks and the recent tail, not the history. A checkpoint is derived data:
the segment alone always rebuilds the same index, and a checkpoint that is
missing, truncated, damaged or does not match its segment is ignored (with a
warning) for a full replay.

Layout of ``journal-N.ckpt``::

    "OMNIQC1\\n" | meta length: u32 | crc32 of meta: u32 | meta (JSON)
    | section bytes, in the order the meta lists them | "OMNIQCE\\n"

The meta holds the small state (interned names, counts, unique keys, running
tasks, controls, which segment and up to which offset) and lists the
sections, each with its type, size and crc32: the index's columns, raw
(native byte order, which the meta records), and each claim lane's run.
Loading reads the sections straight into their arrays.

A checkpoint is written to a temporary file and renamed into place; it is not
fsynced (a torn one is detected and ignored, and costs one full replay).
"""

from __future__ import annotations

import logging
import os
import sys
import zlib
from array import array
from collections import Counter
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from ...errors import JournalError
from .._columns import ARRAYS, BYTE_COLUMNS, Interned, merge_hashed
from .._events import Event
from .._index import TaskIndex
from .._lanes import Lane, live_slots
from .._payloads import PayloadSource
from . import _fileio as fileio
from . import _files as files
from ._records import decode_event, encode_event

__all__ = ["Snapshot", "load_checkpoint", "take_snapshot", "write_checkpoint"]

log = logging.getLogger("omniq_trio.store.journal")

MAGIC: Final = b"OMNIQC1\n"
TRAILER: Final = b"OMNIQCE\n"
_PREFIX: Final = 16


@attrs.define
class Snapshot:
    """A copy of an index's state at ``end`` of segment ``segment``, to write out."""

    segment: int
    segment_id: bytes
    end: int
    records: int
    #: (offset, crc32) of the last frame before ``end``, to check it against the segment
    last_frame: tuple[int, int] | None
    #: copies of the columns, by name
    columns: dict[str, Any]
    recent: dict[str, int]
    #: (queue, priority, heap, run, run's last sequence number) of each lane
    lanes: list[tuple[int, int, list[int], array[int], int]]
    meta: dict[str, Any]


def take_snapshot(
    index: TaskIndex,
    *,
    segment: int,
    segment_id: bytes,
    end: int,
    records: int,
    last_frame: tuple[int, int] | None,
) -> Snapshot:
    """Copy what a checkpoint needs (fast: the columns are copied whole)."""
    cols = index.cols
    columns: dict[str, Any] = {name: getattr(cols, name)[:] for name in BYTE_COLUMNS}
    columns.update((name, getattr(cols, name)[:]) for name, _ in ARRAYS)
    columns["fin_slots"] = index.fin_slots[index.fin_pos :]
    columns["fin_at"] = index.fin_at[index.fin_pos :]
    lanes = [
        (queue, priority, lane.heap[:], lane.run[lane.pos :], lane.run_seq)
        for queue, by_priority in index.lanes.by_queue.items()
        for priority, lane in by_priority.items()
    ]
    meta = {
        "segment": segment,
        "segment_id": segment_id.hex(),
        "end": end,
        "records": records,
        "last_frame": last_frame,
        "byteorder": sys.byteorder,
        "slots": len(cols),
        "queues": cols.queues.names[1:],
        "funcs": cols.funcs.names[1:],
        "lanes_seq": index.lanes.seq,
        "next_order": index.next_order,
        "counts": index.counts,
        "queue_counts": {str(k): v for k, v in index.queue_counts.items()},
        "func_counts": {str(k): v for k, v in index.func_counts.items()},
        "unique": index.unique,
        "unique_of": {str(k): v for k, v in index.unique_of.items()},
        "running": {str(k): v for k, v in index.running.items()},
        "run_meta": {str(k): v for k, v in index.run_meta.items()},
        "controls": [orjson.loads(encode_event(e)) for e in index.controls.snapshot()],
    }
    meta = orjson.loads(orjson.dumps(meta))  # a deep copy, checked to encode
    return Snapshot(
        segment, segment_id, end, records, last_frame, columns, dict(cols.recent), lanes, meta
    )


def write_checkpoint(base_dir: Path, snap: Snapshot) -> Path:
    """Write ``snap`` as segment ``snap.segment``'s checkpoint (blocking; call from a thread)."""
    columns = snap.columns
    qseq, eta = columns["qseq"], columns["eta"]
    # the ids of slots added since the last load join the sorted hash entries
    hashed = merge_hashed(columns["hashed"], snap.recent.items())
    sections: list[tuple[str, Any]] = [(name, columns[name]) for name in BYTE_COLUMNS]
    sections += [(name, hashed if name == "hashed" else columns[name]) for name, _ in ARRAYS]
    sections += [("fin_slots", columns["fin_slots"]), ("fin_at", columns["fin_at"])]
    lanes = []
    for i, (queue, priority, heap, run, run_seq) in enumerate(snap.lanes):
        slots = live_slots(heap, run, run_seq, qseq, eta)
        if slots:
            lanes.append([queue, priority, f"lane{i}"])
            sections.append((f"lane{i}", slots))
    listed = []
    for name, data in sections:
        view = memoryview(data)
        typecode = data.typecode if isinstance(data, array) else "B"
        listed.append([name, typecode, view.itemsize, view.nbytes, zlib.crc32(view)])
    meta = orjson.dumps({**snap.meta, "lanes": lanes, "sections": listed})
    path = files.checkpoint_path(base_dir, snap.segment)
    tmp = files.temporary(path)
    fd = files.open_new(tmp)
    try:
        fileio.write_all(fd, MAGIC + len(meta).to_bytes(4, "little"))
        fileio.write_all(fd, zlib.crc32(meta).to_bytes(4, "little") + meta)
        for _, data in sections:
            fileio.write_all(fd, memoryview(data).cast("B"))
        fileio.write_all(fd, TRAILER)
    except BaseException:
        os.close(fd)
        files.remove_quietly(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    return path


def load_checkpoint(
    base_dir: Path,
    segment: int,
    segment_id: bytes,
    payloads: PayloadSource,
    *,
    segment_fd: int,
) -> tuple[TaskIndex, int, int] | None:
    """The index segment ``segment``'s checkpoint holds, the offset up to which it does and
    the records before that offset (``None`` if there is no checkpoint or it is not usable:
    a warning says why)."""
    path = files.checkpoint_path(base_dir, segment)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return _load(fd, path, segment, segment_id, payloads, segment_fd)
    except (JournalError, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        log.warning(
            "journal %s: ignoring checkpoint %s (%s); replaying the whole segment instead",
            base_dir,
            path.name,
            exc,
        )
        return None
    finally:
        os.close(fd)


class _Unusable(JournalError):
    pass


def _load(
    fd: int,
    path: Path,
    segment: int,
    segment_id: bytes,
    payloads: PayloadSource,
    segment_fd: int,
) -> tuple[TaskIndex, int, int]:
    prefix = fileio.pread(fd, _PREFIX, 0)
    if len(prefix) < _PREFIX or not prefix.startswith(MAGIC):
        raise _Unusable("not a checkpoint (bad header)")
    length = int.from_bytes(prefix[8:12], "little")
    raw = fileio.pread(fd, length, _PREFIX)
    if len(raw) != length or zlib.crc32(raw) != int.from_bytes(prefix[12:16], "little"):
        raise _Unusable("its meta is truncated or damaged")
    meta = orjson.loads(raw)
    if meta["segment"] != segment or meta["segment_id"] != segment_id.hex():
        raise _Unusable("it belongs to another segment")
    if meta["byteorder"] != sys.byteorder:
        raise _Unusable(f"it was written on a {meta['byteorder']}-endian machine")
    _check_frame(segment_fd, meta["end"], meta["last_frame"])
    offset = _PREFIX + length
    arrays: dict[str, Any] = {}
    for name, typecode, itemsize, nbytes, crc in meta["sections"]:
        if typecode == "B":
            data: Any = bytearray(nbytes)
        else:
            data = array(typecode)
            if data.itemsize != itemsize:
                raise _Unusable(f"its {name} items are {itemsize} bytes, here {data.itemsize}")
            data = array(typecode, [0]) * (nbytes // itemsize) if nbytes else data
        view = memoryview(data).cast("B")
        fileio.read_into(fd, view, offset)
        if zlib.crc32(view) != crc:
            raise _Unusable(f"its section {name} is damaged")
        view.release()
        arrays[name] = data
        offset += nbytes
    if fileio.pread(fd, len(TRAILER), offset) != TRAILER:
        raise _Unusable("it is truncated")
    return _restore(meta, arrays, payloads), meta["end"], meta["records"]


def _check_frame(segment_fd: int, end: int, last_frame: list[int] | None) -> None:
    """The segment holds, intact, the frame the checkpoint says ends at ``end``."""
    if last_frame is None:
        return
    offset, crc = last_frame
    frame = fileio.pread(segment_fd, end - offset, offset)
    if (
        len(frame) != end - offset
        or int.from_bytes(frame[:4], "little") != len(frame) - 8
        or int.from_bytes(frame[4:8], "little") != crc
        or zlib.crc32(memoryview(frame)[8:]) != crc
    ):
        raise _Unusable("the segment no longer holds what it covers (repaired?)")


def _restore(meta: dict[str, Any], arrays: dict[str, Any], payloads: PayloadSource) -> TaskIndex:
    index = TaskIndex(payloads)
    cols = index.cols
    for name in BYTE_COLUMNS:
        setattr(cols, name, arrays[name])
    for name, _ in ARRAYS:
        setattr(cols, name, arrays[name])
    if len(cols.status) != meta["slots"] or len(cols.id_off) != meta["slots"] + 1:
        raise _Unusable("its columns disagree on the number of tasks")
    cols.queues = Interned(meta["queues"])
    cols.funcs = Interned(meta["funcs"])
    index.fin_slots, index.fin_at = arrays["fin_slots"], arrays["fin_at"]
    seq = meta["lanes_seq"]
    index.lanes.seq = seq
    for queue, priority, name in meta["lanes"]:
        index.lanes.by_queue.setdefault(queue, {})[priority] = Lane(arrays[name], seq)
    index.next_order = meta["next_order"]
    index.counts = meta["counts"]
    index.queue_counts = {int(k): v for k, v in meta["queue_counts"].items()}
    index.func_counts = Counter({int(k): v for k, v in meta["func_counts"].items()})
    index.unique = meta["unique"]
    index.unique_of = {int(k): v for k, v in meta["unique_of"].items()}
    index.running = {int(k): v for k, v in meta["running"].items()}
    for slot, (worker, _) in index.running.items():
        index.held.setdefault(worker, set()).add(slot)
    index.run_meta = {int(k): tuple(v) for k, v in meta["run_meta"].items()}
    events: list[Event] = [decode_event(orjson.dumps(data)) for data in meta["controls"]]
    index.apply_all(events)
    return index
