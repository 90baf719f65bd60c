"""The Store contract as runnable checks, for our stores and anyone else's.

``make_store(name)`` returns an async context manager that yields an *open*
store: the same ``name`` means the same data (a reopened journal directory, the
same PostgreSQL schema, the same memory object), a new name means empty. Each
check takes ``make_store`` and raises ``AssertionError`` on a breach.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from ._checks_behaviour import BEHAVIOUR_CHECKS
from ._checks_core import CORE_CHECKS
from ._checks_features import FEATURE_CHECKS
from ._store_kit import MakeStore

__all__ = ["STORE_CHECKS", "MakeStore", "check_store"]

Check = Callable[[MakeStore], Awaitable[None]]

#: Every check, in the order :func:`check_store` runs them.
STORE_CHECKS: Final[tuple[Check, ...]] = (*CORE_CHECKS, *FEATURE_CHECKS, *BEHAVIOUR_CHECKS)


async def check_store(make_store: MakeStore) -> None:
    """Run every contract check against the store ``make_store`` opens.

    ``make_store(name)`` must return an async context manager yielding an open
    store; the same ``name`` must give the same data.
    """
    for check in STORE_CHECKS:
        try:
            await check(make_store)
        except AssertionError as exc:
            raise AssertionError(f"{check.__name__}: {exc}") from exc
