"""Room ahead of the writes: the newest segment grows in preallocated chunks of zeros.

A commit's durable sync then has no change of file size to flush. Where the
file system cannot preallocate, writes append as they always did.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final, final

from . import _fileio as fileio

__all__ = ["PREALLOCATE", "Room"]

log = logging.getLogger("omniq_trio.store.journal")

#: Bytes the segment is grown by ahead of the writes (``posix_fallocate``).
PREALLOCATE: Final = 1 << 18


@final
class Room:
    """How far one store's segment is known to reach, and whether it can be grown."""

    __slots__ = ("_allocated", "possible")

    def __init__(self) -> None:
        #: False once the file system has said it cannot preallocate
        self.possible = True
        #: the segment's size when last seen (at least), 0 when it may have shrunk since
        self._allocated = 0

    def forget(self) -> None:
        """The file may have shrunk (a torn tail cut, another process's frames, a new
        segment): look at its size again before trusting it."""
        self._allocated = 0

    def make(self, fd: int, offset: int, size: int, base_dir: Path) -> None:
        """Preallocate, if the file does not reach ``size`` bytes past ``offset``
        (the end of the frames)."""
        if not self.possible:
            return
        end = offset + size
        # the size seen last, while no one has cut the file since: no stat per commit
        if self._allocated >= end:
            return
        self._allocated = os.fstat(fd).st_size
        if self._allocated >= end:
            return
        length = -(-end // PREALLOCATE) * PREALLOCATE - offset
        try:
            if fileio.preallocate(fd, offset, length):
                self._allocated = offset + length
            else:
                self.possible = False
        except OSError as exc:  # ENOSPC: the write itself says whether it fits
            log.debug("journal %s: could not preallocate (%s)", base_dir, exc)
