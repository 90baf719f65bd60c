"""``omniq-trio``: run workers and look after the queue from a shell.

The commands are a table (:mod:`._table`); the parser is built from it
(:mod:`._spec`); each command is a thin call into the library (:mod:`._commands`).
"""

from ._main import main as main

__all__ = ["main"]
