"""The journal's directory: numbered segment files, a lock file, and crash-safe replacement.

All functions here are blocking; the store calls the slow ones from a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path
from typing import Final

__all__ = [
    "LOCK_NAME",
    "create_dir",
    "fsync_dir",
    "journal_exists",
    "list_segments",
    "open_lock",
    "segment_path",
]

LOCK_NAME: Final = "journal.lock"
_SEGMENT: Final = re.compile(r"^journal-(\d{8})\.log$")
#: Files and directories are private to their owner: tasks may carry secrets.
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700


def segment_path(base_dir: Path, number: int) -> Path:
    return base_dir / f"journal-{number:08d}.log"


def list_segments(base_dir: Path) -> list[int]:
    """Numbers of the segment files present, ascending."""
    numbers = []
    for name in os.listdir(base_dir):
        match = _SEGMENT.match(name)
        if match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def journal_exists(base_dir: Path) -> bool:
    """Whether ``base_dir`` holds a journal (a segment file); looks, creates nothing."""
    return base_dir.is_dir() and bool(list_segments(base_dir))


def create_dir(base_dir: Path) -> None:
    base_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def open_lock(base_dir: Path) -> int:
    """The lock file's descriptor. Appends and claims hold ``LOCK_EX`` on it."""
    return os.open(base_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)


def open_segment(path: Path, *, create: bool = False) -> int:
    # O_APPEND: every write lands at the end, wherever pread left off
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    return os.open(path, flags, FILE_MODE)


def fsync_dir(base_dir: Path) -> None:
    """Make renames and unlinks in ``base_dir`` durable."""
    fd = os.open(base_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def try_lock(fd: int, *, exclusive: bool) -> bool:
    """Take the lock if it is free right now."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock(fd: int, *, exclusive: bool) -> None:
    """Wait for the lock (blocking: call from a thread)."""
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_from(fd: int, offset: int) -> bytes:
    """Everything in the file from ``offset`` to its current end."""
    chunks = []
    while chunk := os.pread(fd, 1 << 24, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
