"""The comparison benchmark runs, at a small N, so that it cannot rot.

Its figures are not checked (tests never assert a duration): only that every
scenario ran and produced one. huey's side runs when huey is installed (the
``bench`` extra), and is skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import POSTGRES_DSN, ROOT, requires_postgres

HUEY = importlib.util.find_spec("huey") is not None


def test_compare_runs_every_scenario_at_small_n(tmp_path: Path) -> None:
    figures_path = tmp_path / "figures.json"
    small = ["--n", "200", "--samples", "20", "--processes", "2"]
    small += ["--dir", str(tmp_path), "--json", str(figures_path)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.compare", *small],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(figures_path.read_text())
    expected = {
        "process sync",
        "process async",
        "enqueue 1",
        "enqueue 8 tasks",
        "enqueue processes",
        "latency p50",
        "latency p99",
    }
    assert expected <= figures["ours"].keys()
    assert all(value > 0 for value in figures["ours"].values())
    if HUEY:
        assert all(figures["huey"][key] > 0 for key in expected - {"process async"})
    else:
        assert figures["huey"] is None
        assert "huey is not installed" in done.stdout
    assert "not for reporting" in done.stdout
    assert "enqueue->start p99" in done.stdout
    assert list(tmp_path.iterdir()) == [figures_path]  # the stores are cleaned up


@requires_postgres
def test_postgres_store_benchmark_runs_at_small_n() -> None:
    assert POSTGRES_DSN is not None
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.postgres_store", "--dsn", POSTGRES_DSN, "--n", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in ("enqueue (batches of 100):", "claim + record", "stats over 200 tasks"):
        assert figure in done.stdout, done.stdout


def test_cancel_delay_benchmark_runs_at_small_n() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cancel_delay", "--n", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "file journal" in done.stdout and "p50" in done.stdout
