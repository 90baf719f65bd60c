"""Worker processes for the task-control process tests (journal and PostgreSQL).

They wait on files the ``pc_*`` tasks write (``tests.tasks``) and on what the
store says, never on a guessed sleep.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from omniq_trio import AsyncOmniQ, Settings, Task
from tests.conftest import ROOT

__all__ = ["Worker", "read_task", "settings_env", "wait_for_file", "wait_until", "with_client"]


def settings_env(settings: dict[str, object]) -> dict[str, str]:
    """The environment of a worker process with these ``OMNIQ_*`` settings."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMNIQ_IMPORTS": "tests.tasks",
        "OMNIQ_LOG_LEVEL": "WARNING",
        **{f"OMNIQ_{k.upper()}": str(v) for k, v in settings.items()},
    }


class Worker:
    """One ``serve()`` process; :meth:`stop` ends it gracefully (SIGTERM)."""

    def __init__(self, settings: dict[str, object]) -> None:
        code = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=settings_env(settings)
        )

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_for_file(path: Path, timeout: float = 60) -> None:
    wait_until(path.exists, f"{path.name} to be written", timeout)


def with_client(settings: Settings, use: Callable[[AsyncOmniQ], Any]) -> Any:
    """``await use(omniq)`` on a client of ``settings``, from this (sync) test."""

    async def run() -> Any:
        async with AsyncOmniQ(settings) as omniq:
            return await use(omniq)

    return trio.run(run)


def read_task(settings: Settings, task_id: str) -> Task:
    task: Task = with_client(settings, lambda omniq: omniq.get_task(task_id))
    return task


def check_cancel_across_processes(
    settings: Settings, worker_settings: dict[str, object], markers: Path
) -> None:
    """A worker process runs a task; this process cancels it; the run is interrupted
    (its ``finally`` runs) long before the lease renewal would have noticed, and the
    worker goes on with the next task."""
    from omniq_trio import TaskStatus
    from tests.tasks import pc_echo, pc_wait

    # a lease of 10 minutes: its renewal (every 200 s) cannot be what stops the run
    worker = Worker({**worker_settings, "lease_duration": 600, "poll_interval": 0.2})
    try:
        task_id = with_client(settings, lambda omniq: omniq.enqueue(pc_wait, str(markers), "a"))
        wait_for_file(markers / "a.started")
        assert with_client(settings, lambda omniq: omniq.cancel(task_id))
        wait_for_file(markers / "a.finally", timeout=60)
        task = read_task(settings, task_id)
        assert (task.status, task.attempts, task.error) == (TaskStatus.CANCELLED, 0, None)

        async def next_task(omniq: AsyncOmniQ) -> Any:
            echo = await omniq.enqueue(pc_echo, "next")
            return await omniq.get_result(echo, wait=True, timeout=60)

        result = with_client(settings, next_task)
        assert result.value == "next"
        assert worker.proc.poll() is None
    finally:
        code = worker.stop()
    assert code == 0


def _killed_or_failed(worker: Worker, settings: Settings, task_id: str) -> bool:
    from omniq_trio import TaskStatus

    return worker.proc.poll() is not None or (
        read_task(settings, task_id).status is TaskStatus.FAILED
    )


def check_lost_runs_end_failed(
    settings: Settings, worker_settings: dict[str, object], markers: Path
) -> None:
    """A task that SIGKILLs its worker, under a supervisor that restarts the worker:
    it runs ``max_lost_runs + 1`` times, then ends FAILED with ``WorkerLostError``."""
    from omniq_trio import TaskStatus
    from tests.tasks import pc_kill_worker

    max_lost_runs = 2
    runs = markers / "runs"
    task_id = with_client(
        settings,
        lambda omniq: omniq.enqueue(pc_kill_worker, str(markers), max_lost_runs=max_lost_runs),
    )
    env = {**worker_settings, "lease_duration": 1.0, "poll_interval": 0.1}
    killed = 0
    worker = Worker(env)
    try:
        while True:  # the supervisor: restart the worker each time the task kills it
            wait_until(
                functools.partial(_killed_or_failed, worker, settings, task_id),
                "the worker to be killed or the task to fail",
            )
            if worker.proc.poll() is None:
                break  # FAILED: this worker reclaimed it for the last time, and lives on
            assert worker.proc.returncode == -signal.SIGKILL
            killed += 1
            assert killed <= max_lost_runs + 1, "the task ran more than max_lost_runs + 1 times"
            worker = Worker(env)
    finally:
        code = worker.stop()
    assert code == 0
    pids = runs.read_text().split()
    assert len(pids) == killed == max_lost_runs + 1
    assert len(set(pids)) == len(pids)  # one run per worker process
    task = read_task(settings, task_id)
    assert (task.status, task.lost_runs, task.attempts) == (TaskStatus.FAILED, 3, 0)
    assert task.error is not None and task.error.type == "omniq_trio.errors.WorkerLostError"
    assert "max_lost_runs=2" in task.error.message
