"""``omniq-trio`` end to end, in real processes on a temporary journal.

These tests wait on real time (they run real processes), never on a fixed
sleep: they wait for log lines and for files the tasks create.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omniq_trio import OmniQ, Settings
from tests.conftest import ROOT

#: Generous bound for anything a process must do; only a hang would reach it.
PATIENCE = 30.0
TASKS = "tests.cli.cli_tasks"


def environ(base_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIQ_")}
    return {**env, "PYTHONPATH": str(ROOT), "OMNIQ_BASE_DIR": str(base_dir)}


def cli(base_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m omniq_trio ARGS`` to completion (OMNIQ_BASE_DIR=base_dir)."""
    return subprocess.run(
        [sys.executable, "-m", "omniq_trio", *args],
        cwd=ROOT,
        env=environ(base_dir),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )


def ok(base_dir: Path, *args: str) -> str:
    done = cli(base_dir, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ok_all(base_dir: Path, *commands: list[str]) -> list[str]:
    """Run several commands at once (each start-up takes a while); their outputs."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "omniq_trio", *args],
            cwd=ROOT,
            env=environ(base_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=PATIENCE)
        assert proc.returncode == 0, err
        outputs.append(out)
    return outputs


def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + PATIENCE
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


class Worker:
    """An ``omniq-trio worker`` process whose log lines can be waited for."""

    def __init__(self, base_dir: Path, *flags: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "omniq_trio", "worker", "--import", TASKS, *flags],
            cwd=ROOT,
            env={**environ(base_dir), "OMNIQ_POLL_INTERVAL": "0.05"},
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str) -> str:
        """The next log line containing ``text``."""
        while True:
            line = self._lines.get(timeout=PATIENCE)
            assert line is not None, f"the worker exited before logging {text!r}"
            if text in line:
                return line

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def wait(self) -> int:
        return self.proc.wait(timeout=PATIENCE)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:  # a failed test must not leave a worker behind
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


def test_enqueue_run_and_look(tmp_path: Path, workers: list[Worker]) -> None:
    base_dir, marker = tmp_path / "data", tmp_path / "slow-started"
    add_id, boom_id, slow_id = (
        ok(base_dir, "enqueue", f"{TASKS}:{func}", args).strip()
        for func, args in [
            ("add", "[2, 3]"),
            ("boom", '["bad input"]'),
            ("slow", json.dumps([str(marker), 0.5])),
        ]
    )

    # One at a time, in enqueue order: when slow has started, add and boom are done.
    workers.append(worker := Worker(base_dir, "--concurrency", "1"))
    worker.wait_for("started")
    wait_for_file(marker)
    worker.interrupt()
    assert "1 task(s) still finishing" in worker.wait_for("SIGINT received")
    assert worker.wait() == 0

    status_json, status, added, failed, slow_json, listed, failed_json = ok_all(
        base_dir,
        ["status", "--json"],
        ["status"],
        ["inspect", add_id],
        ["inspect", boom_id],
        ["inspect", slow_id, "--json"],
        ["list"],
        ["list", "--status", "failed", "--json"],
    )
    counts = json.loads(status_json)["counts"]
    assert (counts["success"], counts["failed"], counts["pending"]) == (2, 1, 0)
    assert "success        2" in status and "oldest waiting task (due, not started): none" in status

    assert "status:   success" in added and "result:   5" in added
    assert "args:     [2, 3]" in added
    assert "ValueError: bad input" in failed and "Traceback (most recent call last)" in failed
    slow: dict[str, Any] = json.loads(slow_json)
    assert (slow["task"]["status"], slow["result"]["value"]) == ("success", "slept")

    rows = listed.splitlines()
    assert rows[0].split() == ["ID", "STATUS", "RUNS", "CREATED", "PROGRESS", "FUNC"]
    assert [row.split()[0] for row in rows[1:]] == [add_id, boom_id, slow_id]
    assert [task["id"] for task in json.loads(failed_json)] == [boom_id]

    assert ok(base_dir, "retry", boom_id) == f"task {boom_id} is pending again\n"
    assert ok(base_dir, "cancel", boom_id) == f"cancelled {boom_id}\n"


def test_status_watch_refreshes_until_interrupted(tmp_path: Path) -> None:
    ok(tmp_path, "enqueue", f"{TASKS}:add", "[1, 1]")
    watch = subprocess.Popen(
        [sys.executable, "-m", "omniq_trio", "status", "--watch", "0.05", "--json"],
        cwd=ROOT,
        env=environ(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watch.stdout is not None
    refreshes = [json.loads(watch.stdout.readline()) for _ in range(2)]
    watch.send_signal(signal.SIGINT)
    assert watch.wait(timeout=PATIENCE) == 0
    assert [r["counts"]["pending"] for r in refreshes] == [1, 1]


def test_second_sigint_stops_at_once_and_loses_nothing(
    tmp_path: Path, workers: list[Worker]
) -> None:
    base_dir, marker = tmp_path / "data", tmp_path / "first-run"
    with OmniQ(Settings(base_dir=base_dir, poll_interval=0.05)) as omniq:
        task_id = omniq.enqueue(f"{TASKS}:hang_first_run", str(marker))

        workers.append(first := Worker(base_dir))
        wait_for_file(marker)
        first.interrupt()
        first.wait_for("still finishing")
        first.interrupt()
        first.wait_for("stopping now")
        assert first.wait() == 0

        task = omniq.get_task(task_id)
        assert (task.status, task.attempts) == ("pending", 0)  # back in the queue, uncharged

        workers.append(second := Worker(base_dir))
        result = omniq.get_result(task_id, wait=True, timeout=PATIENCE)
        assert result is not None and result.value == "second run"
        second.wait_for("started")
        second.interrupt()
        assert second.wait() == 0
