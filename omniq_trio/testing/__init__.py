"""Helpers for testing code that uses omniq_trio, and the Store conformance suite.

For your own tasks: :func:`open_test_omniq` (or the pytest plugin's ``omniq``
fixture) gives a queue on the memory store; :func:`drain` runs a worker until
nothing is left to run, jumping trio's MockClock over every wait; and
:func:`assert_task` / :func:`assert_counts` check the outcome. For your own
store: :func:`check_store` runs the contract every store keeps, and
:func:`make_task` and :data:`T0` help write checks of your own.
"""

from omniq_trio._reexport import publish

from ._asserts import assert_counts as assert_counts
from ._asserts import assert_task as assert_task
from ._drain import DEFAULT_DRAIN_TIMEOUT as DEFAULT_DRAIN_TIMEOUT
from ._drain import drain as drain
from ._queue import TEST_SETTINGS as TEST_SETTINGS
from ._queue import open_test_omniq as open_test_omniq
from ._store_checks import STORE_CHECKS as STORE_CHECKS
from ._store_checks import check_store as check_store
from ._store_kit import T0 as T0
from ._store_kit import MakeStore as MakeStore
from ._store_kit import make_task as make_task

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT",
    "STORE_CHECKS",
    "T0",
    "TEST_SETTINGS",
    "MakeStore",
    "assert_counts",
    "assert_task",
    "check_store",
    "drain",
    "make_task",
    "open_test_omniq",
]

publish(globals(), __all__)
