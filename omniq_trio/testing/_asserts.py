"""Assertions on tasks, with messages that show what the task really did."""

from __future__ import annotations

from typing import Any, Final

from .._client import AsyncOmniQ
from ..models import Task, TaskStatus

__all__ = ["assert_counts", "assert_task"]


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


def _type_name(kind: type[BaseException]) -> str:
    # the form TaskError.type takes: "ValueError", "omniq_trio.errors.TaskTimeoutError"
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _describe(task: Task, now: float) -> str:
    due = task.eta - now
    when = f"due in {due:.3f}s" if due > 0 else f"due {-due:.3f}s ago"
    lines = [
        f"  status={task.status.value} attempts={task.attempts} max_retries={task.max_retries}"
        f" ({when})",
    ]
    if task.error is not None:
        lines.append(f"  last error: {task.error}")
        if task.error.traceback:
            tail = task.error.traceback.rstrip().splitlines()[-6:]
            lines.extend("    " + line for line in tail)
    return "\n".join(lines)


async def assert_task(
    omniq: AsyncOmniQ,
    task_id: str,
    *,
    status: TaskStatus | str | None = None,
    attempts: int | None = None,
    value: Any = _UNSET,
    error: type[BaseException] | str | None = None,
) -> Task:
    """Assert facts about a task and return it.

    ``status`` (a :class:`~omniq_trio.TaskStatus` or its value, ``"failed"``)
    and ``attempts`` (finished executions) are compared with the task;
    ``value`` with its result's value; ``error`` is an exception type that
    the task's last error must be of, or a string it must contain
    (``"ValueError: boom"``). Only the facts given are checked. On a
    mismatch, ``AssertionError`` lists every one, with the task's state and
    the end of its last traceback.
    """
    task = await omniq.get_task(task_id)
    problems: list[str] = []
    if status is not None and task.status != TaskStatus(status):
        problems.append(f"status is {task.status.value!r}, expected {TaskStatus(status).value!r}")
    if attempts is not None and task.attempts != attempts:
        problems.append(f"attempts is {task.attempts}, expected {attempts}")
    if value is not _UNSET:
        result = await omniq.get_result(task_id)
        if result is None:
            problems.append(f"has no result yet, expected value {value!r}")
        elif result.value != value:
            problems.append(f"value is {result.value!r}, expected {value!r}")
    if error is not None:
        if task.error is None:
            problems.append(f"has no error, expected {error!r}")
        elif isinstance(error, str):
            if error not in str(task.error):
                problems.append(f"error {str(task.error)!r} does not contain {error!r}")
        elif task.error.type != _type_name(error):
            problems.append(f"error is a {task.error.type}, expected {_type_name(error)}")
    if problems:
        raise AssertionError(
            f"task {task_id} ({task.func}): "
            + "; ".join(problems)
            + "\n"
            + _describe(task, omniq.clock.now())
        )
    return task


async def assert_counts(omniq: AsyncOmniQ, **expected: int) -> None:
    """Assert how many tasks are in some states: ``assert_counts(omniq, success=3, failed=1)``.

    Keywords are status values (``pending``, ``running``, ``success``,
    ``failed``, ``retrying``, ``cancelled``); states not named are not checked.
    """
    try:
        wanted = {TaskStatus(name): count for name, count in expected.items()}
    except ValueError as exc:
        raise TypeError(
            f"{exc}; use keywords among: {', '.join(s.value for s in TaskStatus)}"
        ) from None
    counts = (await omniq.stats()).counts
    wrong = {status: count for status, count in wanted.items() if counts[status] != count}
    if wrong:
        got = ", ".join(f"{s.value}={n}" for s, n in counts.items() if n)
        raise AssertionError(
            "task counts differ: "
            + ", ".join(f"{s.value} is {counts[s]}, expected {n}" for s, n in wrong.items())
            + f" (all: {got or 'no tasks'})"
        )
