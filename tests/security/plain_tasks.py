"""Functions the security tests import, but no worker imports as a task module.

They are unregistered unless a test passes one to ``enqueue`` as a function
object; each test uses functions of its own, since a registration lasts for
the process. Each records its calls in :data:`CALLS`, so a test can tell
that a refused function did not run.
"""

from __future__ import annotations

from typing import Any

#: (function name, argument) of every call, in order
CALLS: list[tuple[str, object]] = []


def imported_elsewhere(value: object = None) -> object:
    """Imported into ``worker_tasks``; refused there by path (defined here)."""
    CALLS.append(("imported_elsewhere", value))
    return value


def refused_echo(value: object = None) -> object:
    """Never registered: a worker refuses it."""
    CALLS.append(("refused_echo", value))
    return value


def passed_echo(value: object = None) -> object:
    """Registered by being passed to ``enqueue``."""
    CALLS.append(("passed_echo", value))
    return value


def allowed_echo(value: object = None) -> object:
    """Runs unregistered, under ``allow_unregistered_tasks``."""
    CALLS.append(("allowed_echo", value))
    return value


def echo_args(*args: Any, **kwargs: Any) -> None:
    """Accepts anything (payload tests)."""
    CALLS.append(("echo_args", len(args) + len(kwargs)))


def detonate() -> str:
    """What unpickling a :class:`Bomb` calls."""
    CALLS.append(("detonate", None))
    return "unpickled"


class Bomb:
    """Unpickling one calls :func:`detonate`: proof that it was unpickled."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (detonate, ())
