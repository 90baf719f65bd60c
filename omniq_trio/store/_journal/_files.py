"""The journal's directory: numbered segment files, their checkpoints, and two lock files.

Reading, writing and syncing go through ``_fileio.py``; this module names the
files and opens them. All functions here are blocking.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Final

from . import _fileio as fileio

__all__ = [
    "LOCK_NAME",
    "MAINTENANCE_LOCK_NAME",
    "checkpoint_path",
    "create_dir",
    "journal_exists",
    "list_segments",
    "open_lock",
    "segment_path",
]

LOCK_NAME: Final = "journal.lock"
#: Held (exclusively, without waiting) by the one process that compacts, writes a
#: checkpoint or clears leftovers at a time.
MAINTENANCE_LOCK_NAME: Final = "journal.maintenance.lock"
_SEGMENT: Final = re.compile(r"^journal-(\d{8})\.log$")
_CHECKPOINT: Final = re.compile(r"^journal-(\d{8})\.ckpt$")
#: Files and directories are private to their owner: tasks may carry secrets.
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700

# kept importable from here, where the store used to find them
fsync_dir = fileio.fsync_dir
lock = fileio.lock
try_lock = fileio.try_lock
unlock = fileio.unlock
write_all = fileio.write_all
read_from = fileio.read_from


def segment_path(base_dir: Path, number: int) -> Path:
    return base_dir / f"journal-{number:08d}.log"


def checkpoint_path(base_dir: Path, number: int) -> Path:
    """The checkpoint (hint file) of segment ``number``."""
    return base_dir / f"journal-{number:08d}.ckpt"


def list_segments(base_dir: Path) -> list[int]:
    """Numbers of the segment files present, ascending."""
    return _numbers(base_dir, _SEGMENT)


def list_checkpoints(base_dir: Path) -> list[int]:
    return _numbers(base_dir, _CHECKPOINT)


def _numbers(base_dir: Path, pattern: re.Pattern[str]) -> list[int]:
    numbers = []
    for name in os.listdir(base_dir):
        match = pattern.match(name)
        if match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def journal_exists(base_dir: Path) -> bool:
    """Whether ``base_dir`` holds a journal (a segment file); looks, creates nothing."""
    return base_dir.is_dir() and bool(list_segments(base_dir))


def create_dir(base_dir: Path) -> None:
    base_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def open_lock(base_dir: Path, name: str = LOCK_NAME) -> int:
    """A lock file's descriptor. Appends and claims hold ``LOCK_EX`` on the journal's."""
    return os.open(base_dir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)


def open_segment(path: Path, *, create: bool = False) -> int:
    """A segment's descriptor. Not ``O_APPEND``: the store writes at the end of the
    frames (``pwrite``), which is before the end of the file once it is preallocated;
    a segment being created is written in order (``pread`` moves no file position)."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    return os.open(path, flags, FILE_MODE)


def open_new(path: Path) -> int:
    """A new file, for writing (a temporary one, renamed into place once complete)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)


def temporary(path: Path) -> Path:
    """A name to write ``path``'s next version under: ``<name>.<pid>.tmp``."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
