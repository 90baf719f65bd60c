"""Every example runs as a user would run it, and prints what it promises."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from omniq_trio.config import ENV_PREFIX
from tests.conftest import POSTGRES_DSN, ROOT, requires_postgres

EXAMPLES = ROOT / "examples"


def run_example(name: str, cwd: Path, *args: str, timeout: float = 60) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_postgres_example(name: str, cwd: Path, *, schema: str) -> str:
    """Run an example against the test server (its DSN as argument); drop the schema it
    makes, whatever happens."""
    assert POSTGRES_DSN is not None
    try:
        return run_example(name, cwd, POSTGRES_DSN, timeout=120)
    finally:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_quickstart(tmp_path: Path) -> None:
    out = run_example("quickstart.py", tmp_path)
    assert "enqueued 6 tasks" in out
    assert out.count(": success -> ") == 6
    assert "done: 6 tasks succeeded" in out
    assert (tmp_path / "omniq_data").is_dir()


def test_worker_lifecycle_the_seeds_complete_example(tmp_path: Path) -> None:
    out = run_example("worker_lifecycle.py", tmp_path, "--run-for", "2")
    assert "Enqueued 10 tasks" in out
    assert "Workers started (concurrency=4)" in out
    # sync tasks print from worker threads, so lines may interleave
    assert all(f"Processing: item-{i}" in out for i in range(10))
    assert "Shutdown signal received..." in out
    assert "Workers stopped" in out
    assert out.rstrip().endswith("Completed 10 tasks")


def test_async_workers(tmp_path: Path) -> None:
    out = run_example("async_workers.py", tmp_path)
    lines = out.splitlines()
    assert lines[0] == "Workers running..."
    assert lines[1].startswith("Workers stopped after ") and len(lines) == 2


def test_quickstart_sync(tmp_path: Path) -> None:
    out = run_example("quickstart_sync.py", tmp_path)
    assert "enqueued 4 tasks" in out
    assert out.count(": success -> ") == 4
    assert "workers stopped: 4 tasks succeeded" in out


def test_embedding(tmp_path: Path) -> None:
    out = run_example("embedding.py", tmp_path)
    lines = out.splitlines()
    assert lines[:2] == ["app: listening", "app: workers running"]
    for i in range(3):
        assert f"client: photo-{i}.png -> thumbs/photo-{i}.png" in lines
    assert lines[-1] == "app: stopped after 3 tasks"


def test_retries_and_timeouts(tmp_path: Path) -> None:
    out = run_example("retries_and_timeouts.py", tmp_path)
    assert out.splitlines() == [
        "flaky: success after 3 run(s): flaky: ok on run 3",
        "broken: failed after 3 run(s): ConnectionError: broken: connection reset (run 3)",
        "slow: failed after 1 run(s): omniq_trio.errors.TaskTimeoutError: timed out after 0.3s",
        "slow-then-fast: success after 2 run(s): slow-then-fast: finished on run 2",
        "broken, retried by hand: failed after 6 runs",
    ]


def test_scheduling(tmp_path: Path) -> None:
    out = run_example("scheduling.py", tmp_path)
    runs = [line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("  +")]
    # the three due together run by priority, the delayed ones in eta order
    assert [r for r in runs if r.startswith("priority")] == [
        "priority=5",
        "priority=1",
        "priority=0",
    ]
    assert runs.index("delay=0.5") < runs.index("eta=now+0.75s")
    assert runs[0] == "interval=0.25" and runs.count("interval=0.25") >= 3
    assert out.splitlines()[-2:] == [
        "cancel the interval task: True",
        "the interval task is cancelled",
    ]


def test_graceful_shutdown(tmp_path: Path) -> None:
    out = run_example("graceful_shutdown.py", tmp_path, "--signal-after", "0.5")
    assert out.splitlines()[-6:] == [
        "sending SIGTERM to myself after 0.5s",
        "worker stopped: 2 run(s) finished",
        "short: success, attempts=1",
        "medium: success, attempts=1",
        "long: pending, attempts=0",
        "later: pending, attempts=0",
    ]


def test_test_with_mockclock_passes_under_pytest(tmp_path: Path) -> None:
    """The copyable test module passes as a user would run it, with only the plugin's help:
    copied into a project of its own, where the plugin comes from its entry point."""
    shutil.copy(EXAMPLES / "test_with_mockclock.py", tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_with_mockclock.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout


@requires_postgres
def test_postgres_workers(tmp_path: Path) -> None:
    out = run_postgres_example("postgres_workers.py", tmp_path, schema="omniq_example")
    assert "enqueued 300 tasks for 3 worker processes" in out
    assert "all 300 tasks succeeded, each run once" in out
    assert out.rstrip().endswith("workers stopped")


@requires_postgres
def test_flask_signups_enqueue_in_the_views_transaction(tmp_path: Path) -> None:
    out = run_postgres_example("flask_signups.py", tmp_path, schema="flask_example")
    lines = out.splitlines()
    assert lines[0].startswith("POST /signups ada@example.com: 201 ")
    assert lines[1].startswith("POST /signups alan@example.com: 201 ")
    assert lines[2] == (
        "POST /signups ada@example.com: 409 {'error': 'ada@example.com has signed up already'}"
    )
    assert lines[3:] == [
        "welcome mail sent to ada@example.com",
        "welcome mail sent to alan@example.com",
        # the signup that rolled back left no task
        "tasks: 2, signups welcomed: 2",
    ]


def _wait_for_line(proc: subprocess.Popen[str], pattern: str, deadline: float) -> re.Match[str]:
    """Read ``proc``'s stdout until a line matches ``pattern`` (fail at ``deadline``)."""
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    while True:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        if line is None:
            raise AssertionError(f"exited before printing {pattern!r}:\n{''.join(seen)}")
        seen.append(line)
        if found := re.search(pattern, line):
            return found


