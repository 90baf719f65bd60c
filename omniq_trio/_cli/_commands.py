"""What each ``omniq-trio`` command does, as thin calls into the library.

Each command takes the parsed arguments and the :class:`Settings` built from
the ``OMNIQ_*`` variables and the flags, prints its answer on stdout and
returns the exit code; a user's mistake raises :class:`CliError`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from .._call import Call
from .._client import AsyncOmniQ
from .._clock import DEFAULT_CLOCK
from .._functions import func_path
from .._serve import run_worker
from ..config import Settings
from ..models import TaskStatus
from ..store import JournalStore, journal_exists, repair_journal
from ._text import age, date, parse_duration, percent, table, to_json

__all__ = [
    "CliError",
    "cancel",
    "compact",
    "dashboard",
    "enqueue",
    "inspect",
    "list_",
    "migrate",
    "purge",
    "repair",
    "retry",
    "status",
    "worker",
]

T = TypeVar("T")


class CliError(Exception):
    """A mistake to report as one line, with exit code ``code`` (1: runtime, 2: usage)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _client(settings: Settings, use: Callable[[AsyncOmniQ], Awaitable[T]]) -> T:
    """Open the store, ``await use(omniq)``, close the store."""
    try:
        omniq = AsyncOmniQ(settings)
    except ImportError as exc:
        raise CliError(f"the {settings.backend} backend is not available here: {exc}") from None

    async def run() -> T:
        async with omniq:
            return await use(omniq)

    return trio.run(run)


def _require_store(settings: Settings) -> None:
    """Refuse to create a journal as a side effect of a command that only looks at one."""
    if settings.backend != "file":
        return
    base_dir = settings.base_dir
    if not journal_exists(base_dir):
        raise CliError(
            f"no journal in {base_dir} (nothing was ever enqueued there); "
            "check --base-dir or OMNIQ_BASE_DIR"
        )


def _require_journal(settings: Settings, command: str) -> None:
    if settings.backend != "file":
        raise CliError(
            f"{command} works on the file journal, not the {settings.backend} backend", 2
        )
    _require_store(settings)


def _import_from_cwd() -> None:
    # as `python -m` does: the project the command is run from is importable
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _json_arg(text: str | None, name: str, kind: type[Any], example: str) -> Any:
    if text is None:
        return kind()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{name} is not valid JSON ({exc}); e.g. {example}", 2) from None
    if not isinstance(value, kind):
        what = "array" if kind is list else "object"
        raise CliError(f"{name} must be a JSON {what}, e.g. {example}; got {text}", 2)
    return value


# ---------------------------------------------------------------------- commands


def worker(args: argparse.Namespace, settings: Settings) -> int:
    _import_from_cwd()  # the pool imports settings.imports (TaskModuleImportError: exit 1)
    trio.run(run_worker, settings)  # StoreUnavailableError: exit status 75 (main)
    return 0


