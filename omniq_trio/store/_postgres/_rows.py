"""Tasks and results to statement parameters and back from rows.

Arguments, results and errors travel as JSON text written by orjson (floats
in their shortest exact form) and are stored as ``json``, so what comes back
is what went in: ``args`` a tuple, ``kwargs`` a dict, errors ``TaskError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import attrs
import orjson

from ...errors import SerializationError, StoreError
from ...models import Progress, Task, TaskError, TaskResult, TaskStatus
from .._base import Outcome, OutcomeKind
from .._rules import unique_firsts
from ._wire import Param, Row, array_literal

__all__ = [
    "TASK_FIELDS",
    "dump_json",
    "enqueue_params",
    "error_json",
    "progress_json",
    "record_columns",
    "result_from_row",
    "task_from_row",
]

#: Columns of a task row (the ``task_columns`` fragment of queries.sql).
TASK_FIELDS: Final = 26
_INT64: Final = 2**63
_INT32: Final = 2**31


def dump_json(value: Any, what: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise SerializationError(f"{what} cannot be stored as JSON: {exc}") from None


def error_json(error: TaskError | None) -> str | None:
    return None if error is None else dump_json(attrs.asdict(error), "the error")


def _load_error(text: str | None) -> TaskError | None:
    return None if text is None else TaskError(**orjson.loads(text))


def progress_json(progress: Progress | None) -> str | None:
    return None if progress is None else dump_json(attrs.asdict(progress), "the progress")


def _load_progress(text: str | None) -> Progress | None:
    return None if text is None else Progress(**orjson.loads(text))


def _check_int(task: Task, name: str, value: int, bound: int) -> int:
    if not -bound <= value < bound:
        raise StoreError(f"task {task.id}: {name}={value} is out of range for PostgreSQL")
    return value


def enqueue_params(tasks: Sequence[Task]) -> list[Param]:
    """The ``enqueue`` statement's parameters: one array per column, then per task
    the 1-based position of the earlier task it collapses into (same unique key)."""
    columns: list[list[Param]] = [[] for _ in range(26)]
    for task in tasks:
        values: tuple[Param, ...] = (
            task.id,
            task.func,
            dump_json(list(task.args), f"task {task.id}'s args"),
            dump_json(dict(task.kwargs), f"task {task.id}'s kwargs"),
            task.status.value,
            _check_int(task, "priority", task.priority, _INT64),
            task.eta,
            task.interval,
            _check_int(task, "max_retries", task.max_retries, _INT32),
            task.timeout,
            task.retry_on_timeout,
            _check_int(task, "attempts", task.attempts, _INT32),
            task.created_at,
            task.started_at,
            task.finished_at,
            task.worker_id,
            task.lease_until,
            error_json(task.error),
            task.queue,
            task.unique_key,
            task.unique_for,
            task.scheduled_at,
            _check_int(task, "lost_runs", task.lost_runs, _INT32),
            _check_int(task, "max_lost_runs", task.max_lost_runs, _INT32),
            progress_json(task.progress),
            dump_json(dict(task.headers), f"task {task.id}'s headers"),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    firsts = [None if first is None else first + 1 for first in unique_firsts(tasks)]
    return [*(array_literal(column) for column in columns), array_literal(firsts)]


def record_columns(outcomes: Sequence[Outcome]) -> list[list[Param]]:
    """The ``record`` statement's parameters, each an array of one field of the
    outcomes, as lists (``GroupCommit.execute_items``)."""
    return [
        [o.task_id for o in outcomes],
        [o.worker_id for o in outcomes],
        [
            None
            if o.error is not None
            else dump_json(o.value, f"the return value of task {o.task_id}")
            for o in outcomes
        ],
        [error_json(o.error) for o in outcomes],
        [o.at for o in outcomes],
        [o.eta if o.kind is OutcomeKind.RETRY else None for o in outcomes],
        [o.eta if o.kind is OutcomeKind.NEXT_RUN else None for o in outcomes],
    ]


def task_from_row(row: Row) -> Task:
    """A ``Task`` from the first columns of ``row`` (the ``task_columns`` of queries.sql)."""
    (
        task_id,
        func,
        args,
        kwargs,
        status,
        priority,
        eta,
        interval,
        max_retries,
        timeout,
        retry_on_timeout,
        attempts,
        created_at,
        started_at,
        finished_at,
        worker_id,
        lease_until,
        error,
        queue,
        unique_key,
        unique_for,
        scheduled_at,
        lost_runs,
        max_lost_runs,
        progress,
        headers,
    ) = row[:TASK_FIELDS]
    return Task(
        id=task_id,
        func=func,
        args=tuple(orjson.loads(args)),
        kwargs=orjson.loads(kwargs),
        status=TaskStatus(status),
        priority=priority,
        eta=eta,
        interval=interval,
        max_retries=max_retries,
        timeout=timeout,
        retry_on_timeout=retry_on_timeout,
        attempts=attempts,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        worker_id=worker_id,
        lease_until=lease_until,
        error=_load_error(error),
        queue=queue,
        unique_key=unique_key,
        unique_for=unique_for,
        scheduled_at=scheduled_at,
        lost_runs=lost_runs,
        max_lost_runs=max_lost_runs,
        progress=_load_progress(progress),
        headers=orjson.loads(headers),
    )


def result_from_row(task_id: str, row: Row) -> TaskResult | None:
    """A ``TaskResult`` from ``RESULT_COLUMNS``, ``None`` if the task has none yet."""
    status, value, error, attempts, started_at, finished_at = row
    if status is None:
        return None
    return TaskResult(
        task_id,
        TaskStatus(status),
        None if value is None else orjson.loads(value),
        _load_error(error),
        attempts,
        started_at,
        finished_at,
    )
