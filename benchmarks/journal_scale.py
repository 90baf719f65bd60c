"""The file journal at scale: opening it, ``omniq-trio status``, and a producer meanwhile.

    python -m benchmarks.journal_scale [--tasks 300000 --tasks 1000000] [--tree DIR]

For each size, a journal of that many pending tasks is built (enqueued in
batches, as a producer would), then, each in a fresh process:

* **open**: the time ``JournalStore.open()`` takes, and the process's peak RSS;
* **status**: the wall time of ``python -m omniq_trio status`` (start-up included),
  while a producer in another process enqueues one task at a time, awaiting
  each: its **worst enqueue latency** during the command is reported (and, for
  scale, its worst in the half second before);
* **listings**: a page of 50 of each listing a dashboard shows (newest first,
  by status, queue, function, id prefix, two hundred pages in by cursor), and
  ``stats``.

``--tree`` measures another source tree of omniq_trio (a checkout of an older
commit, say), put first on ``PYTHONPATH`` of every process; ``--label`` names
it in the output. The machine's load average is printed alongside: figures
taken on a busy machine are not comparable with a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


ROLES = Path(__file__).resolve().parent / "_scale_roles.py"


def _env(tree: Path) -> dict[str, str]:
    # Run with -S (no site), from outside any tree: an editable install of this tree,
    # or the working directory, would otherwise win over PYTHONPATH. The installed
    # dependencies come from site-packages, after the tree.
    paths = [str(tree), sysconfig.get_paths()["purelib"]]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMNIQ_LOG_LEVEL": "WARNING"}


def _python() -> list[str]:
    return [sys.executable, "-S"]


def _role(tree: Path, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [*_python(), str(ROLES), *args],
        cwd=tempfile.gettempdir(),
        env=_env(tree),
        text=True,
        **kwargs,
    )


def measure(tree: Path, tasks: int, keep: Path | None) -> dict[str, float]:
    base = keep or Path(tempfile.mkdtemp(prefix="omniq-scale-"))
    try:
        start = time.perf_counter()
        builder = _role(tree, "build", str(base), str(tasks), stdout=subprocess.PIPE)
        builder.communicate()
        built = time.perf_counter() - start
        opener = _role(tree, "open", str(base), stdout=subprocess.PIPE)
        first, _ = opener.communicate()
        opener = _role(tree, "open", str(base), stdout=subprocess.PIPE)
        out, _ = opener.communicate()
        opened = json.loads(out)
        lister = _role(tree, "open", str(base), "listings", stdout=subprocess.PIPE)
        out, _ = lister.communicate()
        listings = json.loads(out)["listings"]
        producer = _role(tree, "produce", str(base), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert producer.stdout is not None and producer.stdin is not None
        assert producer.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # a steady pace of enqueues before the command starts
        begin = time.monotonic()
        subprocess.run(
            [*_python(), "-m", "omniq_trio", "status", "--base-dir", str(base)],
            cwd=tempfile.gettempdir(),
            env=_env(tree),
            check=True,
            capture_output=True,
        )
        end = time.monotonic()
        time.sleep(0.2)
        out, _ = producer.communicate("")
        every = json.loads(out)
        latencies = [lat for at, lat in every if begin <= at + lat and at <= end]
        # the same producer before the command started: what the machine gives anyway
        before = [lat for at, lat in every if at + lat < begin]
        return {
            "tasks": opened["tasks"],
            "build_s": built,
            "first_open_s": json.loads(first)["open"],
            "open_s": opened["open"],
            "rss_mb": opened["rss_mb"],
            "status_s": end - begin,
            "worst_enqueue_ms": 1000 * max(latencies, default=0.0),
            "enqueues_during_status": len(latencies),
            "worst_enqueue_before_ms": 1000 * max(before, default=0.0),
            "stats_ms": 1000 * opened["stats"],
            "listings_ms": {name: 1000 * s for name, s in listings.items()},
        }
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, action="append")
    parser.add_argument("--tree", type=Path, default=ROOT, help="source tree to measure")
    parser.add_argument("--label", default=None)
    parser.add_argument("--keep", type=Path, default=None, help="build the journal here, keep it")
    args = parser.parse_args()
    label = args.label or str(args.tree)
    print(f"{label}: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for tasks in args.tasks or [300_000, 1_000_000]:
        r = measure(args.tree.resolve(), tasks, args.keep)
        print(
            f"  {r['tasks']:>9,} pending: open {r['open_s']:.2f} s (first open "
            f"{r['first_open_s']:.2f} s), peak RSS {r['rss_mb']:,.0f} MB; status "
            f"{r['status_s']:.2f} s, worst enqueue meanwhile {r['worst_enqueue_ms']:,.0f} ms "
            f"({r['enqueues_during_status']} enqueues; {r['worst_enqueue_before_ms']:,.0f} ms "
            f"in the 0.5 s before); built in {r['build_s']:.0f} s",
            flush=True,
        )
        pages = ", ".join(f"{name} {ms:.1f}" for name, ms in r["listings_ms"].items())
        print(f"    stats {r['stats_ms']:.1f} ms; a page of 50 (ms): {pages}", flush=True)
        print(f"  load average now {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
