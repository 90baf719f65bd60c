"""Wake the other processes that share a journal when a commit concerns them.

A process that waits for a kind of change (a ``Change``, named by a letter:
``w`` work, ``f`` a task finished, ...) binds a Unix datagram socket for that kind the first time it
waits, at ``base_dir/wake/<letter>-<pid>-<random>.sock``. After each commit,
the committing process sends the letter to every socket of each kind its
commit made, except its own. A waiting process reads the datagram, reports
the change to its local waiters, and they look at the journal again.

* **A sender never blocks.** Sends are non-blocking; a receiver whose queue is
  full (``EAGAIN``) has wake-ups it has not read yet, and one more would change
  nothing, so it is dropped.
* **Dead targets cost one failed send.** A socket file nobody is bound to (its
  process died) refuses the send: the sender removes it. A vanished one is
  forgotten.
* **Wake-ups are hints.** Waiters still wake at ``poll_interval``, and a woken
  process re-reads the journal, so a lost or stale datagram costs latency,
  never a task. Where the mechanism is missing (no ``AF_UNIX``, a directory
  that cannot hold sockets), waiters poll, as they did before.

A socket path longer than ``sun_path`` allows (108 bytes on Linux) is reached
through ``/proc/self/fd/<fd of the wake directory>/<name>`` instead.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Final, final

import trio

from .._base import Change
from ._files import DIR_MODE, FILE_MODE, remove_quietly

__all__ = ["WAKE_DIR", "Wakeups"]

log = logging.getLogger("omniq_trio.store.journal")

#: The directory under ``base_dir`` holding the waiting processes' sockets.
WAKE_DIR: Final = "wake"
#: Each kind of change as the letter that names its sockets and fills its datagrams.
LETTERS: Final = {change: change.value[0] for change in Change}
assert len(set(LETTERS.values())) == len(LETTERS), "each kind of change needs its own letter"
_SUFFIX: Final = ".sock"
#: Longest socket path ``bind`` and ``sendto`` take (``sun_path`` less its NUL).
_MAX_ADDRESS: Final = 107
#: Seconds (monotonic) a sender goes on using its list of waiting processes
#: before it looks at the wake directory again: that look (a stat) would
#: otherwise cost every commit a system call. A process that starts waiting
#: meanwhile is not sent to until then, so it also polls once, this long after
#: it started listening, twice over (see :meth:`Wakeups.deadline`).
REFRESH: Final = 0.05
#: Nanoseconds after the wake directory last changed before a listing of it is
#: reused while its mtime stays the same: a file system stamps mtimes with a
#: coarse clock (a kernel tick; whole seconds on some), so a socket bound in
#: the same tick as the listing would not move the mtime. Wall time here is
#: compared with file system timestamps, not with any task's time.
_TRUST_LISTING_AFTER: Final = 2_000_000_000


@final
class _Receiver:
    """This process's socket for one kind of change."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self.sock = sock
        self.path = path
        #: until then (trio time) senders may not know of it yet
        self.known_by = trio.current_time() + 2 * REFRESH
        #: one task reads the socket at a time (trio refuses two waiting on one fd)
        self.lock = trio.Lock()

    def drain(self) -> bool:
        """Read every wake-up that has arrived; whether there was one."""
        woken = False
        while True:
            try:
                self.sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return woken
            except OSError:  # closed under us: nothing more will come
                return woken
            woken = True


