"""``retry_failed``: run every FAILED task (of one function) again, page by page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from .errors import InvalidTransitionError, TaskNotFoundError, UniqueConflictError
from .models import TaskPage, TaskStatus

__all__ = ["retry_failed"]

#: Failed tasks read per page.
PAGE: Final = 500


class _Client(Protocol):
    """What of ``AsyncOmniQ`` this takes (a protocol: the client imports this module)."""

    async def query_tasks(
        self,
        status: TaskStatus | None = ...,
        *,
        func: Callable[..., Any] | str | None = ...,
        limit: int = ...,
        cursor: str | None = ...,
    ) -> TaskPage: ...

    async def retry(self, task_id: str) -> None: ...


async def retry_failed(omniq: _Client, func: Callable[..., Any] | str | None = None) -> int:
    """Retry the FAILED tasks of ``omniq`` (of ``func`` only, if given); how many were.

    Pages through with a cursor, so tasks that fail while this runs may or may
    not be included; each retry is its own store change. A task that was
    retried, purged or is blocked by its unique key meanwhile is skipped.
    """
    retried = 0
    cursor: str | None = None
    while True:
        page = await omniq.query_tasks(TaskStatus.FAILED, func=func, limit=PAGE, cursor=cursor)
        for task in page.tasks:
            try:
                await omniq.retry(task.id)
            except (InvalidTransitionError, TaskNotFoundError, UniqueConflictError):
                continue
            retried += 1
        cursor = page.next_cursor
        if cursor is None:
            return retried