def enqueue(args: argparse.Namespace, settings: Settings) -> int:
    path = func_path(args.func)  # a malformed path: FunctionImportError, a usage error
    call_args = _json_arg(args.args, "ARGS", list, "'[1, \"two\"]'")
    call_kwargs = _json_arg(args.kwargs, "--kwargs", dict, "'{\"retries\": 3}'")
    _import_from_cwd()
    module = path.partition(":")[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except Exception:  # a parent package that fails to import, say
        found = False
    if not found:
        print(
            f"omniq-trio enqueue: warning: module {module!r} cannot be found here; "
            "enqueued anyway (a worker that imports it, --import, runs it)",
            file=sys.stderr,
        )
    call = Call(
        path,
        call_args,
        call_kwargs,
        delay=args.delay,
        max_retries=args.max_retries,
        priority=args.priority,
        queue=args.queue,
        unique_key=args.unique_key,
        unique_for=args.unique_for,
    )
    (enqueued,) = _client(settings, lambda omniq: omniq.enqueue_calls([call]))
    if not enqueued.created:
        print(
            f"omniq-trio enqueue: task {enqueued.id} holds unique key {args.unique_key!r}; "
            "nothing new was enqueued",
            file=sys.stderr,
        )
    print(enqueued.id)
    return 0


def status(args: argparse.Namespace, settings: Settings) -> int:
    _require_store(settings)

    async def show(omniq: AsyncOmniQ) -> None:
        while True:
            stats = await omniq.stats()
            now = DEFAULT_CLOCK.now()
            oldest = stats.oldest_due_eta
            if args.json:
                print(
                    json.dumps(
                        {
                            "counts": {s.value: n for s, n in stats.counts.items()},
                            "total": stats.total,
                            "oldest_due_eta": oldest,
                            "oldest_pending_age": None if oldest is None else now - oldest,
                        }
                    ),
                    flush=True,
                )
            else:
                if args.watch is not None and sys.stdout.isatty():
                    print("\033[H\033[J", end="")  # clear the screen: refresh in place
                rows = [[s.value, str(n)] for s, n in stats.counts.items()]
                print(table(["STATUS", "COUNT"], [*rows, ["total", str(stats.total)]], right=1))
                waiting = "none" if oldest is None else f"due {age(now - oldest)} ago"
                print(f"oldest waiting task (due, not started): {waiting}", flush=True)
            if args.watch is None:
                return
            await trio.sleep(args.watch)
            if not args.json and not sys.stdout.isatty():
                print()

    try:
        _client(settings, show)
    except KeyboardInterrupt:
        if args.watch is None:
            raise
    return 0  # Ctrl-C is how --watch ends


def list_(args: argparse.Namespace, settings: Settings) -> int:
    _require_store(settings)
    limit = args.limit or None

    async def read(omniq: AsyncOmniQ) -> tuple[list[Any], int]:
        stats = await omniq.stats()
        total = stats.counts[TaskStatus(args.status)] if args.status else stats.total
        return await omniq.list_tasks(status=args.status, limit=limit), total

    tasks, total = _client(settings, read)
    if args.json:
        print(to_json(tasks))
    else:
        now = DEFAULT_CLOCK.now()
        rows = [
            [
                t.id,
                t.status.value,
                f"{t.attempts}/{t.max_retries + 1}",
                date(t.created_at, now=now).partition(" (")[0],
                percent(t.progress),
                t.func,
            ]
            for t in tasks
        ]
        print(table(["ID", "STATUS", "RUNS", "CREATED", "PROGRESS", "FUNC"], rows))
    if len(tasks) < total:
        print(f"showing {len(tasks)} of {total} tasks; --limit 0 shows all", file=sys.stderr)
    return 0


def inspect(args: argparse.Namespace, settings: Settings) -> int:
    _require_store(settings)

    async def read(omniq: AsyncOmniQ) -> tuple[Any, Any]:
        task = await omniq.get_task(args.task_id)
        return task, await omniq.get_result(args.task_id)

    task, result = _client(settings, read)
    if args.json:
        print(to_json({"task": task, "result": result}))
        return 0
    now = DEFAULT_CLOCK.now()
    lines = [
        ("id", task.id),
        ("func", task.func),
        ("args", json.dumps(list(task.args))),
        ("kwargs", json.dumps(dict(task.kwargs))),
        ("status", task.status.value),
        (
            "runs",
            f"{task.attempts} finished, up to {task.max_retries + 1} (max_retries="
            f"{task.max_retries})",
        ),
        ("priority", str(task.priority)),
        ("created", date(task.created_at, now=now)),
        ("eta", date(task.eta, now=now)),
        ("started", date(task.started_at, now=now)),
        ("finished", date(task.finished_at, now=now)),
    ]
    if task.timeout is not None:
        lines.append(("timeout", f"{task.timeout}s"))
    if task.interval is not None:
        lines.append(("interval", f"{task.interval}s"))
    if task.worker_id:
        lines.append(("worker", f"{task.worker_id}, lease until {date(task.lease_until, now=now)}"))
    if task.progress is not None:
        said = f" {task.progress.message}" if task.progress.message else ""
        when = date(task.progress.updated_at, now=now)
        lines.append(("progress", f"{percent(task.progress)}{said} (reported {when})"))
    if task.lost_runs:
        lines.append(("lost runs", f"{task.lost_runs} (max_lost_runs={task.max_lost_runs})"))
    if result is not None and result.status is TaskStatus.SUCCESS:
        lines.append(("result", json.dumps(result.value, default=repr)))
    error = task.error or (result.error if result is not None else None)
    if error is not None:
        lines.append(("error", str(error)))
    width = max(len(key) for key, _ in lines) + 1
    for key, value in lines:
        print(f"{key + ':':<{width}} {value}")
    if error is not None and error.traceback:
        print("traceback:")
        for line in error.traceback.rstrip().splitlines():
            print(f"  {line}")
    return 0


def cancel(args: argparse.Namespace, settings: Settings) -> int:
    _require_store(settings)

    async def do(omniq: AsyncOmniQ) -> tuple[bool, TaskStatus]:
        cancelled = await omniq.cancel(args.task_id)
        return cancelled, (await omniq.get_task(args.task_id)).status

    cancelled, now_status = _client(settings, do)
    if not cancelled:
        raise CliError(f"task {args.task_id} had already finished ({now_status}); not cancelled")
    print(f"cancelled {args.task_id}")
    return 0


def retry(args: argparse.Namespace, settings: Settings) -> int:
    if args.failed == (args.task_id is not None):
        raise CliError("retry takes a TASK_ID or --failed (every failed task), not both", 2)
    if args.func is not None and not args.failed:
        raise CliError("--func goes with --failed", 2)
    _require_store(settings)
    if args.failed:
        func = None if args.func is None else func_path(args.func)
        count = _client(settings, lambda omniq: omniq.retry_failed(func))
        print(f"{count} failed task(s) pending again")
        return 0

    async def do(omniq: AsyncOmniQ) -> None:
        task = await omniq.get_task(args.task_id)
        if task.status is not TaskStatus.FAILED:
            raise CliError(f"task {task.id} is {task.status}; only failed tasks can be retried")
        await omniq.retry(task.id)

    _client(settings, do)
    print(f"task {args.task_id} is pending again")
    return 0


def purge(args: argparse.Namespace, settings: Settings) -> int:
    try:
        seconds = parse_duration(args.older_than)
    except ValueError as exc:
        raise CliError(f"--older-than: {exc}", 2) from None
    _require_store(settings)
    include_failed = args.include_failed
    purged = _client(settings, lambda omniq: omniq.purge(seconds, include_failed=include_failed))
    kept = "" if include_failed else " (failed ones younger than failed_ttl kept)"
    print(f"purged {purged} task(s) that finished more than {args.older_than} ago{kept}")
    return 0


def compact(args: argparse.Namespace, settings: Settings) -> int:
    _require_journal(settings, "compact")

    async def do(omniq: AsyncOmniQ) -> tuple[int, int]:
        store = omniq.store
        assert isinstance(store, JournalStore)
        before = store.segment_path.stat().st_size
        await store.compact()
        return before, store.segment_path.stat().st_size

    before, after = _client(settings, do)
    print(f"compacted {settings.base_dir}: {before} -> {after} bytes")
    return 0


def repair(args: argparse.Namespace, settings: Settings) -> int:
    _require_journal(settings, "repair")
    print(repair_journal(settings.base_dir, dry_run=args.dry_run))
    return 0


def dashboard(args: argparse.Namespace, settings: Settings) -> int:
    _require_store(settings)
    try:
        from ..dashboard._command import run_dashboard
    except ImportError as exc:
        raise CliError(
            f"the dashboard needs its extra: pip install 'omniq-trio[dashboard]' ({exc})"
        ) from None
    return run_dashboard(
        settings,
        host=args.host,
        port=args.port,
        token=args.token,
        no_token=args.no_token,
        read_only=args.read_only,
        allowed_hosts=args.allowed_hosts,
    )


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend != "postgres":
        print(f"nothing to migrate: the {settings.backend} backend keeps no schema")
        return 0
    _client(settings, lambda omniq: omniq.open())
    print(f"schema {settings.postgres_schema!r} is up to date")
    return 0