@final
class Wakeups:
    """Send and receive one journal directory's cross-process wake-ups.

    ``on_wake(change)`` is called (on the trio thread) for each kind of change
    another process announced, and once when this process starts listening for
    a kind (anything announced before then was not sent to it).
    """

    def __init__(self, base_dir: Path, on_wake: Callable[[Change], None]) -> None:
        self._dir = base_dir / WAKE_DIR
        self._on_wake = on_wake
        self._receivers: dict[Change, _Receiver] = {}
        #: listening failed once: this store polls from then on
        self._unavailable = False
        self._sender: socket.socket | None = None
        self._dir_fd = -1
        # the wake directory's listing, and its mtime and the wall time when taken
        self._names: list[str] = []
        self._listed_mtime = -1
        self._listed_at = -1
        self._fresh_until = -float("inf")

    @property
    def listening(self) -> frozenset[Change]:
        """The kinds this process has a socket for."""
        return frozenset(self._receivers)

    # ------------------------------------------------------------------ send

    def announce(self, changes: Iterable[Change]) -> None:
        """Wake the other processes waiting for any of ``changes``. Never blocks or raises."""
        kinds = {LETTERS[change] for change in changes}
        if not kinds:
            return
        try:
            names = self._targets()
            if not names:
                return
            own = {receiver.path.name for receiver in self._receivers.values()}
            for name in names:
                if name[0] in kinds and name not in own:
                    self._send(name)
        except OSError as exc:  # e.g. no AF_UNIX here: nobody can be listening either
            log.debug("journal %s: could not send wake-ups: %s", self._dir.parent, exc)

    def _targets(self) -> list[str]:
        if time.monotonic() < self._fresh_until:
            return self._names
        self._fresh_until = time.monotonic() + REFRESH
        now = time.time_ns()
        try:
            mtime = os.stat(self._dir).st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime != self._listed_mtime or self._listed_at - mtime < _TRUST_LISTING_AFTER:
            self._names = [name for name in os.listdir(self._dir) if name.endswith(_SUFFIX)]
            self._listed_mtime, self._listed_at = mtime, now
        return self._names

    def _send(self, name: str) -> None:
        sender = self._sender
        if sender is None:
            sender = self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
        try:
            sender.sendto(name[0].encode(), self._address(name))
        except (BlockingIOError, InterruptedError):
            pass  # its queue is full: it has wake-ups to read already
        except ConnectionRefusedError:
            # nobody is bound to it: its process died without cleaning up
            remove_quietly(self._dir / name)
            self._forget_listing()
        except FileNotFoundError:
            self._forget_listing()
        except OSError as exc:  # e.g. another user's socket: not ours to wake
            log.debug("journal %s: could not wake %s: %s", self._dir.parent, name, exc)

    def _forget_listing(self) -> None:
        self._listed_mtime = -1
        self._fresh_until = -float("inf")

    def _address(self, name: str) -> str:
        path = os.path.join(self._dir, name)
        if len(os.fsencode(path)) <= _MAX_ADDRESS:
            return path
        if self._dir_fd < 0:
            o_path = getattr(os, "O_PATH", 0)
            if not o_path:
                raise OSError(errno.ENAMETOOLONG, "socket path too long", path)
            self._dir_fd = os.open(self._dir, o_path | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{self._dir_fd}/{name}"

    # --------------------------------------------------------------- receive

    def listen(self, change: Change) -> bool:
        """Have a socket for ``change`` (bound on first call); False if none can be had."""
        if change in self._receivers:
            return True
        if self._unavailable:
            return False
        name = f"{LETTERS[change]}-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        try:
            self._dir.mkdir(mode=DIR_MODE, exist_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind(self._address(name))
                os.chmod(self._dir / name, FILE_MODE)
            except BaseException:
                sock.close()
                raise
        except (OSError, AttributeError) as exc:  # AttributeError: no socket.AF_UNIX
            self._unavailable = True
            log.info(
                "journal %s: no cross-process wake-ups (%s); waiting processes poll",
                self._dir.parent,
                exc,
            )
            return False
        self._receivers[change] = _Receiver(sock, self._dir / name)
        self._on_wake(change)
        return True

    def deadline(self, change: Change, deadline: float) -> float:
        """When a wait for ``change`` that would end at ``deadline`` should end: sooner,
        once, while senders may not have seen this process's new socket."""
        receiver = self._receivers.get(change)
        if receiver is not None and trio.current_time() < receiver.known_by:
            return min(deadline, receiver.known_by)
        return deadline

    async def wait(
        self, change: Change, wait_here: Callable[[float], Awaitable[None]], deadline: float
    ) -> None:
        """Run ``wait_here(deadline)`` (a wait for this process's own notifications, which
        ``on_wake`` feeds), reporting wake-ups for ``change`` meanwhile (after :meth:`listen`)."""
        deadline = self.deadline(change, deadline)
        with trio.move_on_at(deadline):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.pump, change)
                await wait_here(deadline)
                nursery.cancel_scope.cancel()

    def drain(self, change: Change) -> None:
        """Report wake-ups for ``change`` that have already arrived, without waiting."""
        receiver = self._receivers.get(change)
        if receiver is not None and receiver.drain():
            self._on_wake(change)

    async def pump(self, change: Change) -> None:
        """Report wake-ups for ``change`` as they arrive, until cancelled (after :meth:`listen`).

        One pump per kind reads at a time; others wait their turn. Never raises
        for a socket problem: it waits to be cancelled instead.
        """
        receiver = self._receivers[change]
        async with receiver.lock:
            while True:
                try:
                    await trio.lowlevel.wait_readable(receiver.sock)
                except (trio.ClosedResourceError, OSError):
                    await trio.sleep_forever()
                if receiver.drain():
                    self._on_wake(change)

    def close(self) -> None:
        """Stop listening and remove this process's sockets (call on the trio thread)."""
        receivers, self._receivers = self._receivers, {}
        for receiver in receivers.values():
            trio.lowlevel.notify_closing(receiver.sock)
            receiver.sock.close()
            remove_quietly(receiver.path)
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1
        self._unavailable = False
