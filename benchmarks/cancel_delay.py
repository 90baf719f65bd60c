"""Cross-process cancel delay: ``cancel()`` here → the task's ``finally`` in the worker.

A worker process (``serve``) runs ``benchmarks.tasks:cancel_wait``, which
writes a file when it starts and, in its ``finally``, the wall time it was
interrupted. This process waits for the start file, notes the time, calls
``cancel()`` and reads the interrupted time: the delay is the difference (one
machine, one wall clock). Printed as p50 and max per store; never asserted.

``--fallback`` measures the lease renewal instead of the notification: the
worker ignores cancel notifications, so only its lease keeper (every
``lease/3``) notices; expect about ``lease/6`` on average, ``lease/3`` at worst.

::

    python -m benchmarks.cancel_delay --n 20
    python -m benchmarks.cancel_delay --dsn postgresql://postgres@127.0.0.1/test
    python -m benchmarks.cancel_delay --fallback --lease 3 --n 10
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import trio

from benchmarks.tasks import cancel_wait
from omniq_trio import AsyncOmniQ, Settings

ROOT = Path(__file__).resolve().parent.parent


async def _wait_for(path: Path, timeout: float = 60.0) -> None:
    with trio.fail_after(timeout):
        while not path.exists():  # noqa: ASYNC110 (a file another process writes)
            await trio.sleep(0.0005)


async def _measure(settings: Settings, markers: Path, n: int) -> list[float]:
    delays: list[float] = []
    async with AsyncOmniQ(settings) as omniq:
        for i in range(n):
            task_id = await omniq.enqueue(cancel_wait, str(markers), str(i))
            await _wait_for(markers / f"{i}.started")
            await trio.sleep(0.01)  # let the run settle into its sleep
            before = time.time()
            await omniq.cancel(task_id)
            finally_path = markers / f"{i}.finally"
            await _wait_for(finally_path)
            delays.append(float(finally_path.read_text()) - before)
    return delays


def _worker(env: dict[str, str], fallback: bool) -> subprocess.Popen[bytes]:
    code = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
    if fallback:
        code = "import benchmarks.cancel_delay as b; b.worker_without_cancel_notifications()"
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=full_env)


def worker_without_cancel_notifications() -> None:
    """A worker with no cancel watcher (for ``--fallback``): only its lease keeper
    learns of cancels."""
    import omniq_trio
    from omniq_trio.worker import _pool

    async def no_watcher(*args: Any, **kwargs: Any) -> None:
        await trio.sleep_forever()

    setattr(_pool, "cancel_watcher", no_watcher)  # noqa: B010 (a benchmark-only patch)
    trio.run(omniq_trio.serve)


def _run(name: str, settings: Settings, env: dict[str, str], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="omniq-cancel-") as tmp:
        markers = Path(tmp)
        if settings.backend == "file":
            base_dir = markers / "journal"
            settings = settings.evolve(base_dir=base_dir)
            env = {**env, "OMNIQ_BASE_DIR": str(base_dir)}
        worker = _worker(env, args.fallback)
        try:
            delays = trio.run(_measure, settings, markers, args.n)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)
    ms = sorted(d * 1000 for d in delays)
    print(
        f"{name:<28} n={len(ms):<4} p50 {statistics.median(ms):8.1f} ms   "
        f"max {ms[-1]:8.1f} ms   min {ms[0]:6.1f} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="cancels per store (default 20)")
    parser.add_argument("--dsn", help="also measure PostgreSQL on this server")
    parser.add_argument(
        "--fallback", action="store_true", help="the lease renewal only (no notifications)"
    )
    parser.add_argument(
        "--lease", type=float, default=None, help="lease seconds (default 600; --fallback: 3)"
    )
    args = parser.parse_args(argv)
    lease = args.lease or (3.0 if args.fallback else 600.0)
    how = f"lease renewal, lease {lease:g}s" if args.fallback else "notification"
    print(f"cross-process cancel delay ({how}); load {os.getloadavg()[0]:.2f}")
    common = {
        "OMNIQ_IMPORTS": "benchmarks.tasks",
        "OMNIQ_LOG_LEVEL": "WARNING",
        "OMNIQ_LEASE_DURATION": str(lease),
    }
    _run(
        "file journal",
        Settings(backend="file"),
        {**common, "OMNIQ_BACKEND": "file"},
        args,
    )
    if args.dsn:
        schema = f"bench_cancel_{uuid.uuid4().hex[:8]}"
        settings = Settings(backend="postgres", dsn=args.dsn, postgres_schema=schema)
        env = {
            **common,
            "OMNIQ_BACKEND": "postgres",
            "OMNIQ_DSN": args.dsn,
            "OMNIQ_POSTGRES_SCHEMA": schema,
        }
        try:
            _run("postgresql", settings, env, args)
        finally:
            import psycopg

            with psycopg.connect(args.dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
