"""The schedule the worker processes of ``test_processes.py`` run (``--import`` this module).

Its task records each run in a file of its process under ``$ROUTE_TEST_RUNS``,
so the test counts executions independently of what the store says.
"""

from __future__ import annotations

import os
from pathlib import Path

from omniq_trio import Schedule

#: The schedule's name, shared by every process that runs it.
NAME = "every-minute"


async def record_run() -> None:
    """Record this run: one line, in one O_APPEND write, in this process's file."""
    with open(Path(os.environ["ROUTE_TEST_RUNS"]) / f"{os.getpid()}.runs", "a") as f:
        f.write(f"{os.getpid()}\n")


every_minute = Schedule(record_run, "* * * * *", name=NAME, catch_up="all")
