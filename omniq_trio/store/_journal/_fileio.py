"""The journal's file layer: every write, durable sync and read of its files goes through here.

One seam, so that

* each platform gets the flush that really reaches the disk
  (:func:`durable_sync`: ``fdatasync`` on Linux; ``fcntl(F_FULLFSYNC)`` on
  macOS, where ``fsync`` only hands the data to the drive's cache);
* tests make a chosen call fail (``ENOSPC``, ``EIO``) deterministically
  (:data:`faults`), as a full or failing disk would;
* the platforms without POSIX file locks (Windows) are refused in one place
  (:func:`check_platform`).

Blocking functions: the store calls the slow ones from a thread.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Final, Literal

import attrs

from ...errors import UnsupportedPlatformError

_fcntl: ModuleType | None
try:
    import fcntl as _fcntl
except ImportError:  # Windows
    _fcntl = None

__all__ = [
    "Faults",
    "check_platform",
    "durable_sync",
    "faults",
    "full_sync",
    "lock",
    "pread",
    "preallocate",
    "pwrite_all",
    "read_frames",
    "read_from",
    "truncate",
    "try_lock",
    "unlock",
    "write_all",
]

#: The platform whose calls :func:`durable_sync` makes (tests change it).
PLATFORM: str = sys.platform
#: The ``fcntl`` module, ``None`` where there is none (tests change it).
fcntl: ModuleType | None = _fcntl

Operation = Literal["write", "sync", "read", "allocate"]
#: Bytes read per ``pread`` call when reading to the end of a file.
_READ_CHUNK: Final = 1 << 24
#: Bytes of the first ``pread`` of :func:`read_frames`: what a few commits append.
_FIRST_READ: Final = 1 << 14
#: Eight zero bytes never occur inside frames (see ``_frames.py``): where a read
#: ends with them, the frames have ended (the rest is a preallocated tail).
ZERO_RUN: Final = bytes(8)
#: ``posix_fallocate`` errors that mean "not here" (the file system cannot).
_CANNOT_ALLOCATE: Final = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS, errno.ENODEV}
)


@attrs.define
class _Fault:
    operation: Operation
    error: int
    #: calls of the operation to let through first
    after: int
    #: how many calls fail (then it passes again); ``None``: all of them
    count: int | None


@attrs.define
class Faults:
    """Failures to inject, for tests: the next calls of an operation raise ``OSError``."""

    _planned: list[_Fault] = attrs.field(factory=list)
    #: calls made so far, per operation (counted whether or not they failed)
    calls: dict[str, int] = attrs.field(
        factory=lambda: {"write": 0, "sync": 0, "read": 0, "allocate": 0}
    )

    def fail(
        self,
        operation: Operation,
        error: int = errno.ENOSPC,
        *,
        after: int = 0,
        count: int | None = 1,
    ) -> None:
        """Let ``after`` more calls of ``operation`` through, then fail ``count`` of them
        (``None``: every one until :meth:`clear`) with ``OSError(error)``."""
        self._planned.append(_Fault(operation, error, self.calls[operation] + after, count))

    def clear(self) -> None:
        self._planned.clear()

    def check(self, operation: Operation) -> None:
        number = self.calls[operation]
        self.calls[operation] = number + 1
        for fault in self._planned:
            if fault.operation != operation or number < fault.after:
                continue
            if fault.count is not None and number >= fault.after + fault.count:
                continue
            raise OSError(fault.error, f"{os.strerror(fault.error)} (injected)")


#: The faults the journal's file calls obey; empty outside tests.
faults: Faults = Faults()


@contextmanager
def injected_faults() -> Iterator[Faults]:
    """A fresh :data:`faults` for the ``with`` block (tests)."""
    global faults
    previous, faults = faults, Faults()
    try:
        yield faults
    finally:
        faults = previous


# ------------------------------------------------------------------- platform


def check_platform() -> None:
    """Raise ``UnsupportedPlatformError`` where the journal cannot keep its promises."""
    if fcntl is None or PLATFORM.startswith(("win32", "cygwin")):
        raise UnsupportedPlatformError(
            "the file journal needs POSIX file locks (flock) to share its directory "
            f"safely, and this platform ({PLATFORM}) has none. Use the memory store "
            "(Settings(backend='memory'), one process) or PostgreSQL "
            "(Settings(backend='postgres', dsn=...)) here; the journal runs on Linux and macOS."
        )


def _locks() -> ModuleType:
    if fcntl is None:
        check_platform()
    assert fcntl is not None
    return fcntl


def try_lock(fd: int, *, exclusive: bool) -> bool:
    """Take the lock if it is free right now."""
    module = _locks()
    try:
        module.flock(fd, (module.LOCK_EX if exclusive else module.LOCK_SH) | module.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock(fd: int, *, exclusive: bool) -> None:
    """Wait for the lock (blocking: call from a thread)."""
    module = _locks()
    module.flock(fd, module.LOCK_EX if exclusive else module.LOCK_SH)


def unlock(fd: int) -> None:
    module = _locks()
    module.flock(fd, module.LOCK_UN)


# ---------------------------------------------------------------------- I/O


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        faults.check("write")
        written = os.write(fd, view)
        view = view[written:]


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write ``data`` at ``offset`` (over a preallocated tail, or past the end)."""
    view = memoryview(data)
    while view:
        faults.check("write")
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def preallocate(fd: int, offset: int, length: int) -> bool:
    """Reserve the file's blocks from ``offset`` for ``length`` bytes (they read as
    zeros; the file grows to cover them), so that writing there later changes
    neither the file's size nor its block map, and a durable sync after the
    write has no size change to flush. ``False`` (nothing done) where the
    platform or the file system cannot; other errors (``ENOSPC``) are raised."""
    allocate = getattr(os, "posix_fallocate", None)  # none on macOS
    if allocate is None:
        return False
    faults.check("allocate")
    try:
        allocate(fd, offset, length)
    except OSError as exc:
        if exc.errno in _CANNOT_ALLOCATE:
            return False
        raise
    return True


