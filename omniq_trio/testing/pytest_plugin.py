"""A pytest plugin with fixtures for testing code that uses omniq_trio.

Installed with omniq_trio and loaded by pytest through the ``pytest11``
entry point, but opt-in: nothing here runs unless a test asks for one of its
fixtures by name. The fixtures are async, so they need pytest-trio (with
``trio_mode = true``, or tests marked ``@pytest.mark.trio``). Disable the
plugin with ``-p no:omniq_trio``.

``omniq``
    An open ``AsyncOmniQ`` on a fresh memory store, closed after the test.
    Its stored times follow the test's trio clock: ask for pytest-trio's
    ``autojump_clock`` too and every delay, retry backoff and timeout is
    virtual.
``omniq_settings``
    The ``Settings`` it is made with (:data:`~omniq_trio.testing.TEST_SETTINGS`).
    Override this fixture (in a conftest.py or a test module) to change them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .._client import AsyncOmniQ
from ..config import Settings
from ._queue import TEST_SETTINGS, open_test_omniq

__all__ = ["omniq", "omniq_settings"]


@pytest.fixture
def omniq_settings() -> Settings:
    """The settings of the ``omniq`` fixture; override it to change them."""
    return TEST_SETTINGS


@pytest.fixture
async def omniq(omniq_settings: Settings) -> AsyncIterator[AsyncOmniQ]:
    """An open ``AsyncOmniQ`` on a fresh memory store (see ``omniq_settings``)."""
    async with open_test_omniq(omniq_settings) as queue:
        yield queue
