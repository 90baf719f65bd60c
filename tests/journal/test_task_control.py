"""Task control across processes on the file journal: a cancel from another process
reaches the worker through its wake-up socket; a task that kills its worker ends
FAILED after ``max_lost_runs + 1`` runs.

Process tests: they wait on files the tasks write and on the store, never on a
guessed sleep.
"""

from __future__ import annotations

from pathlib import Path

from omniq_trio import Settings
from tests._control_procs import check_cancel_across_processes, check_lost_runs_end_failed


def _settings(tmp_path: Path) -> tuple[Settings, dict[str, object]]:
    base_dir = tmp_path / "journal"
    return Settings(backend="file", base_dir=base_dir), {"backend": "file", "base_dir": base_dir}


def test_a_cancel_from_another_process_interrupts_the_run(tmp_path: Path) -> None:
    settings, worker = _settings(tmp_path)
    check_cancel_across_processes(settings, worker, tmp_path)


def test_a_task_that_kills_its_worker_ends_failed_after_max_lost_runs(tmp_path: Path) -> None:
    settings, worker = _settings(tmp_path)
    check_lost_runs_end_failed(settings, worker, tmp_path)
