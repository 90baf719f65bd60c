"""Every example runs as a user would run it, and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

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


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_is_tested(path: Path) -> None:
    tested = {"quickstart.py", "worker_lifecycle.py", "async_workers.py"}
    assert path.name in tested, f"{path.name} has no test in tests/test_examples.py"
