"""Every ``omniq-trio`` command, one entry each: what runs it, its help, its options.

To add a command, write its function (``def name(args, settings) -> int``,
in :mod:`._commands` or a module of its own) and add a :class:`Command` here.
An option marked ``setting=True`` is the Settings field of its name, so it
also has an ``OMNIQ_*`` twin; say so in its help and in docs/reference/cli.md.
"""

from __future__ import annotations

from typing import Final

from ..models import TaskStatus
from . import _commands as run
from . import _monitor as monitor
from . import _queues as queues
from ._spec import Command, ExtendCommaSeparated, Option, option

__all__ = ["COMMANDS", "DESCRIPTION", "EPILOG", "SHARED"]

DESCRIPTION: Final = "Run omniq_trio workers and look after the task queue."

EPILOG: Final = """\
examples:
  omniq-trio worker --base-dir ./omniq_data --concurrency 4 --import app.tasks
  omniq-trio enqueue app.tasks:send_email '["ada@example.com"]' --delay 60
  omniq-trio status --watch
  omniq-trio inspect 3f2a9c0e...

Options have OMNIQ_* twins (OMNIQ_BASE_DIR, OMNIQ_DSN, OMNIQ_CONCURRENCY, ...);
a flag wins over its variable. Exit codes: 0 done, 1 failed (unknown task, no
journal, store error), 2 bad command line or settings, 75 worker stopped: its
store stayed unavailable (restart it), 130 interrupted.
"""

#: Option groups every command takes.
SHARED: Final = (
    (
        "store (default: the file journal in ./omniq_data)",
        (
            option(
                "--backend",
                setting=True,
                choices=["file", "postgres"],
                help="where tasks live (OMNIQ_BACKEND)",
            ),
            option(
                "--base-dir",
                setting=True,
                metavar="DIR",
                help="directory of the file journal (OMNIQ_BASE_DIR)",
            ),
            option(
                "--dsn",
                setting=True,
                help="PostgreSQL connection string; implies --backend postgres (OMNIQ_DSN)",
            ),
        ),
    ),
)

_TASK_ID = option("task_id", metavar="TASK_ID")
_EXAMPLE_ID = "3f2a9c0e5b6d4e7f8a9b0c1d2e3f4a5b"

_WORKER_OPTIONS: tuple[Option, ...] = (
    option(
        "--concurrency",
        setting=True,
        type=int,
        metavar="N",
        help="tasks run at once (OMNIQ_CONCURRENCY, default 1)",
    ),
    option(
        "--poll-interval",
        setting=True,
        type=float,
        metavar="S",
        help="seconds between looks for work (OMNIQ_POLL_INTERVAL, default 1)",
    ),
    option(
        "--shutdown-timeout",
        setting=True,
        type=float,
        metavar="S",
        help="seconds running tasks get to finish on Ctrl-C (OMNIQ_SHUTDOWN_TIMEOUT, default 30)",
    ),
    option(
        "--import",
        setting=True,
        dest="imports",
        action=ExtendCommaSeparated,
        metavar="MODULE",
        help="import MODULE first; repeat or comma-separate (OMNIQ_IMPORTS)",
    ),
    option(
        "--queue",
        setting=True,
        dest="queues",
        action=ExtendCommaSeparated,
        metavar="NAME[=CAP]",
        help="claim only from queue NAME (at most CAP of its tasks at once); repeat or "
        "comma-separate (OMNIQ_QUEUES, default: every queue)",
    ),
    option(
        "--log-level",
        setting=True,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        type=str.upper,
        help="(OMNIQ_LOG_LEVEL, default INFO)",
    ),
    option(
        "--metrics-port",
        setting=True,
        type=int,
        metavar="PORT",
        help="serve this worker's Prometheus metrics at http://HOST:PORT/metrics "
        "(0: a free port, logged; OMNIQ_METRICS_PORT)",
    ),
    option(
        "--metrics-host",
        setting=True,
        metavar="HOST",
        help="address the metrics listen on (OMNIQ_METRICS_HOST, default 127.0.0.1)",
    ),
)

