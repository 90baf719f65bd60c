"""The task module of the security tests' workers (``--import tests.security.worker_tasks``).

Its module-level functions are tasks a worker that imports it runs by path.
Names it merely imports (``os``, ``imported_elsewhere``) are not: the tests
enqueue ``tests.security.worker_tasks:os.system`` and
``tests.security.worker_tasks:imported_elsewhere`` and expect refusals. No
test passes :func:`write_file` or :func:`known_later` as a function object
(that would register it for the whole process), so that they run only in
pools that import this module.
"""

from __future__ import annotations

import os  # noqa: F401 -- "tests.security.worker_tasks:os.system" must name a real object
from pathlib import Path

import omniq_trio
from tests.security.plain_tasks import imported_elsewhere  # noqa: F401 -- refused by path


def write_file(path: str, text: str = "ran") -> str:
    """Write ``text`` to ``path``: the file says the task ran."""
    Path(path).write_text(text)
    return text


@omniq_trio.task(
    max_retries=2, timeout=30, priority=5, retry_on_timeout=True, queue="files", max_lost_runs=1
)
def decorated_write(path: str, text: str = "ran") -> str:
    """As :func:`write_file`, with task defaults."""
    Path(path).write_text(text)
    return text


@omniq_trio.task
async def decorated_echo(value: object) -> object:
    """Return ``value``; registered with no defaults."""
    return value


def known_later(size: int) -> str:
    """Refused by a pool that does not import this module, run by one that does."""
    return "x" * size


def big_result(size: int) -> str:
    """A result of ``size`` characters (``size + 2`` bytes stored, with its quotes)."""
    return "x" * size
