"""A worker runs only registered functions (in one process, under ``autojump_clock``).

Registered: decorated with ``@omniq_trio.task``, passed to ``enqueue`` as a
function object in this process, or defined at module level in a module of
``Settings.imports``. The refusals of a separate worker process, and a file
the refused function would have written, are in ``test_worker_process.py``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

import omniq_trio
from omniq_trio import AsyncOmniQ, Call, Task, TaskOptionError, TaskResult, TaskStatus
from omniq_trio.errors import FunctionImportError, TaskModuleImportError
from tests.runtime.conftest import SETTINGS, running
from tests.security import plain_tasks
from tests.security.worker_tasks import decorated_echo, decorated_write

TASK_MODULE = "tests.security.worker_tasks"
WORKER_SETTINGS = SETTINGS.evolve(imports=(TASK_MODULE,))
UNREGISTERED = "omniq_trio.errors.UnregisteredTaskError"
NOT_REGISTERED = f"not registered in this worker, whose task modules are: {TASK_MODULE}"


@pytest.fixture
async def omniq() -> AsyncIterator[AsyncOmniQ]:
    async with AsyncOmniQ(WORKER_SETTINGS) as client:
        yield client


async def _run(omniq: AsyncOmniQ, *task_ids: str) -> list[TaskResult]:
    results = []
    async with running(omniq):
        for task_id in task_ids:
            result = await omniq.get_result(task_id, wait=True)
            assert result is not None
            results.append(result)
    return results


async def test_registered_functions_run(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, tmp_path: Path
) -> None:
    ids = [
        # a module-level function of a module the pool imports, by path
        await omniq.enqueue(f"{TASK_MODULE}:write_file", str(tmp_path / "imported")),
        # decorated, by path (its module is imported) and as an object
        await omniq.enqueue(f"{TASK_MODULE}:decorated_write", str(tmp_path / "by-path")),
        await omniq.enqueue(decorated_echo, "decorated"),
        # passed as a function object: registered by the enqueue
        await omniq.enqueue(plain_tasks.passed_echo, "passed"),
        # and then by path too, in this process
        await omniq.enqueue("tests.security.plain_tasks:passed_echo", "passed by path"),
    ]
    results = await _run(omniq, *ids)
    assert [r.status for r in results] == [TaskStatus.SUCCESS] * 5
    assert [r.value for r in results] == ["ran", "ran", "decorated", "passed", "passed by path"]
    assert (tmp_path / "imported").read_text() == "ran"
    assert (tmp_path / "by-path").read_text() == "ran"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        # imported by this process (the test did), but not registered
        (
            "tests.security.plain_tasks:refused_echo",
            NOT_REGISTERED,
        ),
        # imported into the task module, defined elsewhere
        (
            f"{TASK_MODULE}:imported_elsewhere",
            f"{TASK_MODULE}.imported_elsewhere is tests.security.plain_tasks.imported_elsewhere,"
            " defined in another module",
        ),
        # a dotted name through an imported module is never followed
        (f"{TASK_MODULE}:plain_tasks.refused_echo", "'plain_tasks.refused_echo' is a dotted name"),
        (f"{TASK_MODULE}:os.getcwd", "'os.getcwd' is a dotted name"),
        (f"{TASK_MODULE}:missing", f"module '{TASK_MODULE}' defines no 'missing'"),
        ("os:system", NOT_REGISTERED),
    ],
)
async def test_unregistered_functions_are_refused_and_not_run(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, path: str, words: str
) -> None:
    calls = len(plain_tasks.CALLS)
    (result,) = await _run(omniq, await omniq.enqueue(path, "echo refused", max_retries=3))
    assert result.status is TaskStatus.FAILED
    assert result.attempts == 1  # a retry cannot fix it: not retried
    assert result.error is not None
    assert result.error.type == UNREGISTERED
    message = result.error.message
    assert message.startswith(f"refused to run {path!r} ({words}")
    assert "@omniq_trio.task" in message
    assert "Settings.imports, OMNIQ_IMPORTS, --import" in message
    assert "`omniq-trio retry TASK_ID` runs this task again" in message
    assert len(plain_tasks.CALLS) == calls


async def test_a_refused_task_runs_once_retried_by_a_worker_that_knows_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with AsyncOmniQ(SETTINGS) as omniq:  # a worker that imports nothing
        task_id = await omniq.enqueue(f"{TASK_MODULE}:known_later", 3)
        (refused,) = await _run(omniq, task_id)
        assert refused.status is TaskStatus.FAILED
        assert "task modules are: " in refused.error.message  # type: ignore[union-attr]
        # the new deployment's pool imports the module
        knowing = AsyncOmniQ(WORKER_SETTINGS, store=omniq.store)
        await knowing.retry(task_id)
        (result,) = await _run(knowing, task_id)
    assert (result.status, result.value) == (TaskStatus.SUCCESS, "xxx")


async def test_the_opt_out_runs_unregistered_functions_and_warns(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = SETTINGS.evolve(allow_unregistered_tasks=True)
    with caplog.at_level(logging.WARNING, logger="omniq_trio.worker"):
        async with AsyncOmniQ(settings) as omniq:
            task_id = await omniq.enqueue("tests.security.plain_tasks:allowed_echo", "allowed")
            (result,) = await _run(omniq, task_id)
    assert (result.status, result.value) == (TaskStatus.SUCCESS, "allowed")
    assert ("allowed_echo", "allowed") in plain_tasks.CALLS
    (warning,) = [r for r in caplog.records if "allow_unregistered_tasks" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert "anyone who can write a task can run code here" in warning.getMessage()


async def test_no_warning_without_the_opt_out(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(omniq):
        pass
    assert not [r for r in caplog.records if "allow_unregistered_tasks" in r.getMessage()]


async def test_a_pool_imports_its_modules_at_start(autojump_clock: trio.abc.Clock) -> None:
    settings = SETTINGS.evolve(imports=("tests.security.no_such_module",))
    async with AsyncOmniQ(settings) as omniq:
        pool = omniq.worker()
        with pytest.raises(
            TaskModuleImportError, match=r"cannot import 'tests\.security\.no_such_module'"
        ):
            await pool.run()


# ------------------------------------------------------------------ @task defaults


async def test_decorator_defaults_apply_to_calls_that_pass_the_function(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ, tmp_path: Path
) -> None:
    path = str(tmp_path / "out")
    defaults = await omniq.get_task(await omniq.enqueue(decorated_write, path))
    (from_call,) = await omniq.enqueue_many([Call(decorated_write, (path,))])
    explicit = await omniq.get_task(
        await omniq.enqueue(
            decorated_write,
            path,
            max_retries=0,
            timeout=5,
            priority=0,
            retry_on_timeout=False,
            queue="default",
            max_lost_runs=3,
        )
    )
    by_path = await omniq.get_task(await omniq.enqueue(f"{TASK_MODULE}:decorated_write", path))
    bare = await omniq.get_task(await omniq.enqueue(decorated_echo, 1))
    assert as_set(defaults) == (2, 30.0, 5, True, "files", 1)
    assert as_set(await omniq.get_task(from_call)) == (2, 30.0, 5, True, "files", 1)
    assert as_set(explicit) == (0, 5.0, 0, False, "default", 3)
    # a producer enqueuing by path does not see the decorator's defaults
    assert as_set(by_path) == (0, None, 0, False, "default", 3)
    assert as_set(bare) == (0, None, 0, False, "default", 3)


def as_set(task: Task) -> tuple[object, ...]:
    return (
        task.max_retries,
        task.timeout,
        task.priority,
        task.retry_on_timeout,
        task.queue,
        task.max_lost_runs,
    )


def test_the_decorator_returns_the_function_and_checks_its_options() -> None:
    def local() -> None: ...

    assert omniq_trio.task(plain_tasks.echo_args) is plain_tasks.echo_args
    with pytest.raises(TaskOptionError, match="max_retries must be an integer >= 0"):
        omniq_trio.task(max_retries=-1)
    with pytest.raises(TaskOptionError, match="timeout must be > 0 seconds"):
        omniq_trio.task(timeout=0)
    with pytest.raises(TaskOptionError, match="priority must be an integer"):
        omniq_trio.task(priority=1.5)  # type: ignore[call-overload]
    with pytest.raises(TaskOptionError, match="retry_on_timeout must be True or False"):
        omniq_trio.task(retry_on_timeout="yes")  # type: ignore[call-overload]
    with pytest.raises(TaskOptionError, match="queue must be a queue name"):
        omniq_trio.task(queue="no spaces")
    with pytest.raises(TaskOptionError, match="max_lost_runs must be an integer >= 0"):
        omniq_trio.task(max_lost_runs=-1)
    with pytest.raises(FunctionImportError, match="define it at module level"):
        omniq_trio.task(local)