_ENQUEUE_OPTIONS: tuple[Option, ...] = (
    option("func", metavar="module:function"),
    option("args", nargs="?", metavar="ARGS", help="positional arguments as a JSON array"),
    option("--kwargs", metavar="JSON", help="keyword arguments as a JSON object"),
    option("--delay", type=float, metavar="S", help="run no sooner than S seconds from now"),
    option(
        "--max-retries",
        type=int,
        metavar="N",
        help="retries after a failure (OMNIQ_DEFAULT_MAX_RETRIES)",
    ),
    option("--priority", type=int, default=0, metavar="N", help="higher runs first (default 0)"),
    option("--queue", metavar="NAME", help='the queue it waits in (default "default")'),
    option(
        "--unique-key",
        metavar="KEY",
        help="enqueue nothing while a task with KEY has not finished (its id is printed)",
    ),
    option(
        "--unique-for",
        type=float,
        metavar="S",
        help="with --unique-key: nor while one finished less than S seconds ago",
    ),
)

_QUEUE_NAME = option("name", metavar="NAME")

_DASHBOARD_OPTIONS: tuple[Option, ...] = (
    option("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"),
    option(
        "--port", type=int, default=8765, metavar="N", help="port (default 8765; 0: any free one)"
    ),
    option(
        "--token",
        metavar="T",
        help="the token requests must carry (OMNIQ_DASHBOARD_TOKEN; default: a random one)",
    ),
    option("--no-token", action="store_true", help="no token at all (only on a loopback --host)"),
    option("--read-only", action="store_true", help="hide and refuse every action"),
    option(
        "--allow-host",
        dest="allowed_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this Host header (a reverse proxy's name); repeatable",
    ),
)

