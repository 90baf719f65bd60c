"""An ``omniq-trio worker`` process runs only registered functions, as a user would deploy it.

The worker is given ``--import tests.security.worker_tasks``; tasks are
enqueued by path from this process, as a web app would. Refused functions
would each have written a file: the test checks that none exists, and that
the module no worker imports was never imported (importing it writes a
marker). The waits are on the tasks' results, never a sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from omniq_trio import OmniQ, Settings, TaskResult, TaskStatus
from tests.conftest import ROOT

#: Generous bound for anything a process must do; only a hang would reach it.
PATIENCE = 30.0
TASK_MODULE = "tests.security.worker_tasks"
UNREGISTERED = "omniq_trio.errors.UnregisteredTaskError"


def _worker(base_dir: Path, marker: Path, *flags: str, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OMNIQ_")}
    environ.update(
        PYTHONPATH=str(ROOT),
        OMNIQ_BASE_DIR=str(base_dir),
        OMNIQ_POLL_INTERVAL="0.05",
        SECURITY_TEST_IMPORT_MARKER=str(marker),
        **env,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "omniq_trio", "worker", *flags],
        cwd=ROOT,
        env=environ,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(worker: subprocess.Popen[str]) -> str:
    worker.send_signal(signal.SIGINT)
    _, stderr = worker.communicate(timeout=PATIENCE)
    assert worker.returncode == 0, stderr
    return stderr


def _results(omniq: OmniQ, ids: list[str]) -> list[TaskResult]:
    results = [omniq.get_result(task_id, wait=True, timeout=PATIENCE) for task_id in ids]
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_a_worker_process_runs_only_registered_functions(tmp_path: Path) -> None:
    base_dir, marker = tmp_path / "data", tmp_path / "imported-unimported_tasks"
    out = {name: tmp_path / name for name in ("system", "unimported", "dotted", "plain", "deco")}
    settings = Settings(base_dir=base_dir, poll_interval=0.05)
    with OmniQ(settings) as omniq:
        refused = [
            omniq.enqueue("os:system", f"echo ran > {out['system']}"),
            omniq.enqueue("tests.security.unimported_tasks:write_file", str(out["unimported"])),
            # worker_tasks imports os: the dotted name is still refused
            omniq.enqueue(f"{TASK_MODULE}:os.system", f"echo ran > {out['dotted']}"),
        ]
        ran = [
            omniq.enqueue(f"{TASK_MODULE}:write_file", str(out["plain"])),
            omniq.enqueue(f"{TASK_MODULE}:decorated_write", str(out["deco"])),
        ]
        worker = _worker(base_dir, marker, "--import", TASK_MODULE)
        try:
            results = _results(omniq, refused + ran)
        finally:
            stderr = _stop(worker)
    for result, path in zip(
        results[:3],
        ["os:system", "tests.security.unimported_tasks:write_file", f"{TASK_MODULE}:os.system"],
        strict=True,
    ):
        assert result.status is TaskStatus.FAILED, result
        assert result.error is not None
        assert result.error.type == UNREGISTERED
        assert result.error.message.startswith(f"refused to run {path!r}")
    assert [r.status for r in results[3:]] == [TaskStatus.SUCCESS] * 2
    assert not out["system"].exists()
    assert not out["unimported"].exists()
    assert not out["dotted"].exists()
    assert not marker.exists()  # the module a refused task named was never imported
    assert out["plain"].read_text() == out["deco"].read_text() == "ran"
    assert "allow_unregistered_tasks" not in stderr


def test_the_opt_out_runs_unregistered_functions_and_warns(tmp_path: Path) -> None:
    base_dir, marker, out = tmp_path / "data", tmp_path / "marker", tmp_path / "out"
    with OmniQ(Settings(base_dir=base_dir, poll_interval=0.05)) as omniq:
        task_id = omniq.enqueue("tests.security.unimported_tasks:write_file", str(out))
        worker = _worker(base_dir, marker, OMNIQ_ALLOW_UNREGISTERED_TASKS="true")
        try:
            (result,) = _results(omniq, [task_id])
        finally:
            stderr = _stop(worker)
    assert result.status is TaskStatus.SUCCESS
    assert out.read_text() == "ran"
    assert marker.exists()  # imported, by the opt-out
    warning = next(line for line in stderr.splitlines() if "allow_unregistered_tasks" in line)
    assert "WARNING" in warning
    assert "anyone who can write a task can run code here" in warning
