"""What the Store contract checks share, public for store authors' own tests:
a fixed clock origin, ``make_task``, and small helpers."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from ..models import Task, TaskError
from ..store import Store

__all__ = ["ERROR", "LEASE", "T0", "W1", "W2", "MakeStore", "claim", "make_task", "raises"]

#: ``make_store(name)`` returns an async context manager yielding an *open* store:
#: the same ``name`` means the same data, a new name means empty.
MakeStore = Callable[[str], AbstractAsyncContextManager[Store]]

#: A fixed wall-clock origin: stores must take every time from the caller.
T0: Final = 1_700_000_000.0
#: The lease the checks' claims take (seconds).
LEASE: Final = 30.0
W1: Final = "worker-1"
W2: Final = "worker-2"
ERROR: Final = TaskError("builtins.ValueError", "boom", "Traceback ...\nValueError: boom\n")

_names = itertools.count()


def new_name() -> str:
    """A name no check used before: a store of its own."""
    return f"check{next(_names)}-{uuid.uuid4().hex[:6]}"


def make_task(**fields: Any) -> Task:
    """A PENDING task with sensible defaults, due at :data:`T0`."""
    fields.setdefault("id", uuid.uuid4().hex)
    fields.setdefault("func", "tests.tasks:noop")
    fields.setdefault("eta", T0)
    fields.setdefault("created_at", T0)
    return Task(**fields)


async def claim(
    store: Store,
    worker: str = W1,
    *,
    now: float = T0,
    limit: int = 100,
    queues: dict[str, int] | None = None,
) -> list[Task]:
    """Claim as ``worker`` at ``now`` with a lease of :data:`LEASE`."""
    return await store.claim(worker, now=now, limit=limit, lease_until=now + LEASE, queues=queues)


async def raises(exc_type: type[BaseException], call: Awaitable[Any]) -> BaseException:
    """Await ``call``; it must raise ``exc_type``."""
    try:
        await call
    except exc_type as exc:
        return exc
    raise AssertionError(f"expected {exc_type.__name__}")


async def all_tasks(store: Store) -> list[Task]:
    """Every task, in enqueue order."""
    return (await store.list_tasks()).tasks
