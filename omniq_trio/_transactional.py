"""Enqueue inside the caller's database transaction: the seam between clients and stores.

A store that can write tasks inside a transaction its caller holds (the
PostgreSQL store) says so with ``capabilities.transactional_enqueue`` and
offers ``enqueue_statement(tasks)``: the statement that writes them
(:class:`EnqueueStatement`). The *client* runs it on the caller's connection,
in the caller's thread: the tasks then exist if and only if the caller's
transaction commits, and the wake-up it sends (``NOTIFY``) is delivered at
commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

__all__ = ["EnqueueStatement"]


@attrs.frozen
class EnqueueStatement:
    """SQL that writes tasks in the caller's transaction, for its psycopg connection.

    ``sql`` uses psycopg placeholders (``%s``); run with ``params``, it returns
    one row ``(task_id, created)`` per task enqueued, in order (``created``
    false: a unique key named a task that exists, and ``task_id`` is that
    task's).
    """

    sql: str
    params: Sequence[Any]
