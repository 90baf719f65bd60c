"""Monitoring a worker process from outside: its own ``/metrics``, the store's gauges
from ``omniq-trio metrics``, and ``omniq-trio workers``.

Real processes on a temporary journal; every wait is on a readiness signal
(a log line, a result), never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from prometheus_client.parser import text_string_to_metric_families

from omniq_trio import OmniQ, Settings, TaskStatus
from tests.conftest import ROOT

#: Generous bound for anything a process must do; only a hang would reach it.
PATIENCE = 30.0
TASKS = "tests.monitor.monitor_proc_tasks"
_URL = re.compile(r"http://127\.0\.0\.1:\d+/metrics")


def _environ(base_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIQ_")}
    return {**env, "PYTHONPATH": str(ROOT), "OMNIQ_BASE_DIR": str(base_dir)}


class Process:
    """A running ``omniq-trio`` command whose output lines can be waited for."""

    def __init__(self, base_dir: Path, *args: str, output: str = "stderr") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "omniq_trio", *args],
            cwd=ROOT,
            env={**_environ(base_dir), "OMNIQ_POLL_INTERVAL": "0.05"},
            stdout=subprocess.PIPE if output == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if output == "stderr" else None,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        stream = self.proc.stdout if output == "stdout" else self.proc.stderr
        assert stream is not None
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: re.Pattern[str]) -> str:
        """The first match of ``pattern`` in the next lines."""
        while True:
            line = self._lines.get(timeout=PATIENCE)
            assert line is not None, f"the process exited before printing {pattern.pattern}"
            if found := pattern.search(line):
                return found.group()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=PATIENCE)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:  # a failed test must not leave one behind
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at ``url``: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=PATIENCE) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape_until(
    url: str, done: Callable[[dict[tuple[str, tuple[tuple[str, str], ...]], float]], bool]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape until ``done(samples)``: a worker counts a run just after the store
    has its outcome, so a result can be seen a moment before its count moves."""
    deadline = time.monotonic() + PATIENCE
    while not done(samples := scrape(url)):
        assert time.monotonic() < deadline, samples
        time.sleep(0.02)
    return samples


def _workers_json(base_dir: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "omniq_trio", "workers", "--json"],
        cwd=ROOT,
        env=_environ(base_dir),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert done.returncode == 0, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


def test_a_worker_process_serves_its_metrics_and_lists_itself(
    tmp_path: Path, processes: list[Process]
) -> None:
    base_dir = tmp_path / "data"
    with OmniQ(Settings(base_dir=base_dir, poll_interval=0.05)) as omniq:
        omniq.enqueue(f"{TASKS}:add", 0, 0)  # creates the journal; run before any scrape
        processes.append(
            worker := Process(
                base_dir, "worker", "--import", TASKS, "--concurrency", "2", "--metrics-port", "0"
            )
        )
        worker_url = worker.wait_for(_URL)
        processes.append(store := Process(base_dir, "metrics", "--port", "0", output="stdout"))
        store_url = store.wait_for(_URL)

        before = scrape(worker_url)
        assert before[("omniq_worker_concurrency", ())] == 2
        ok = ("omniq_function", f"{TASKS}:add"), ("omniq_outcome", "success")
        ok_key = ("omniq_worker_runs_total", (*ok, ("omniq_queue", "default")))
        ids = [omniq.enqueue(f"{TASKS}:add", i, 1) for i in range(3)]
        failed_id = omniq.enqueue(f"{TASKS}:boom")
        for task_id in [*ids, failed_id]:
            result = omniq.get_result(task_id, wait=True, timeout=PATIENCE)
            assert result is not None
        assert result is not None and result.status is TaskStatus.FAILED

        boom = ("omniq_function", f"{TASKS}:boom"), ("omniq_outcome", "failure")
        boom_key = ("omniq_worker_runs_total", (*boom, ("omniq_queue", "default")))
        after = scrape_until(worker_url, lambda s: s.get(ok_key) == 4 and s.get(boom_key) == 1)
        assert before.get(ok_key, 0.0) <= 1  # the first task may have run before the scrape
        add_labels = (("omniq_function", f"{TASKS}:add"), ("omniq_queue", "default"))
        assert after[("omniq_worker_run_duration_seconds_count", add_labels)] == 4
        waits = after[("omniq_worker_task_wait_seconds_count", (("omniq_queue", "default"),))]
        assert waits == 5
        assert after[("omniq_worker_running_tasks", ())] == 0
        assert (
            after[("omniq_worker_uptime_seconds", ())] > before[("omniq_worker_uptime_seconds", ())]
        )

        default = ("omniq_queue", "default")
        succeeded = ("omniq_tasks", (default, ("omniq_status", "success")))
        failed = ("omniq_tasks", (default, ("omniq_status", "failed")))
        # another process's store catches up with the journal when it reads
        gauges = scrape_until(store_url, lambda s: s.get(succeeded) == 4)
        assert gauges[failed] == 1
        assert gauges[("omniq_store_up", ())] == 1
        assert gauges[("omniq_workers_live", ())] == 1

        (listed,) = _workers_json(base_dir)
        assert listed["pid"] == worker.proc.pid
        assert (listed["concurrency"], listed["queues"]) == (2, None)
        assert isinstance(listed["running"], list)  # as of its last heartbeat
        assert isinstance(listed["started_at"], float)
        assert isinstance(listed["last_seen"], float)
        assert (
            "omniq_worker_info",
            (("omniq_hostname", listed["hostname"]), ("omniq_worker_id", listed["id"])),
        ) in after

        assert worker.stop() == 0
        assert _workers_json(base_dir) == []  # it left the registry as it stopped
        scrape_until(store_url, lambda s: s.get(("omniq_workers_live", ())) == 0)
        assert store.stop() == 0
