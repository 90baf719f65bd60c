"""Compaction's first step: the live state of a snapshot as a new segment, and its index.

Each live task becomes one ``put`` record holding its current state (and its
result), built from its records in the old segment at the level of JSON
objects: its creating ``put`` patched with what the columns say, its error,
progress and result taken from the records they came from. Nothing is
decoded into Python objects beyond ``orjson``'s dicts, so a million tasks
cost seconds, not minutes.

The new segment's index is not replayed from it: it is the snapshot's
columns, gathered for the live slots (their new slots are their ranks), with
refs into the new file; its checkpoint is written from that. A replay of the
new segment alone (should the checkpoint be lost) rebuilds the same state.

Blocking, and on a snapshot (copies): compaction runs it in a thread while the
store goes on.
"""

from __future__ import annotations

import itertools
import os
import re
from array import array
from pathlib import Path
from typing import Any, Final

import orjson

from ...errors import JournalCorruptError
from ...models import TaskStatus
from .._columns import ARRAYS, STATUS_CODES, STATUSES, merge_hashed, time_or_none
from .._lanes import live_slots
from . import _fileio as fileio
from . import _files as files
from ._checkpoint import Snapshot
from ._frames import BatchBuilder, new_header, ref_place
from ._segment import Written

__all__ = ["compact_snapshot"]

_BATCH: Final = 10_000
_WINDOW: Final = 4 << 20
_NONE: Final = 0xFFFFFFFF
_LIVE_RUN: Final = re.compile(rb"[^\x00]+")
#: status code -> the status's value in records
_VALUES: Final = tuple("" if status is None else status.value for status in STATUSES)
_PENDING: Final = STATUS_CODES[TaskStatus.PENDING]
_FINISHED: Final = frozenset(
    STATUS_CODES[s] for s in STATUS_CODES if s.value in {"success", "failed", "cancelled"}
)
#: Columns gathered as they are (the refs are made anew).
_GATHERED: Final = [
    name
    for name, _ in ARRAYS
    if name not in {"task_ref", "error_ref", "result_ref", "progress_ref", "id_off", "hashed"}
]


class _Reader:
    """Records of the old segment by ref, read through a window (refs mostly ascend)."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path
        self.start = self.end = 0
        self.data = b""

    def record(self, ref: int) -> Any:
        offset, length = ref_place(ref)
        if not (self.start <= offset and offset + length <= self.end):
            self.data = fileio.pread(self.fd, max(_WINDOW, length), offset)
            self.start, self.end = offset, offset + len(self.data)
        begin = offset - self.start
        try:
            return orjson.loads(self.data[begin : begin + length])
        except orjson.JSONDecodeError as exc:
            raise JournalCorruptError(self.path, offset, f"unreadable record ({exc})") from exc


def _error_of(record: dict[str, Any], task_id: str) -> Any:
    match record.get("e"):
        case "put":
            return record["task"].get("error")
        case "expire":
            return record["failed"][task_id]
    return record.get("error")  # an outcome (0.1's "fail" too)


def _progress_of(record: dict[str, Any]) -> Any:
    if record.get("e") == "put":
        return record["task"].get("progress")
    return record["progress"]


def _result_of(record: dict[str, Any], task_id: str) -> tuple[Any, Any]:
    match record.get("e"):
        case "put":
            result = record["result"]
            return result.get("value"), result.get("error")
        case "expire":
            return None, record["failed"][task_id]
    return record.get("value"), record.get("error")


def _set(data: dict[str, Any], key: str, value: Any, default: Any = None) -> None:
    """Set ``key``, or leave it out at its default (as records are written)."""
    if value == default:
        data.pop(key, None)
    else:
        data[key] = value


def _patch(task: dict[str, Any], slot: int, code: int, cols: dict[str, Any], running: Any) -> None:
    """A task record's state fields, as the columns have them now."""
    _set(task, "status", _VALUES[code], "pending")
    task["eta"] = cols["eta"][slot]
    _set(task, "scheduled_at", time_or_none(cols["scheduled_at"][slot]))
    _set(task, "started_at", time_or_none(cols["started_at"][slot]))
    _set(task, "finished_at", time_or_none(cols["finished_at"][slot]))
    _set(task, "attempts", cols["attempts"][slot], 0)
    _set(task, "lost_runs", cols["lost_runs"][slot], 0)
    held = running.get(str(slot))
    _set(task, "worker_id", None if held is None else held[0])
    _set(task, "lease_until", None if held is None else held[1])


