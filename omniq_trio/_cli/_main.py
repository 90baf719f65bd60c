"""``omniq-trio``'s entry point: parse, build the settings, run the command, map errors to codes.

Every store option also comes from its ``OMNIQ_*`` variable
(:meth:`Settings.from_env`); a flag wins over the variable. Exit codes: 0 done,
1 it could not be done (unknown task, no journal, store error), 2 the command
line or the settings are wrong, 75 a worker stopped because its store stayed
unavailable (EX_TEMPFAIL: restart it), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Final

from .. import __version__
from .._serve import EX_TEMPFAIL
from ..config import Settings
from ..errors import (
    ConfigError,
    FunctionImportError,
    OmniQError,
    SerializationError,
    StoreUnavailableError,
    TaskOptionError,
)
from ._commands import CliError
from ._spec import build_parser, walk
from ._table import COMMANDS, DESCRIPTION, EPILOG, SHARED

__all__ = ["main", "parser", "settings"]

#: Exit codes of the errors a user can cause, checked in order; any other
#: exception is a bug and keeps its traceback.
EXIT_CODES: Final[tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...]] = (
    ((ConfigError, TaskOptionError, SerializationError, FunctionImportError), 2),
    (StoreUnavailableError, EX_TEMPFAIL),
    ((OmniQError, OSError), 1),
)

#: The options that are Settings fields, by their ``dest``.
_SETTINGS: Final = frozenset(
    spec.dest
    for spec in (
        *(o for _, group in SHARED for o in group),
        *(o for command in walk(COMMANDS) for o in command.options),
    )
    if spec.setting
)


def parser() -> argparse.ArgumentParser:
    """The ``omniq-trio`` parser, from the command table."""
    return build_parser(
        description=DESCRIPTION,
        epilog=EPILOG,
        version=f"omniq-trio {__version__}",
        shared=SHARED,
        commands=COMMANDS,
    )


def settings(args: argparse.Namespace) -> Settings:
    """The settings of a parsed command line: its setting options over ``OMNIQ_*``."""
    given = {name: getattr(args, name) for name in _SETTINGS if hasattr(args, name)}
    found = Settings.from_env(**{k: v for k, v in given.items() if v is not None})
    if found.backend == "memory":
        raise CliError("the memory backend lives inside one process; use file or postgres", 2)
    return found


class _Warnings(logging.Handler):
    """Log warnings as the CLI's own: ``omniq-trio status: warning: ...``."""

    def __init__(self, prog: str) -> None:
        super().__init__(logging.WARNING)
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{self.prog}: warning: {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def _warnings_shown(prog: str, logger: logging.Logger) -> Iterator[None]:
    handler = _Warnings(prog)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _sole(exc: BaseException) -> BaseException:
    """The one exception inside nested single-exception groups (trio's strict groups)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _exit_code(error: BaseException) -> int | None:
    if isinstance(error, CliError):
        return error.code
    for kinds, code in EXIT_CODES:
        if isinstance(error, kinds):
            return code
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``omniq-trio`` command line; returns the exit code."""
    args = parser().parse_args(argv)
    prog = f"omniq-trio {args.cli_name}"
    try:
        with _warnings_shown(prog, logging.getLogger("omniq_trio.config")):
            found = settings(args)
        return int(args.cli_command.run(args, found))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        error = _sole(exc)
        code = _exit_code(error)
        if code is None:
            raise  # a bug: the traceback is what we need
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code
