"""omniq_trio against huey, side by side in one run, in the topology users deploy.

    python -m benchmarks.compare                 # N = 5,000
    python -m benchmarks.compare --n 20000 --json results.json
    python -m benchmarks.compare --no-huey       # ours only

Every actor is a process of its own, as deployed: a producer process enqueues
N no-op tasks one at a time; then one worker process (``omniq-trio worker``,
concurrency 4; huey's thread consumer with 4 workers) runs them, while a
monitor process holds the store open and looks at the counts every 0.5 s.
That runs for a sync no-op (in a thread) and an async no-op (ours only),
each on a fresh store. Then: enqueue from 8 concurrent producers in one
process and from 8 producer processes; enqueue-to-start latency with the
worker in another process and the default ``poll_interval``; and, as the
yardstick of single-producer enqueue, appending a 200-byte record and
``fdatasync``-ing it, in the same directory, before and after.

Durability is on for both: the file journal with ``fsync="always"``,
SqliteHuey with ``fsync=True`` (SQLite ``synchronous=FULL``). Throughput runs
from the worker saying it is ready to the last task finishing (ours: the
stored ``finished_at``; huey: its ``SIGNAL_COMPLETE``). Processes signal
readiness with lines on stdout; nothing waits on a guessed sleep.

Figures are printed, never asserted. On a machine others are using they are
not for reporting: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._procs import Role

RECORD = b"x" * 200
PRODUCERS = 8


def fsync_rate(directory: Path, count: int) -> float:
    """Records/s appending 200 bytes and ``fdatasync``-ing after each, in ``directory``."""
    path = directory / "fsync-probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, RECORD)
            os.fdatasync(fd)
        return count / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


class Side:
    """One queue under test: the module of its roles and the environment they read."""

    def __init__(self, name: str, module: str, env: Callable[[Path], dict[str, str]]) -> None:
        self.name, self.module, self._env = name, module, env

    def role(self, directory: Path, *args: str) -> Role:
        directory.mkdir(parents=True, exist_ok=True)
        return Role(self.module, args, self._env(directory))


def _ours_env(directory: Path) -> dict[str, str]:
    return {
        "OMNIQ_BACKEND": "file",
        "OMNIQ_BASE_DIR": str(directory),
        "OMNIQ_FSYNC": "always",
        "OMNIQ_CONCURRENCY": "4",
        "OMNIQ_IMPORTS": "benchmarks.tasks",
        "OMNIQ_LOG_LEVEL": "ERROR",  # not the stop's warnings
    }


def _huey_env(directory: Path) -> dict[str, str]:
    return {"BENCH_HUEY_DB": str(directory / "huey.db")}


OURS = Side("omniq_trio", "benchmarks._omniq_roles", _ours_env)
HUEY = Side("huey", "benchmarks._huey_roles", _huey_env)


def _stop_all(roles: list[Role]) -> None:
    """Stop what still runs (workers, huey's monitor); the others exit by themselves."""
    for role in roles:
        role.stop()


def process_run(side: Side, directory: Path, n: int, func: str) -> dict[str, float]:
    """Producer process, then worker process, with a monitor process throughout."""
    roles = [side.role(directory, "monitor", "--n", str(n))]
    try:
        roles[0].expect("ready")
        producer = side.role(directory, "produce", "--n", str(n), "--func", func)
        roles.append(producer)
        producer.expect("ready")
        producer.go()
        enqueued = producer.expect("result")
        producer.close()
        worker = side.role(directory, "worker", "--n", str(n))
        roles.append(worker)
        started = worker.expect("ready")["at"]
        if side is HUEY:  # its consumer counts completions (a no-op leaves no result)
            finished = worker.expect("result")["last_finish"]
        else:  # our monitor reads them from the store, then exits
            finished = roles[0].expect("result")["last_finish"]
            roles[0].close()
    finally:
        _stop_all(roles)
    return {
        "enqueue": n / (enqueued["end"] - enqueued["start"]),
        "process": n / (finished - started),
    }


def enqueue_in_one_process(side: Side, directory: Path, n: int) -> float:
    producer = side.role(directory, "produce", "--n", str(n), "--producers", str(PRODUCERS))
    try:
        producer.expect("ready")
        producer.go()
        result = producer.expect("result")
    finally:
        producer.close()
    return n / (result["end"] - result["start"])


def enqueue_from_processes(side: Side, directory: Path, n: int, count: int) -> float:
    each = max(1, n // count)
    producers = [side.role(directory, "produce", "--n", str(each)) for _ in range(count)]
    try:
        for producer in producers:
            producer.expect("ready")
        for producer in producers:
            producer.go()
        results = [producer.expect("result") for producer in producers]
    finally:
        for producer in producers:
            producer.close()
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return each * count / span


def latency_run(side: Side, directory: Path, samples: int) -> tuple[float, float]:
    """p50 and p99 (ms) from enqueue to start, the worker in another process."""
    worker = side.role(directory, "worker")
    roles = [worker]
    try:
        worker.expect("ready")
        producer = side.role(directory, "latency", "--samples", str(samples))
        roles.append(producer)
        producer.expect("ready")
        producer.go()
        waited = producer.expect("result")["latencies_ms"]
        producer.close()
    finally:
        _stop_all(roles)
    q = statistics.quantiles(waited, n=100, method="inclusive")
    return q[49], q[98]


def run_side(side: Side, base: Path, args: argparse.Namespace) -> dict[str, float]:
    print(f"  {side.name}: ...", end="", flush=True)
    root = base / side.name
    figures: dict[str, float] = {}
    funcs = {"sync": "benchmarks.tasks:noop_sync"}
    if side is OURS:
        funcs["async"] = "benchmarks.tasks:noop"
    for kind, func in funcs.items():
        run = process_run(side, root / f"process-{kind}", args.n, func)
        figures[f"process {kind}"] = run["process"]
        figures[f"enqueue 1 ({kind} run)"] = run["enqueue"]
    figures["enqueue 1"] = figures["enqueue 1 (sync run)"]
    figures["enqueue 8 tasks"] = enqueue_in_one_process(side, root / "enqueue-8", args.n)
    figures["enqueue processes"] = enqueue_from_processes(
        side, root / "enqueue-processes", args.n, args.processes
    )
    figures["latency p50"], figures["latency p99"] = latency_run(
        side, root / "latency", args.samples
    )
    print(" done", flush=True)
    return figures


def rows(processes: int) -> list[tuple[str, str, str, str]]:
    """(key, label, unit, what the issue aims at) of each line of the table."""
    return [
        ("process sync", "process, worker process, sync no-op", "tasks/s", ">= 3x huey"),
        ("process async", "process, worker process, async no-op", "tasks/s", ">= 6x huey (sync)"),
        ("enqueue 1", "enqueue, 1 producer, one at a time", "tasks/s", ">= 0.9x huey"),
        ("enqueue 8 tasks", f"enqueue, {PRODUCERS} producers in 1 process", "tasks/s", ">= 1.5x"),
        ("enqueue processes", f"enqueue, {processes} producer processes", "tasks/s", "reported"),
        ("latency p50", "enqueue->start p50, worker elsewhere", "ms", "<= 5 ms"),
        ("latency p99", "enqueue->start p99, worker elsewhere", "ms", "<= 50 ms"),
    ]


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if unit == "ms" else f"{value:,.0f}"


def print_table(
    ours: dict[str, float], huey: dict[str, float] | None, sync: float, processes: int
) -> None:
    lines = [("", "omniq_trio", "huey", "ours/huey", "target")]
    for key, label, unit, target in rows(processes):
        mine = ours[key]
        # huey has no async tasks: our async no-op is set against its sync one
        theirs = None if huey is None else huey["process sync" if key == "process async" else key]
        ratio = f"{mine / theirs:.2f}x" if theirs else "-"
        shown = None if key == "process async" else theirs
        lines.append((label, _cell(mine, unit), _cell(shown, unit), ratio, target))
    lines.append(("append 200 B + fdatasync (records/s)", _cell(sync, ""), "", "", ""))
    for label, mine, theirs, ratio, target in lines:
        print(f"{label:40} {mine:>11} {theirs:>9} {ratio:>10}   {target}")
    print(
        f"\n{PRODUCERS} producers in 1 process / append + fdatasync: "
        f"{ours['enqueue 8 tasks'] / sync:.2f}x; ours, 1 producer in the async run: "
        f"{ours['enqueue 1 (async run)']:,.0f} tasks/s"
    )
    if huey is not None:
        print("async no-op: the ratio is against huey's sync no-op (huey has no async tasks)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5_000, help="tasks per run")
    parser.add_argument("--samples", type=int, default=200, help="latency samples")
    parser.add_argument(
        "--processes", type=int, default=PRODUCERS, help="producer processes enqueuing at once"
    )
    parser.add_argument("--no-huey", action="store_true", help="measure omniq_trio only")
    parser.add_argument("--dir", type=Path, help="where the stores go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with_huey = not args.no_huey and importlib.util.find_spec("huey") is not None
    versions = f"python {sys.version.split()[0]}"
    if with_huey:
        from importlib.metadata import version

        versions += f", huey {version('huey')}"
    load = os.getloadavg()
    print(f"omniq_trio vs huey, N = {args.n:,}, {versions}; load average {load[0]:.2f}")
    print("(figures from a machine others are using are not for reporting)")
    if not with_huey:
        print("huey is not installed (pip install 'omniq-trio[bench]'): ours only")
    base = Path(tempfile.mkdtemp(prefix="omniq-compare-", dir=args.dir))
    try:
        probes = max(200, min(args.n, 2_000))
        sync_before = fsync_rate(base, probes)
        ours = run_side(OURS, base, args)
        huey = run_side(HUEY, base, args) if with_huey else None
        sync_after = fsync_rate(base, probes)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    sync = (sync_before + sync_after) / 2
    print(f"append + fdatasync: {sync_before:,.0f}/s before, {sync_after:,.0f}/s after\n")
    print_table(ours, huey, sync, args.processes)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        figures: dict[str, Any] = {"n": args.n, "ours": ours, "huey": huey, "fsync": sync}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
