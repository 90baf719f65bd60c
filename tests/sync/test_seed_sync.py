"""The seed's "Sync Workers" example (docs: run-workers.md), run as a process.

It runs verbatim but for the import (``omniq`` -> ``omniq_trio``); a preamble
supplies the ``settings`` it assumes and enqueues work. The example waits for
its workers with ``time.sleep(30)``; the preamble makes that wait end as soon
as the workers have finished the work (a readiness signal: their results),
so the test takes as long as the work does, and fails only if it is not done
within the example's own 30 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PREAMBLE = """
import sys
import time
from pathlib import Path

from omniq_trio import OmniQ
from omniq_trio.config import Settings
from tests.sync.sync_tasks import add

settings = Settings(backend="file", base_dir=Path(sys.argv[1]))
with OmniQ(settings) as producer:
    # the function object registers it: the example's workers, in this process, run it
    ids = [producer.enqueue(add, i, i) for i in range(5)]


def _until_done(seconds):
    # time.sleep(seconds), ended once every task above has a result
    deadline = time.monotonic() + seconds
    with OmniQ(settings.evolve(poll_interval=0.02)) as waiter:
        for task_id in ids:
            left = max(0.01, deadline - time.monotonic())
            waiter.get_result(task_id, wait=True, timeout=left)


time.sleep = _until_done
"""

EXAMPLE = """
import threading
from omniq_trio import OmniQ

def main():
    omniq = OmniQ(settings)

    # Create workers
    workers = omniq.worker(concurrency=2)

    # Start in background thread
    worker_thread = threading.Thread(target=workers.start, daemon=True)
    worker_thread.start()

    # Workers run until stopped
    print("Workers running...")
    import time
    time.sleep(30)

    # Stop gracefully
    workers.stop(timeout=5.0)
    worker_thread.join(timeout=3.0)
"""

EPILOGUE = """
main()
print("stopped")
with OmniQ(settings) as reader:
    print([reader.get_result(task_id).value for task_id in ids])
"""


def test_seed_sync_example_runs_and_stops(tmp_path: Path) -> None:
    script = tmp_path / "sync_example.py"
    script.write_text(PREAMBLE + EXAMPLE + EPILOGUE)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMNIQ_LOG_LEVEL": "WARNING"}

    # The example never closes its OmniQ; the process must still exit (at exit
    # the OmniQ is closed for it), well within this timeout.
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,  # the example's own 30 s wait, its 5 s stop, start-up: only a hang
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Workers running...", "stopped", "[0, 2, 4, 6, 8]"]
    assert "Traceback" not in done.stderr
