"""Task functions the test suite enqueues; workers import them as ``"tests.tasks:<name>"``.

Groups, by prefix (add your own group rather than reusing another's functions):

* ``rt_*``: the runtime tests (``tests/runtime/``). They report what happened
  inside the task to the probe of the test that started them
  (:func:`fresh_probe`, the ``probe`` fixture), so a thread an earlier test
  left behind touches only that test's probe.
* ``seed_*``: the functions of ``seed/run-workers.md``'s examples.
* ``pg_*``: the PostgreSQL process tests (``tests/postgres/``). Each run
  appends a line to a file of its process in ``runs_dir``, so a test can
  count executions independently of what the store says (:func:`pg_read_runs`).
* ``pc_*``: the task-control process tests (``tests/_control_procs.py``): files
  in ``marker_dir`` say what a run did, for the test process to wait on.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import trio

# ------------------------------------------------------------------ runtime probe


def _trio_time() -> float | None:
    try:
        return trio.current_time()
    except RuntimeError:  # a sync task in a worker thread
        return None


@attrs.define(eq=False)
class RuntimeProbe:
    """What the ``rt_*`` tasks saw: how many ran at once, when each started and ended.

    Times are trio times (``None`` for sync tasks in threads). Updated under a
    lock, since sync tasks may run in several threads at once.
    """

    running: int = 0
    max_running: int = 0
    #: (label, trio time) of each execution's start, in order
    starts: list[tuple[str, float | None]] = attrs.Factory(list)
    #: (label, trio time) of each execution that returned or raised (not cancelled)
    ends: list[tuple[str, float | None]] = attrs.Factory(list)
    #: executions started, per label
    runs: Counter[str] = attrs.Factory(Counter)
    #: set by ``rt_sync_block`` once its thread runs
    blocked: threading.Event = attrs.Factory(threading.Event)
    #: set by a test to let the threads of ``rt_sync_block`` return
    unblock: threading.Event = attrs.Factory(threading.Event)
    _barriers: dict[str, threading.Barrier] = attrs.Factory(dict)
    _lock: threading.Lock = attrs.Factory(threading.Lock)

    def enter(self, label: str) -> int:
        """Record a start; returns which execution of ``label`` this is (1, 2, ...)."""
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.starts.append((label, _trio_time()))
            self.runs[label] += 1
            return self.runs[label]

    def exit(self, label: str) -> None:
        with self._lock:
            self.running -= 1
            self.ends.append((label, _trio_time()))

    def leave(self) -> None:
        """An execution was interrupted (cancelled): not an end."""
        with self._lock:
            self.running -= 1

    def barrier(self, name: str, parties: int) -> threading.Barrier:
        with self._lock:
            return self._barriers.setdefault(name, threading.Barrier(parties, timeout=30))

    def started(self, label: str) -> list[float | None]:
        return [t for name, t in self.starts if name == label]

    def order(self) -> list[str]:
        return [name for name, _ in self.starts]


_current = RuntimeProbe()

#: Not a function: what a task path naming it must be refused for.
rt_not_callable = "not a function"


def fresh_probe() -> RuntimeProbe:
    """A new probe for the ``rt_*`` runs that start from now on (one per test).

    Each run reports to the probe current when it started, until it ends: a
    thread an earlier test abandoned (``rt_sync_block``) cannot touch this one.
    """
    global _current
    _current.unblock.set()  # let blocked threads of the earlier test finish
    _current = RuntimeProbe()
    return _current


class _Probed:
    """``with _Probed(label) as run:`` records enter/exit (or leave, if cancelled)
    on the probe current when the run started."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.probe = _current
        #: which execution of ``label`` this is (1, 2, ...)
        self.number = 0

    def __enter__(self) -> _Probed:
        self.number = self.probe.enter(self.label)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None and issubclass(exc_type, trio.Cancelled):
            self.probe.leave()
        else:
            self.probe.exit(self.label)


# ------------------------------------------------------------------ runtime tasks


async def rt_sleep(label: str, seconds: float = 0.0) -> str:
    """Sleep ``seconds`` of (virtual) time and return ``label``."""
    with _Probed(label):
        await trio.sleep(seconds)
        return label