COMMANDS: Final = (
    Command(
        "worker",
        run.worker,
        "Run a worker until Ctrl-C or SIGTERM (once: finish running tasks; twice: stop now).",
        (
            "omniq-trio worker --import app.tasks --concurrency 4",
            "OMNIQ_DSN=postgresql://app@db/app omniq-trio worker --import app.tasks",
        ),
        _WORKER_OPTIONS,
        notes="The current directory is importable, as with `python -m`.",
    ),
    Command(
        "enqueue",
        run.enqueue,
        "Enqueue module:function(*ARGS, **KWARGS) and print the task id.",
        (
            "omniq-trio enqueue app.tasks:add '[2, 3]'",
            'omniq-trio enqueue app.tasks:send_email --kwargs \'{"to": "ada@example.com"}\' \\\n'
            "      --delay 60 --max-retries 3",
        ),
        _ENQUEUE_OPTIONS,
        notes="The module is not imported; a warning says when it cannot be found here.",
    ),
    Command(
        "status",
        run.status,
        "Show how many tasks are in each state, and how long the oldest has waited.",
        (
            "omniq-trio status",
            "omniq-trio status --watch 5",
            "omniq-trio status --json | jq .counts.failed",
        ),
        (
            option(
                "--watch",
                type=float,
                nargs="?",
                const=2.0,
                metavar="S",
                help="refresh every S seconds (default 2) until Ctrl-C",
            ),
            option("--json", action="store_true", help="one JSON object (a line per refresh)"),
        ),
    ),
    Command(
        "list",
        run.list_,
        "List tasks, oldest first.",
        ("omniq-trio list --status failed", "omniq-trio list --limit 0 --json"),
        (
            option(
                "--status", choices=[s.value for s in TaskStatus], help="only tasks in this state"
            ),
            option(
                "--limit",
                type=int,
                default=100,
                metavar="N",
                help="at most N tasks (default 100; 0: all)",
            ),
            option("--json", action="store_true", help="a JSON array of tasks"),
        ),
    ),
    Command(
        "inspect",
        run.inspect,
        "Show one task: call, state, runs, times, error with traceback, result.",
        (f"omniq-trio inspect {_EXAMPLE_ID}",),
        (_TASK_ID, option("--json", action="store_true", help="the task and its result as JSON")),
    ),
    Command(
        "cancel",
        run.cancel,
        "Cancel a task that has not finished (a running one is interrupted, its outcome dropped).",
        (f"omniq-trio cancel {_EXAMPLE_ID}",),
        (_TASK_ID,),
    ),
    Command(
        "retry",
        run.retry,
        "Run a failed task again (or every one, --failed), with fresh retry budgets.",
        (
            f"omniq-trio retry {_EXAMPLE_ID}",
            "omniq-trio retry --failed",
            "omniq-trio retry --failed --func app.tasks:send_email",
        ),
        (
            option("task_id", nargs="?", metavar="TASK_ID"),
            option("--failed", action="store_true", help="every failed task instead of one"),
            option(
                "--func",
                metavar="module:function",
                help="with --failed: only the failed tasks of this function",
            ),
        ),
    ),
    Command(
        "purge",
        run.purge,
        "Forget finished tasks (and their results) that finished long enough ago.",
        (
            "omniq-trio purge --older-than 7d",
            "omniq-trio purge --older-than 90s --include-failed",
        ),
        (
            option("--older-than", required=True, metavar="DURATION", help="e.g. 90s, 15m, 2h, 7d"),
            option(
                "--include-failed",
                action="store_true",
                help="failed tasks too (kept for OMNIQ_FAILED_TTL, default 7d, otherwise)",
            ),
        ),
    ),
    Command(
        "compact",
        run.compact,
        "Rewrite the file journal as its live tasks only (workers may keep running).",
        ("omniq-trio compact --base-dir ./omniq_data",),
    ),
    Command(
        "repair",
        run.repair,
        "Cut a damaged journal back to its last intact record (the cut bytes are kept aside).",
        ("omniq-trio repair --dry-run", "omniq-trio repair --base-dir ./omniq_data"),
        (option("--dry-run", action="store_true", help="only say what would be cut"),),
    ),
    Command(
        "queues",
        queues.list_queues,
        "List the queues (counts, paused, rate limit), or pause, resume or limit one.",
        (
            "omniq-trio queues",
            "omniq-trio queues pause emails",
            "omniq-trio queues limit api --max 10 --per 1s",
        ),
        (option("--json", action="store_true", help="a JSON array of queues"),),
        subcommands=(
            Command(
                "pause",
                queues.pause,
                "Stop every worker claiming the queue's tasks (running ones finish).",
                ("omniq-trio queues pause emails",),
                (_QUEUE_NAME,),
            ),
            Command(
                "resume",
                queues.resume,
                "Let workers claim the queue's tasks again.",
                ("omniq-trio queues resume emails",),
                (_QUEUE_NAME,),
            ),
            Command(
                "limit",
                queues.limit,
                "Start at most --max tasks of the queue per --per seconds, or --clear.",
                (
                    "omniq-trio queues limit api --max 10 --per 1s",
                    "omniq-trio queues limit api --clear",
                ),
                (
                    _QUEUE_NAME,
                    option("--max", type=int, metavar="N", help="starts allowed per window"),
                    option("--per", metavar="DURATION", help="the window: 1s, 30s, 1m, 1h"),
                    option("--clear", action="store_true", help="remove the queue's limit"),
                ),
            ),
        ),
        notes="Pauses and limits are stored: every worker of every process obeys them.",
    ),
    Command(
        "schedules",
        queues.schedules,
        "List the cron schedules worker pools run, with their last and next slots.",
        ("omniq-trio schedules", "omniq-trio schedules --json | jq '.[].next_slot'"),
        (option("--json", action="store_true", help="a JSON array of schedules"),),
    ),
    Command(
        "dashboard",
        run.dashboard,
        "Serve the web dashboard: counts, throughput, tasks, workers; cancel, retry, purge.",
        (
            "omniq-trio dashboard --base-dir ./omniq_data",
            "omniq-trio dashboard --dsn postgresql://app@db/app --read-only",
        ),
        _DASHBOARD_OPTIONS,
        notes="It prints the address to open, with its token; Ctrl-C stops it.",
    ),
    Command(
        "workers",
        monitor.workers,
        "List the live worker pools (every process, every host): what each runs, since when.",
        ("omniq-trio workers", "omniq-trio workers --json | jq '.[].running'"),
        (
            option("--json", action="store_true", help="a JSON array of workers"),
            option(
                "--running",
                action="store_true",
                help="also list each running task's id, by worker",
            ),
        ),
    ),
    Command(
        "metrics",
        monitor.metrics,
        "Serve the store's Prometheus gauges (queue depths, oldest wait, live workers).",
        (
            "omniq-trio metrics --port 9808",
            "omniq-trio metrics --dsn postgresql://app@db/app --host 0.0.0.0 --port 9808",
        ),
        (
            option(
                "--port",
                type=int,
                default=9808,
                metavar="PORT",
                help="port of http://HOST:PORT/metrics (default 9808; 0: a free one)",
            ),
            option("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"),
        ),
    ),
    Command(
        "migrate",
        run.migrate,
        "Create or upgrade the PostgreSQL schema (nothing to do for the file journal).",
        ("omniq-trio migrate --dsn postgresql://app@db/app",),
    ),
)
