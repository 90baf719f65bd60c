"""``serve``: embedded with ``nursery.start``, and as a process stopped by signals."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest
import trio

import omniq_trio
from omniq_trio import AsyncOmniQ, TaskStatus, WorkerPool
from tests.conftest import ROOT
from tests.runtime.conftest import SETTINGS
from tests.tasks import RuntimeProbe, rt_sleep

SERVE_SETTINGS = SETTINGS.evolve(concurrency=2, shutdown_timeout=30.0)


async def test_serve_embedded_returns_the_running_pool(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe
) -> None:
    async with trio.open_nursery() as nursery:
        pool = await nursery.start(omniq_trio.serve, SERVE_SETTINGS)
        assert isinstance(pool, WorkerPool)
        assert pool.running
        assert pool.concurrency == 2
        async with AsyncOmniQ(SERVE_SETTINGS, store=pool.store) as omniq:
            ids = [await omniq.enqueue(rt_sleep, f"t{i}", 1.0) for i in range(4)]
            results = [await omniq.get_result(task_id, wait=True) for task_id in ids]
            assert trio.current_time() == 2.0
            await pool.stop()
    assert [r.status for r in results if r] == [TaskStatus.SUCCESS] * 4
    assert not pool.running
    assert probe.max_running == 2


async def test_serve_imports_the_modules_it_is_told_to(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        pool = await nursery.start(omniq_trio.serve, SERVE_SETTINGS.evolve(imports=["tests.tasks"]))
        await pool.stop()
    with pytest.RaisesGroup(
        pytest.RaisesExc(omniq_trio.TaskModuleImportError, match="cannot import 'no_such_module'"),
        flatten_subgroups=True,
    ):
        await omniq_trio.serve(SERVE_SETTINGS.evolve(imports=["no_such_module"]))


def _raise_signal(signum: signal.Signals) -> None:
    # serve handles signals only in the main thread, where pytest-trio runs us
    assert threading.current_thread() is threading.main_thread()
    signal.raise_signal(signum)


async def test_serve_stops_gracefully_on_the_first_signal(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe, caplog: pytest.LogCaptureFixture
) -> None:
    async with trio.open_nursery() as nursery:
        pool = await nursery.start(omniq_trio.serve, SERVE_SETTINGS)
        omniq = AsyncOmniQ(SERVE_SETTINGS, store=pool.store)
        task_id = await omniq.enqueue(rt_sleep, "a", 10.0)
        await trio.sleep(1.0)
        _raise_signal(signal.SIGTERM)
    # the running task had time to finish
    assert trio.current_time() == 10.0
    # (serve closed the store on its way out; a memory store keeps its tasks)
    omniq = AsyncOmniQ(SERVE_SETTINGS, store=pool.store)
    assert (await omniq.get_task(task_id)).status is TaskStatus.SUCCESS
    assert any("SIGTERM received: stopping gracefully" in r.getMessage() for r in caplog.records)


async def test_serve_stops_at_once_on_the_second_signal(
    autojump_clock: trio.abc.Clock, probe: RuntimeProbe, caplog: pytest.LogCaptureFixture
) -> None:
    async with trio.open_nursery() as nursery:
        pool = await nursery.start(omniq_trio.serve, SERVE_SETTINGS)
        omniq = AsyncOmniQ(SERVE_SETTINGS, store=pool.store)
        task_id = await omniq.enqueue(rt_sleep, "a", 100.0)
        await trio.sleep(1.0)
        _raise_signal(signal.SIGINT)
        await trio.sleep(2.0)
        assert pool.running
        _raise_signal(signal.SIGINT)
    assert trio.current_time() == 3.0
    task = await AsyncOmniQ(SERVE_SETTINGS, store=pool.store).get_task(task_id)
    assert (task.status, task.attempts) == (TaskStatus.PENDING, 0)
    assert any("SIGINT received again" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- as a process

SERVE = "import trio, omniq_trio; trio.run(omniq_trio.serve)"
#: Real seconds a subprocess may take to start or stop (generous: CI machines are slow).
PROCESS_TIMEOUT = 30.0


def _read_until(proc: subprocess.Popen[bytes], needle: bytes, timeout: float) -> bytes:
    """The subprocess's stderr up to and including ``needle`` (real time: a subprocess)."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {needle!r} from the process; it wrote {seen!r}")
        readable, _, _ = select.select([proc.stderr], [], [], remaining)
        if readable:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"process exited before {needle!r}; it wrote {seen!r}")
            seen += chunk
    return seen


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_process_exits_cleanly_on_a_signal(signum: signal.Signals) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIQ_")}
    env.update(OMNIQ_BACKEND="memory", OMNIQ_SHUTDOWN_TIMEOUT="5", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE], env=env, cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        _read_until(proc, b"started (concurrency=1", PROCESS_TIMEOUT)
        proc.send_signal(signum)
        assert proc.wait(timeout=PROCESS_TIMEOUT) == 0
        assert proc.stderr is not None
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"{signum.name} received: stopping gracefully".encode() in rest
    assert b"stopped after" in rest
    assert b"Traceback" not in rest
