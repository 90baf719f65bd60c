"""``omniq-trio``: run workers and look after the queue from a shell.

Every store option also comes from its ``OMNIQ_*`` variable
(:meth:`Settings.from_env`); a flag wins over the variable. Exit codes: 0 done,
1 it could not be done (unknown task, no journal, store error), 2 the command
line or the settings are wrong, 75 a worker stopped because its store stayed
unavailable (EX_TEMPFAIL: restart it), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

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
from ..models import TaskStatus
from ._commands import COMMANDS, CliError

__all__ = ["main"]

#: Flags that are Settings fields (the rest only steer the command).
_SETTINGS_FLAGS = (
    "backend",
    "base_dir",
    "dsn",
    "concurrency",
    "poll_interval",
    "shutdown_timeout",
    "imports",
    "log_level",
)
_USAGE_ERRORS = (ConfigError, TaskOptionError, SerializationError, FunctionImportError)

_MAIN_EPILOG = """\
examples:
  omniq-trio worker --base-dir ./omniq_data --concurrency 4 --import app.tasks
  omniq-trio enqueue app.tasks:send_email '["ada@example.com"]' --delay 60
  omniq-trio status --watch
  omniq-trio inspect 3f2a9c0e...

Options have OMNIQ_* twins (OMNIQ_BASE_DIR, OMNIQ_DSN, OMNIQ_CONCURRENCY, ...);
a flag wins over its variable. Exit codes: 0 done, 1 failed (unknown task, no
journal, store error), 2 bad command line or settings, 75 worker stopped: its store
stayed unavailable (restart it), 130 interrupted.
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2 (argparse prints the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _store_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("store (default: the file journal in ./omniq_data)")
    group.add_argument(
        "--backend", choices=["file", "postgres"], help="where tasks live (OMNIQ_BACKEND)"
    )
    group.add_argument(
        "--base-dir", metavar="DIR", help="directory of the file journal (OMNIQ_BASE_DIR)"
    )
    group.add_argument(
        "--dsn", help="PostgreSQL connection string; implies --backend postgres (OMNIQ_DSN)"
    )
    return parent


def _command(
    commands: Any, name: str, summary: str, examples: str, store: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    return commands.add_parser(  # type: ignore[no-any-return]
        name,
        help=summary,
        description=summary,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[store],
    )


def _parser() -> _Parser:
    parser = _Parser(
        prog="omniq-trio",
        description="Run omniq_trio workers and look after the task queue.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"omniq-trio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    store = _store_options()

    p = _command(
        commands,
        "worker",
        "Run a worker until Ctrl-C or SIGTERM (once: finish running tasks; twice: stop now).",
        "  omniq-trio worker --import app.tasks --concurrency 4\n"
        "  OMNIQ_DSN=postgresql://app@db/app omniq-trio worker --import app.tasks\n"
        "The current directory is importable, as with `python -m`.\n",
        store,
    )
    p.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="tasks run at once (OMNIQ_CONCURRENCY, default 1)",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        metavar="S",
        help="seconds between looks for work (OMNIQ_POLL_INTERVAL, default 1)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="S",
        help="seconds running tasks get to finish on Ctrl-C (OMNIQ_SHUTDOWN_TIMEOUT, default 30)",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import MODULE first; repeat or comma-separate (OMNIQ_IMPORTS)",
    )
    p.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        type=str.upper,
        help="(OMNIQ_LOG_LEVEL, default INFO)",
    )

    p = _command(
        commands,
        "enqueue",
        "Enqueue module:function(*ARGS, **KWARGS) and print the task id.",
        "  omniq-trio enqueue app.tasks:add '[2, 3]'\n"
        '  omniq-trio enqueue app.tasks:send_email --kwargs \'{"to": "ada@example.com"}\' \\\n'
        "      --delay 60 --max-retries 3\n"
        "The module is not imported; a warning says when it cannot be found here.\n",
        store,
    )
    p.add_argument("func", metavar="module:function")
    p.add_argument("args", nargs="?", metavar="ARGS", help="positional arguments as a JSON array")
    p.add_argument("--kwargs", metavar="JSON", help="keyword arguments as a JSON object")
    p.add_argument("--delay", type=float, metavar="S", help="run no sooner than S seconds from now")
    p.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help="retries after a failure (OMNIQ_DEFAULT_MAX_RETRIES)",
    )
    p.add_argument(
        "--priority", type=int, default=0, metavar="N", help="higher runs first (default 0)"
    )

    p = _command(
        commands,
        "status",
        "Show how many tasks are in each state, and how long the oldest has waited.",
        "  omniq-trio status\n"
        "  omniq-trio status --watch 5\n"
        "  omniq-trio status --json | jq .counts.failed\n",
        store,
    )
    p.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=2.0,
        metavar="S",
        help="refresh every S seconds (default 2) until Ctrl-C",
    )
    p.add_argument("--json", action="store_true", help="one JSON object (a line per refresh)")

    p = _command(
        commands,
        "list",
        "List tasks, oldest first.",
        "  omniq-trio list --status failed\n  omniq-trio list --limit 0 --json\n",
        store,
    )
    p.add_argument(
        "--status", choices=[s.value for s in TaskStatus], help="only tasks in this state"
    )
    p.add_argument(
        "--limit", type=int, default=100, metavar="N", help="at most N tasks (default 100; 0: all)"
    )
    p.add_argument("--json", action="store_true", help="a JSON array of tasks")

    for name, summary in (
        ("inspect", "Show one task: call, state, runs, times, error with traceback, result."),
        (
            "cancel",
            "Cancel a task that has not finished (a running one finishes, its outcome is dropped).",
        ),
        ("retry", "Run a failed task again, with a fresh retry budget."),
    ):
        p = _command(
            commands,
            name,
            summary,
            f"  omniq-trio {name} 3f2a9c0e5b6d4e7f8a9b0c1d2e3f4a5b\n",
            store,
        )
        p.add_argument("task_id", metavar="TASK_ID")
        if name == "inspect":
            p.add_argument("--json", action="store_true", help="the task and its result as JSON")

    p = _command(
        commands,
        "purge",
        "Forget finished tasks (and their results) that finished long enough ago.",
        "  omniq-trio purge --older-than 7d\n  omniq-trio purge --older-than 90s\n",
        store,
    )
    p.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 90s, 15m, 2h, 7d")

    _command(
        commands,
        "compact",
        "Rewrite the file journal as its live tasks only (workers may keep running).",
        "  omniq-trio compact --base-dir ./omniq_data\n",
        store,
    )
    p = _command(
        commands,
        "repair",
        "Cut a damaged journal back to its last intact record (the cut bytes are kept aside).",
        "  omniq-trio repair --dry-run\n  omniq-trio repair --base-dir ./omniq_data\n",
        store,
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be cut")

    _command(
        commands,
        "migrate",
        "Create or upgrade the PostgreSQL schema (nothing to do for the file journal).",
        "  omniq-trio migrate --dsn postgresql://app@db/app\n",
        store,
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in _SETTINGS_FLAGS
        if getattr(args, name, None) is not None
    }
    if "imports" in overrides:
        overrides["imports"] = tuple(
            m.strip() for flag in overrides["imports"] for m in flag.split(",") if m.strip()
        )
    if "dsn" in overrides and "backend" not in overrides:
        overrides["backend"] = "postgres"
    settings = Settings.from_env(**overrides)
    if settings.backend == "memory":
        raise CliError("the memory backend lives inside one process; use file or postgres", 2)
    return settings


def _sole(exc: BaseException) -> BaseException:
    """The one exception inside nested single-exception groups (trio's strict groups)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``omniq-trio`` command line; returns the exit code."""
    args = _parser().parse_args(argv)
    prog = f"omniq-trio {args.command}"
    try:
        return COMMANDS[args.command](args, _settings(args))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        error = _sole(exc)
        if isinstance(error, CliError):
            code = error.code
        elif isinstance(error, StoreUnavailableError):
            code = EX_TEMPFAIL
        elif isinstance(error, _USAGE_ERRORS):
            code = 2
        elif isinstance(error, OmniQError | OSError):
            code = 1
        else:
            raise  # a bug: the traceback is what we need
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        return code