def pread(fd: int, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes at ``offset`` (fewer at the end of the file)."""
    faults.check("read")
    return os.pread(fd, size, offset)


def read_from(fd: int, offset: int, end: int | None = None) -> bytes:
    """The file's bytes from ``offset`` to ``end`` (default: its current end)."""
    chunks = []
    while end is None or offset < end:
        size = _READ_CHUNK if end is None else min(_READ_CHUNK, end - offset)
        chunk = pread(fd, size, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def read_frames(fd: int, offset: int) -> bytes:
    """The file's bytes from ``offset`` to its end, or to a little past the point where
    the frames end (a read that ends in :data:`ZERO_RUN`): what others appended,
    without reading all of a preallocated tail."""
    chunks = []
    size = _FIRST_READ
    while True:
        chunk = pread(fd, size, offset)
        if chunk:
            chunks.append(chunk)
            offset += len(chunk)
        if len(chunk) < size or chunk.endswith(ZERO_RUN):
            return b"".join(chunks)
        size = min(size * 2, _READ_CHUNK)


def has_data_at(fd: int, offset: int) -> bool:
    """Whether anything but zeros (a preallocated tail) or the end of the file is at
    ``offset``: a frame header, whole or in part."""
    return any(pread(fd, len(ZERO_RUN), offset))


def read_into(fd: int, buffer: memoryview, offset: int) -> None:
    """Fill ``buffer`` with the file's bytes at ``offset``; ``EOFError`` if they run out."""
    view = buffer.cast("B") if buffer.format != "B" else buffer
    while view:
        faults.check("read")
        got = (
            os.preadv(fd, [view], offset)
            if hasattr(os, "preadv")
            else _pread_into(fd, view, offset)
        )
        if not got:
            raise EOFError("the file ends early")
        view, offset = view[got:], offset + got


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)


def truncate(fd: int, size: int) -> None:
    os.ftruncate(fd, size)


def durable_sync(fd: int) -> None:
    """Make what was written to ``fd`` survive a power cut (its data; metadata as needed
    to read it back)."""
    faults.check("sync")
    if PLATFORM == "darwin":
        # fsync on macOS leaves the data in the drive's cache; F_FULLFSYNC flushes it
        # (some file systems refuse it: then fsync is the best there is)
        module = _locks()
        try:
            module.fcntl(fd, module.F_FULLFSYNC)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
                raise
            os.fsync(fd)
    elif hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def full_sync(fd: int) -> None:
    """:func:`durable_sync`, for a file just created (its size and name matter too)."""
    if PLATFORM == "darwin":
        durable_sync(fd)
    else:
        faults.check("sync")
        os.fsync(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make renames and unlinks in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    try:
        faults.check("sync")
        os.fsync(fd)
    finally:
        os.close(fd)