def compact_snapshot(
    base_dir: Path, number: int, old: Snapshot, old_fd: int, old_path: Path
) -> tuple[Written, Snapshot]:
    """Write segment ``number`` (a synced temporary file) with the live state of ``old``;
    returns it and the snapshot of its index (for its checkpoint)."""
    cols, meta = old.columns, old.meta
    status = cols["status"]
    live = array("I", (slot for slot in range(len(status)) if status[slot]))
    path = files.segment_path(base_dir, number)
    tmp = files.temporary(path)
    header, segment_id = new_header()
    fd = files.open_segment(tmp, create=True)
    try:
        fileio.write_all(fd, header)
        task_refs, size, last_frame = _write_tasks(fd, old, live, len(header), old_fd, old_path)
        builder = BatchBuilder(size)
        for control in meta["controls"]:
            builder.add(orjson.dumps(control))
        data = builder.finish()  # with no controls, an empty batch: the seal
        fileio.write_all(fd, data)
        size, last_frame = size + len(data), builder.last_frame
        if meta["controls"]:
            seal = BatchBuilder(size)
            data = seal.finish()
            fileio.write_all(fd, data)
            size, last_frame = size + len(data), seal.last_frame
        fileio.full_sync(fd)
    except BaseException:
        os.close(fd)
        files.remove_quietly(tmp)
        raise
    records = len(live) + len(meta["controls"])
    new = _gather(old, live, task_refs)
    new.segment, new.segment_id, new.end, new.records = number, segment_id, size, records
    new.last_frame = last_frame
    new.meta.update(segment=number, segment_id=segment_id.hex(), end=size, records=records)
    new.meta["last_frame"] = last_frame
    written = Written(tmp, fd, segment_id, size, records, last_frame, None)
    return written, new


def _write_tasks(
    fd: int, old: Snapshot, live: array[int], offset: int, old_fd: int, old_path: Path
) -> tuple[array[int], int, tuple[int, int] | None]:
    cols, meta = old.columns, old.meta
    tasks, others = _Reader(old_fd, old_path), _Reader(old_fd, old_path)
    status, result_status = cols["status"], cols["result_status"]
    started_at, finished_at = cols["started_at"], cols["finished_at"]
    attempts, qseq, order = cols["attempts"], cols["qseq"], cols["order"]
    task_ref, error_ref = cols["task_ref"], cols["error_ref"]
    result_ref, progress_ref = cols["result_ref"], cols["progress_ref"]
    blob, off = cols["id_blob"], cols["id_off"]
    running, run_meta = meta["running"], meta["run_meta"]
    refs = array("Q")
    last_frame = None
    builder = BatchBuilder(offset)
    for slot in live:
        record = tasks.record(task_ref[slot])
        task = record["task"]
        task_id = task["id"]
        code = status[slot]
        started = started_at[slot]
        if (
            code == _PENDING
            and started != started  # NaN: never started
            and not error_ref[slot]
            and not progress_ref[slot]
            and not result_status[slot]
            and "status" not in task
        ):
            # as enqueued, still: its record says it all (what it holds of the
            # state is at the defaults, and no retry or release moved its eta)
            record.pop("result", None)
        else:
            _patch(task, slot, code, cols, running)
            ref = error_ref[slot]
            _set(task, "error", _error_of(others.record(ref), task_id) if ref else None)
            ref = progress_ref[slot]
            _set(task, "progress", _progress_of(others.record(ref)) if ref else None)
            code = result_status[slot]
            if code:
                ref = result_ref[slot]
                value, error = _result_of(others.record(ref), task_id) if ref else (None, None)
                ran = run_meta.get(str(slot)) or (
                    attempts[slot],
                    time_or_none(started),
                    time_or_none(finished_at[slot]),
                )
                result = {"task_id": task_id, "status": _VALUES[code]}
                _set(result, "value", value)
                _set(result, "error", error)
                _set(result, "attempts", ran[0], 0)
                _set(result, "started_at", ran[1])
                _set(result, "finished_at", ran[2])
                record["result"] = result
            else:
                record.pop("result", None)
        record["order"] = order[slot]
        _set(record, "queued", qseq[slot], 0)
        record["e"] = "put"
        assert blob[off[slot] : off[slot + 1]] == task_id.encode(), "ids out of step"
        refs.append(builder.add(orjson.dumps(record)))
        if builder.events >= _BATCH:
            data = builder.finish()
            fileio.write_all(fd, data)
            offset, last_frame = offset + len(data), builder.last_frame
            builder = BatchBuilder(offset)
    if builder.events:
        data = builder.finish()
        fileio.write_all(fd, data)
        offset, last_frame = offset + len(data), builder.last_frame
    return refs, offset, last_frame