async def rt_flaky(label: str, failures: int, seconds: float = 0.0) -> str:
    """Take ``seconds``, then raise on the first ``failures`` executions of ``label``."""
    with _Probed(label) as run:
        await trio.sleep(seconds)
        if run.number <= failures:
            raise ValueError(f"{label} failure {run.number} of {failures}")
        return label


async def rt_nursery_sleep(label: str, seconds: float) -> str:
    """Sleep in child tasks of a nursery: cancelling it raises an exception group."""
    with _Probed(label):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, seconds)
            nursery.start_soon(trio.sleep, seconds)
        return label


async def rt_echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Return the arguments it was called with."""
    with _Probed("echo"):
        return {"args": list(args), "kwargs": kwargs}


def rt_sync_echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """``rt_echo``, as a sync function."""
    with _Probed("sync-echo"):
        return {"args": list(args), "kwargs": kwargs}


def rt_sync_meet(label: str, parties: int) -> str:
    """Wait (in a thread) until ``parties`` executions of ``label`` run at once."""
    with _Probed(label) as run:
        run.probe.barrier(label, parties).wait()
        return label


def rt_sync_block(label: str) -> str:
    """Block its thread, ignoring cancellation, until the test sets ``probe.unblock``."""
    with _Probed(label) as run:
        run.probe.blocked.set()
        run.probe.unblock.wait(timeout=60)
        return label


def rt_unserializable() -> object:
    """Return something JSON cannot store."""
    with _Probed("unserializable"):
        return object()


def rt_exit(code: int = 3) -> None:
    """Call ``sys.exit`` from inside a task."""
    with _Probed("exit"):
        sys.exit(code)


# ---------------------------------------------------------------------- seed tasks


def seed_process_task(data: str) -> dict[str, str]:
    """The seed's "Complete Example" task."""
    print(f"Processing: {data}")
    return {"status": "completed", "data": data}


# ------------------------------------------------------------------ postgres tasks


def _pg_log(runs_dir: str, key: str) -> None:
    # one small O_APPEND write per run: lines from concurrent runs do not mix
    with open(Path(runs_dir) / f"{os.getpid()}.runs", "a") as f:
        f.write(f"{key} {os.getpid()} {time.time()!r}\n")


async def pg_log_run(n: int, runs_dir: str) -> int:
    """Record this run, return ``n``."""
    _pg_log(runs_dir, str(n))
    return n


async def pg_hang_first_run(key: str, runs_dir: str, seconds: float) -> str:
    """Record this run; the first run of ``key`` then hangs for ``seconds``
    (long enough to be killed), later runs return at once."""
    first = not (Path(runs_dir) / f"{key}.started").exists()
    _pg_log(runs_dir, key)
    if first:
        (Path(runs_dir) / f"{key}.started").touch()
        await trio.sleep(seconds)
    return key


def pg_read_runs(runs_dir: Path) -> list[tuple[str, int, float]]:
    """Every run the ``pg_*`` tasks recorded in ``runs_dir``: (key, pid, wall time it started)."""
    runs = []
    for path in runs_dir.glob("*.runs"):
        for line in path.read_text().splitlines():
            key, pid, at = line.split()
            runs.append((key, int(pid), float(at)))
    return runs


# ------------------------------------------------------------ task-control processes


async def pc_wait(marker_dir: str, key: str) -> str:
    """Write ``key.started``, sleep an hour; its ``finally`` writes ``key.finally``
    (the wall time it ran, for the cancel-delay benchmark)."""
    markers = Path(marker_dir)
    (markers / f"{key}.started").write_text(repr(time.time()))
    try:
        await trio.sleep(3600)
        return key
    finally:
        (markers / f"{key}.finally").write_text(repr(time.time()))


async def pc_echo(value: Any) -> Any:
    return value


async def pc_kill_worker(marker_dir: str) -> None:
    """Note this run (a line with the worker's pid in ``runs``), then SIGKILL the worker."""
    with open(Path(marker_dir) / "runs", "a") as f:
        f.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), 9)  # SIGKILL: no cleanup, no release, the lease just lapses
    await trio.sleep_forever()