def test_fastapi_app_enqueues_from_a_route_and_a_worker_process_runs_it(tmp_path: Path) -> None:
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(PYTHONPATH=str(ROOT), OMNIQ_POLL_INTERVAL="0.05", OMNIQ_LOG_LEVEL="WARNING")
    worker = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "fastapi_app.py"), "worker"], cwd=tmp_path, env=env
    )
    uvicorn = ["-m", "uvicorn", "fastapi_app:app", "--app-dir", str(EXAMPLES)]
    app = subprocess.Popen(
        [sys.executable, *uvicorn, "--host", "127.0.0.1", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = _wait_for_line(app, r"Uvicorn running on (http://\S+)", time.monotonic() + 60)
        with httpx.Client(base_url=ready[1], timeout=60) as http:
            assert http.get("/health").json() == {"ok": True}
            created = http.post("/signups", json={"email": "ada@example.com"})
            assert created.status_code == 202
            task_id = created.json()["task_id"]
            assert http.get(f"/tasks/{task_id}", params={"wait": 30}).json() == {
                "status": "success",
                "value": "welcome mail sent to ada@example.com",
            }
            assert http.get("/tasks/no-such-task").status_code == 404
    finally:
        for proc in (app, worker):
            proc.send_signal(signal.SIGINT)  # both stop gracefully on Ctrl-C
        codes = (app.wait(timeout=30), worker.wait(timeout=30))
    assert codes == (0, 0)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_is_tested(path: Path) -> None:
    tested = {
        "quickstart.py",
        "worker_lifecycle.py",
        "async_workers.py",
        "quickstart_sync.py",
        "embedding.py",
        "retries_and_timeouts.py",
        "scheduling.py",
        "graceful_shutdown.py",
        "test_with_mockclock.py",
        "postgres_workers.py",
        "fastapi_app.py",
        "flask_signups.py",
    }
    assert path.name in tested, f"{path.name} has no test in tests/test_examples.py"