def _runs(status: bytearray) -> list[tuple[int, int]]:
    """(start, end) of each run of live slots."""
    return [match.span() for match in _LIVE_RUN.finditer(status)]


def _take(column: Any, runs: list[tuple[int, int]]) -> Any:
    """``column``'s entries of the live slots, copied a run at a time."""
    taken = column[:0]
    for start, end in runs:
        taken += column[start:end]
    return taken


def _gather(old: Snapshot, live: array[int], task_refs: array[int]) -> Snapshot:
    """The new index: ``old``'s live slots, renumbered by rank, with refs into the new file."""
    cols, meta = old.columns, old.meta
    status = cols["status"]
    runs = _runs(status)
    remap = array("I", [_NONE]) * len(status)
    for new, slot in enumerate(live):
        remap[slot] = new
    columns: dict[str, Any] = {name: _take(cols[name], runs) for name in _GATHERED}
    for name in ("status", "result_status"):
        columns[name] = _take(cols[name], runs)
    for name in ("queue", "func"):  # 4 bytes a slot
        columns[name] = _take(cols[name], [(4 * start, 4 * end) for start, end in runs])
    columns["task_ref"] = task_refs
    for name in ("error_ref", "progress_ref"):
        had = _take(cols[name], runs)
        columns[name] = array("Q", (r if h else 0 for r, h in zip(task_refs, had, strict=True)))
    columns["result_ref"] = array(
        "Q", (r if h else 0 for r, h in zip(task_refs, columns["result_status"], strict=True))
    )
    blob, off = cols["id_blob"], cols["id_off"]
    columns["id_blob"] = _take(blob, [(off[start], off[end]) for start, end in runs])
    lengths = (off[slot + 1] - off[slot] for slot in live)
    columns["id_off"] = array("Q", itertools.accumulate(lengths, initial=0))
    # the old hash entries keep their order with their slots renumbered (by rank: in
    # order too); the ids added since the last load join them
    kept = array(
        "Q", (e >> 32 << 32 | remap[e & _NONE] for e in cols["hashed"] if status[e & _NONE])
    )
    recent = ((task_id, remap[slot]) for task_id, slot in old.recent.items())
    columns["hashed"] = merge_hashed(kept, recent)
    finished_at = cols["finished_at"]
    finished = [
        (remap[slot], at)
        for slot, at in zip(cols["fin_slots"], cols["fin_at"], strict=True)
        if status[slot] in _FINISHED and finished_at[slot] == at
    ]
    columns["fin_slots"] = array("I", (slot for slot, _ in finished))
    columns["fin_at"] = array("d", (at for _, at in finished))
    lanes: list[tuple[int, int, list[int], array[int], int]] = []
    seq = meta["lanes_seq"]
    for queue, priority, heap, run, run_seq in old.lanes:
        slots = live_slots(heap, run, run_seq, cols["qseq"], cols["eta"])
        if slots:
            lanes.append((queue, priority, [], array("I", map(remap.__getitem__, slots)), seq))
    new_meta = dict(meta)
    new_meta["slots"] = len(live)
    new_meta["unique"] = {key: remap[slot] for key, slot in meta["unique"].items()}
    for name in ("unique_of", "running", "run_meta"):
        new_meta[name] = {str(remap[int(slot)]): value for slot, value in meta[name].items()}
    return Snapshot(0, b"", 0, 0, None, columns, {}, lanes, new_meta)
