"""The code blocks of seed/run-workers.md, with ``omniq`` -> ``omniq_trio`` and asyncio -> trio.

Each example is written as close to the seed as trio allows; comments mark
what changed. The backend is "memory" (instead of the seed's "file"): like
every runtime test these run in-process under trio's MockClock, where times
are exact and a store on disk would only add I/O. The sync example
(``OmniQ`` and a thread) runs as a process in ``tests/sync/test_seed_sync.py``.
"""

from __future__ import annotations

import logging
import signal

import pytest
import trio

from omniq_trio import AsyncOmniQ
from omniq_trio.config import Settings
from omniq_trio.logging import log_worker_started, log_worker_stopped
from omniq_trio.models import TaskStatus
from tests.tasks import RuntimeProbe, rt_sleep, seed_process_task

# sync_tasks="inline": the seed's task is sync; on the trio thread it runs at a
# fixed virtual time, so the examples below are deterministic
settings = Settings(backend="memory", sync_tasks="inline")


async def test_concurrency(autojump_clock: trio.abc.Clock) -> None:
    omniq = AsyncOmniQ(settings)

    # Single worker (sequential execution)
    workers = omniq.worker(concurrency=1)
    assert workers.concurrency == 1

    # Multiple workers (parallel execution)
    workers = omniq.worker(concurrency=4)
    assert workers.concurrency == 4


async def test_polling_interval(autojump_clock: trio.abc.Clock) -> None:
    omniq = AsyncOmniQ(settings)
    # Check every 1 second (default)
    workers = omniq.worker(concurrency=2, poll_interval=1.0)
    assert workers.poll_interval == 1.0
    assert omniq.worker(concurrency=2).poll_interval == 1.0
    # Check every 0.5 seconds (faster task discovery)
    workers = omniq.worker(concurrency=2, poll_interval=0.5)
    assert workers.poll_interval == 0.5
    # Check every 5 seconds (lower overhead)
    workers = omniq.worker(concurrency=2, poll_interval=5.0)
    assert workers.poll_interval == 5.0


async def test_async_workers(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str], probe: RuntimeProbe
) -> None:
    async def main() -> None:
        omniq = AsyncOmniQ(settings)

        # Create workers
        workers = omniq.worker(concurrency=2, poll_interval=1.0)

        # Start in background (asyncio.create_task -> a nursery)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(workers.start)

            # Workers run until stopped
            print("Workers running...")
            await omniq.enqueue(rt_sleep, "work", 3.0)  # (added: some work)
            await trio.sleep(30)

            # Stop gracefully (asyncio.wait_for(worker_task, 2.0) -> trio.fail_after)
            with trio.fail_after(2.0):
                await workers.stop()

    await main()
    assert capsys.readouterr().out == "Workers running...\n"
    assert probe.starts == [("work", 0.0)]
    assert trio.current_time() == 30.0


async def run_with_shutdown(
    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    omniq = AsyncOmniQ(settings)
    workers = omniq.worker(concurrency=4)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(workers.start)
        await omniq.enqueue(rt_sleep, "in-flight", 10.0)  # (added: work in flight)

        # Handle shutdown signal (trio: a signal receiver, not KeyboardInterrupt)
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                print("\nShutdown requested...")
                break

        # Stop workers (graceful)
        with trio.fail_after(5.0):
            await workers.stop()

    print("Workers stopped gracefully")


async def test_graceful_shutdown(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str], probe: RuntimeProbe
) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(run_with_shutdown)
        await trio.sleep(7.0)
        signal.raise_signal(signal.SIGINT)
    assert capsys.readouterr().out == "\nShutdown requested...\nWorkers stopped gracefully\n"
    # the in-flight task finished (at 10) before the pool exited
    assert probe.ends == [("in-flight", 10.0)]
    assert trio.current_time() == 10.0


async def test_timeout_configuration(autojump_clock: trio.abc.Clock, probe: RuntimeProbe) -> None:
    omniq = AsyncOmniQ(settings)
    task_id = await omniq.enqueue(rt_sleep, "long", 60.0)
    async with trio.open_nursery() as nursery:
        workers = omniq.worker(concurrency=1)
        await nursery.start(workers.run)
        await trio.sleep(1.0)
        # Or use workers.stop() with timeout
        await workers.stop(timeout=10.0)
    assert trio.current_time() == 11.0
    task = await omniq.get_task(task_id)
    assert (task.status, task.attempts) == (TaskStatus.PENDING, 0)


# ------------------------------------------------------------ the complete example


async def complete_example_main() -> None:
    # Initialize OmniQ (backend "memory": see the module docstring)
    omniq = AsyncOmniQ(settings)

    # Create worker pool
    workers = omniq.worker(concurrency=4, poll_interval=1.0)

    # Setup shutdown handling (loop.add_signal_handler -> a trio signal receiver)
    shutdown_event = trio.Event()

    def signal_handler() -> None:
        print("\nShutdown signal received...")
        shutdown_event.set()

    async def watch_signals(*, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for _ in signals:
                signal_handler()

    async with trio.open_nursery() as nursery:
        await nursery.start(watch_signals)

        # Enqueue some work
        task_ids = []
        for i in range(10):
            task_id = await omniq.enqueue(seed_process_task, f"item-{i}")
            task_ids.append(task_id)

        print(f"Enqueued {len(task_ids)} tasks")

        # Start workers
        nursery.start_soon(workers.start)
        print("Workers started (concurrency=4)")

        # Run until shutdown
        await shutdown_event.wait()

        # Graceful shutdown
        print("\nStopping workers...")
        with trio.fail_after(5.0):
            await workers.stop()

        print("Workers stopped")
        nursery.cancel_scope.cancel()  # (the signal watcher)

    # Check results
    results = []
    for task_id in task_ids:
        result = await omniq.get_result(task_id)
        if result:
            results.append(result)

    print(f"\nCompleted {len(results)} tasks")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_complete_example(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str], signum: signal.Signals
) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(complete_example_main)
        await trio.sleep(3.0)
        signal.raise_signal(signum)
    lines = capsys.readouterr().out.splitlines()
    # four at a time: in priority, eta and enqueue order, but who prints first
    # among those running together is up to trio's scheduler
    processing = [line for line in lines if line.startswith("Processing: ")]
    assert sorted(processing) == [f"Processing: item-{i}" for i in range(10)]
    assert [line for line in lines if line not in processing] == [
        "Enqueued 10 tasks",
        "Workers started (concurrency=4)",
        "",
        "Shutdown signal received...",
        "",
        "Stopping workers...",
        "Workers stopped",
        "",
        "Completed 10 tasks",
    ]
    assert lines[2:12] == processing


# ---------------------------------------------------------------- best practices


async def test_monitor_worker_health(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    omniq = AsyncOmniQ(settings)
    workers = omniq.worker(concurrency=2)

    async def monitor_workers() -> int:
        # Check for stuck workers
        tasks = await omniq.list_tasks()
        running_tasks = [t for t in tasks if t["status"] == TaskStatus.RUNNING]

        if len(running_tasks) > workers.concurrency:
            print(
                f"Warning: More running tasks ({len(running_tasks)}) "
                f"than workers ({workers.concurrency})"
            )
        return len(running_tasks)  # (added, for the test)

    # a healthy, saturated pool with a backlog: exactly `concurrency` RUNNING
    for i in range(10):
        await omniq.enqueue(rt_sleep, f"t{i}", 3.0)
    counts = []
    async with trio.open_nursery() as nursery:
        await nursery.start(workers.run)
        await trio.sleep(0.25)  # look between changes, never at one
        for _ in range(31):
            counts.append(await monitor_workers())
            await trio.sleep(0.5)
        await workers.stop()
    assert capsys.readouterr().out == ""
    assert max(counts) == 2
    assert counts[-1] == 0


async def test_tasks_not_processing_and_shutdown_hanging_checks(
    autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    omniq = AsyncOmniQ(settings)
    for i in range(3):
        await omniq.enqueue(rt_sleep, f"t{i}", 100.0)
    workers = omniq.worker(concurrency=2, poll_interval=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(workers.run)
        await trio.sleep(1.0)

        # Check queue has tasks
        tasks = await omniq.list_tasks()
        pending = [t for t in tasks if t["status"] == TaskStatus.PENDING]
        print(f"Pending tasks: {len(pending)}")

        # Check for stuck tasks
        tasks = await omniq.list_tasks()
        running = [t for t in tasks if t["status"] == TaskStatus.RUNNING]
        print(f"Still running: {len(running)}")

        await workers.stop(timeout=0)
    assert capsys.readouterr().out == "Pending tasks: 1\nStill running: 2\n"


async def test_log_worker_events(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture, probe: RuntimeProbe
) -> None:
    caplog.set_level(logging.INFO, logger="omniq_trio")

    log_worker_started(concurrency=4, poll_interval=1.0)
    # Workers start...

    log_worker_stopped(tasks_processed=42, uptime=300)
    # Workers stopped

    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("omniq_trio.worker", "INFO", "worker started (concurrency=4, poll_interval=1.0s)"),
        ("omniq_trio.worker", "INFO", "worker stopped after 300.0s (42 tasks processed)"),
    ]
    started, stopped = caplog.records
    assert (started.concurrency, started.poll_interval) == (4, 1.0)  # type: ignore[attr-defined]
    assert (stopped.tasks_processed, stopped.uptime) == (42, 300)  # type: ignore[attr-defined]


async def test_a_pool_logs_its_start_and_stop(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture, probe: RuntimeProbe
) -> None:
    caplog.set_level(logging.INFO, logger="omniq_trio")
    omniq = AsyncOmniQ(settings)
    for i in range(3):
        await omniq.enqueue(rt_sleep, f"t{i}", 1.0)
    workers = omniq.worker(concurrency=4, poll_interval=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(workers.run)
        await trio.sleep(300)
        await workers.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "omniq_trio.worker"]
    assert messages == [
        f"worker {workers.worker_id} started (concurrency=4, poll_interval=1.0s)",
        f"worker {workers.worker_id} stopped after 300.0s (3 tasks processed)",
    ]
