"""``Settings``: every tunable of omniq_trio in one validated, immutable value.

Each field can also be set from the environment as ``OMNIQ_<FIELD NAME IN
CAPITALS>`` through :meth:`Settings.from_env` (``OMNIQ_BACKEND=postgres``,
``OMNIQ_CONCURRENCY=8``, ``OMNIQ_IMPORTS=app.tasks,app.jobs``).
"""

from __future__ import annotations

import logging
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import attrs

from ._validate import (
    check_identifier,
    check_int,
    check_number,
    format_queue_caps,
    parse_queue_caps,
    to_tuple,
)
from .errors import ConfigError

__all__ = ["Settings"]

Backend = Literal["memory", "file", "postgres"]
FsyncPolicy = Literal["always", "interval", "never"]
Serializer = Literal["json", "pickle"]
SyncTasks = Literal["thread", "inline"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

ENV_PREFIX = "OMNIQ_"
#: Bytes in a mebibyte (the default bound of a task's call and of its result).
MiB = 1024 * 1024

_log = logging.getLogger("omniq_trio.config")


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_number(value, name=attribute.name, error=ConfigError, minimum=0)


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_number(value, name=attribute.name, error=ConfigError, minimum=0, exclusive=True)


def _one_of(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    choices = get_args(_resolve(attribute.name))
    if value not in choices:
        raise ConfigError(
            f"{attribute.name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )


def _fraction(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    check_number(value, name=attribute.name, error=ConfigError, minimum=0, maximum=1)


def _identifier(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    check_identifier(value, name=attribute.name, error=ConfigError)


def _int_at_least(minimum: int) -> Callable[[Any, attrs.Attribute[Any], object], None]:
    def validate(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_int(value, name=attribute.name, error=ConfigError, minimum=minimum)

    return validate


def _bool(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{attribute.name} must be True or False, got {value!r}")


def _port(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (
        check_int(value, name=attribute.name, error=ConfigError, minimum=0) > 65_535
    ):
        raise ConfigError(f"{attribute.name} must be a port number (0 to 65535), got {value!r}")


def _host(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{attribute.name} must be a host name or address, got {value!r}")


def _to_path(value: str | os.PathLike[str]) -> Path:
    try:
        return Path(value)
    except TypeError:
        raise ConfigError(f"base_dir must be a path, got {value!r}") from None


def _queues(value: object) -> tuple[str, ...]:
    return format_queue_caps(parse_queue_caps(value, error=ConfigError))


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


@attrs.frozen(kw_only=True)
class Settings:
    """How omniq_trio stores tasks and runs workers.

    All times are in seconds. Invalid values raise
    :class:`~omniq_trio.errors.ConfigError` naming the field.
    """

    #: Where tasks live: ``"file"`` (the journal in ``base_dir``, the default),
    #: ``"postgres"`` (``dsn``) or ``"memory"`` (this process only; for tests).
    backend: Backend = attrs.field(default="file", validator=_one_of)
    #: Directory of the file journal; created (owner-only) when missing.
    base_dir: Path = attrs.field(default=Path("./omniq_data"), converter=_to_path)
    #: PostgreSQL connection string for ``backend="postgres"``.
    dsn: str | None = None
    #: PostgreSQL schema holding omniq_trio's tables.
    postgres_schema: str = attrs.field(default="omniq", validator=_identifier)

    #: Tasks a worker runs at once (``serve`` and the ``worker`` command).
    concurrency: int = attrs.field(default=1, validator=_int_at_least(1))
    #: The queues a worker claims from (empty: every queue), each ``NAME`` or
    #: ``NAME=CAP`` to run at most CAP of its tasks at once:
    #: ``OMNIQ_QUEUES=emails=2,default``. A mapping ``{"emails": 2, "default": None}``
    #: or a list of entries works too.
    queues: tuple[str, ...] = attrs.field(default=(), converter=_queues)
    #: Longest a worker waits before looking for due tasks again.
    poll_interval: float = attrs.field(default=1.0, validator=_positive)
    #: How long a graceful stop lets running tasks finish before cancelling them.
    shutdown_timeout: float = attrs.field(default=30.0, validator=_non_negative)
    #: How long a claim stays valid without renewal; renewed every third of it.
    lease_duration: float = attrs.field(default=30.0, validator=_positive)

    #: How long a worker's store may stay unavailable (failing writes, a lost
    #: connection) before the worker stops: ``run()`` raises
    #: ``StoreUnavailableError`` and ``omniq-trio worker`` exits with status 75,
    #: so that a supervisor restarts it. Shorter failures are waited out.
    store_failure_timeout: float = attrs.field(default=300.0, validator=_positive)

    #: Retries for tasks enqueued without ``max_retries``.
    default_max_retries: int = attrs.field(default=0, validator=_int_at_least(0))
    #: Execution timeout for tasks enqueued without ``timeout`` (``None``: no limit).
    default_timeout: float | None = attrs.field(default=None, validator=_positive)
    #: First retry waits this long; each further retry doubles it ...
    retry_backoff: float = attrs.field(default=1.0, validator=_non_negative)
    #: ... up to this cap.
    retry_backoff_max: float = attrs.field(default=300.0, validator=_non_negative)
    #: Each wait is shortened by a random fraction up to this, so that retries
    #: of tasks that failed together spread out.
    retry_jitter: float = attrs.field(default=0.1, validator=_fraction)

    #: How long finished tasks and their results are kept. The file journal
    #: keeps an index entry for each (about 300 bytes; the results stay on
    #: disk), so at 100 tasks/s an hour costs ~110 MB per process.
    result_ttl: float = attrs.field(default=3_600.0, validator=_positive)
    #: How long FAILED tasks are kept (the evidence of a failure should outlive
    #: the successes around it): 7 days.
    failed_ttl: float = attrs.field(default=7 * 86_400.0, validator=_positive)
    #: Runs of a task that may be lost to dead workers (a crash, an OOM kill)
    #: before it ends FAILED, for tasks enqueued without ``max_lost_runs``.
    #: Separate from ``default_max_retries``: a lost run is not a failure.
    max_lost_runs: int = attrs.field(default=3, validator=_int_at_least(0))

    #: When journal writes reach the disk before they are acknowledged:
    #: ``"always"`` (each acknowledged change survives a power cut), ``"interval"``
    #: (at most ``fsync_interval`` of acknowledged changes can be lost to an OS
    #: crash; none to a process crash), ``"never"`` (left to the OS).
    fsync: FsyncPolicy = attrs.field(default="always", validator=_one_of)
    fsync_interval: float = attrs.field(default=0.05, validator=_positive)
    #: Compact the journal when dead records make up this fraction of it (0.5:
    #: the journal is rewritten when it has grown to twice its live state, so
    #: compaction costs at most one extra write per record) ...
    compact_threshold: float = attrs.field(default=0.5, validator=_fraction)
    #: ... and it has at least this many records.
    compact_min_records: int = attrs.field(default=10_000, validator=_int_at_least(0))

    #: How arguments and results are encoded: ``"json"`` (portable, the default)
    #: or ``"pickle"`` (any picklable object; only with trusted producers).
    serializer: Serializer = attrs.field(default="json", validator=_one_of)
    #: Where sync (non-async) task functions run: ``"thread"`` (a worker
    #: thread, the default) or ``"inline"`` (on the trio thread, blocking it
    #: while they run). Use ``"inline"`` in tests under trio's MockClock with
    #: autojump, which would otherwise advance virtual time while a thread runs.
    sync_tasks: SyncTasks = attrs.field(default="thread", validator=_one_of)
    #: Modules a worker imports at start, so their tasks are registered: their
    #: ``@omniq_trio.task`` functions, and every function defined at module level
    #: in them. A worker runs no other function unless ``enqueue`` was given it
    #: as a function object in the worker's own process.
    imports: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    #: Run tasks whose function is not registered, importing whatever a task
    #: names (anyone who can write a task can then run any function on the
    #: workers). Off by default; a worker that has it on warns at start.
    allow_unregistered_tasks: bool = attrs.field(default=False, validator=_bool)
    #: Largest stored call, in bytes (function path and arguments as stored:
    #: JSON, or base64 pickle): ``enqueue`` raises ``TaskTooLargeError`` beyond
    #: it, and a worker refuses, undecoded, a task beyond it written by other means.
    max_task_bytes: int = attrs.field(default=MiB, validator=_int_at_least(1))
    #: Largest stored return value, in bytes; a run that returns more fails
    #: with ``ResultTooLargeError`` (the value is not stored).
    max_result_bytes: int = attrs.field(default=MiB, validator=_int_at_least(1))
    #: Level of the ``omniq_trio`` logger.
    log_level: LogLevel = attrs.field(default="INFO", converter=_upper, validator=_one_of)
    #: Serve the worker's Prometheus metrics on this port (``omniq-trio worker``,
    #: ``serve``; 0: any free port, logged); ``None``: no metrics. Needs the
    #: ``metrics`` extra.
    metrics_port: int | None = attrs.field(default=None, validator=_port)
    #: The address the metrics are served on: loopback unless you open it up.
    metrics_host: str = attrs.field(default="127.0.0.1", validator=_host)
    #: Make OpenTelemetry spans of enqueues and runs, and carry the trace context
    #: inside tasks. Needs the ``otel`` extra.
    tracing: bool = attrs.field(default=False, validator=_bool)

    def __attrs_post_init__(self) -> None:
        if self.backend == "postgres" and not self.dsn:
            raise ConfigError(
                "backend='postgres' needs a dsn, e.g. Settings(backend='postgres', "
                "dsn='postgresql://user@host/db') or OMNIQ_DSN"
            )

    def evolve(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (and validated)."""
        return attrs.evolve(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``OMNIQ_*`` variables, then ``overrides``, then defaults.

        A DSN with no backend beside it selects ``"postgres"``: ``OMNIQ_DSN``
        without ``OMNIQ_BACKEND``, or ``dsn=`` without ``backend=`` (which then
        also wins over ``OMNIQ_BACKEND``, as every override does).

        Raises :class:`~omniq_trio.errors.ConfigError` naming the variable when
        one cannot be parsed, and for an ``OMNIQ_*`` name that is a likely typo
        of a setting (``OMNIQ_CONCURENCY``), naming the setting meant. Any other
        ``OMNIQ_*`` name may belong to another tool: it is logged as a warning
        and ignored.
        """
        environ = os.environ if environ is None else environ
        fields = {f.name: f for f in attrs.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in environ.items():
            name = _setting_name(key, fields)
            if name is not None:
                values[name] = _check_env(
                    key, raw, fields[name], _parse_env(key, raw, _resolve(name))
                )
        return cls(**{**_dsn_selects_postgres(values), **_dsn_selects_postgres(overrides)})


def _dsn_selects_postgres(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """``values`` with ``backend="postgres"`` added when they give a DSN but no backend."""
    if values.get("dsn") and "backend" not in values:
        return {**values, "backend": "postgres"}
    return values


# OMNIQ_* variables that belong to other tools (tests, benchmarks), not to Settings.
_NOT_SETTINGS = frozenset({"test_postgres_dsn", "dashboard_token"})


def _setting_name(key: str, fields: Mapping[str, attrs.Attribute[Any]]) -> str | None:
    """The Settings field variable ``key`` sets, or ``None`` when it sets none."""
    if not key.startswith(ENV_PREFIX):
        return None
    name = key[len(ENV_PREFIX) :].lower()
    if name in fields:
        return name
    if name in _NOT_SETTINGS:
        return None
    meant = [field for field in fields if _edit_distance(name, field) <= _typo_distance(field)]
    if meant:
        raise ConfigError(
            f"{key} is not an omniq_trio setting; did you mean "
            + " or ".join(ENV_PREFIX + n.upper() for n in meant)
            + "?"
        )
    _log.warning("%s is not an omniq_trio setting; ignored", key)
    return None


def _typo_distance(name: str) -> int:
    """Edits that still make a likely typo of ``name``: 1 for short names, else 2."""
    return 1 if len(name) <= 4 else 2


def _edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours that turn ``a`` into ``b``."""
    # optimal string alignment: Levenshtein plus adjacent transpositions
    previous: list[int] = []
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        before, previous, row = previous, row, [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], before[j - 2] + 1)
    return row[-1]


def _resolve(name: str) -> Any:
    return typing.get_type_hints(Settings)[name]


def _check_env(key: str, raw: str, field: attrs.Attribute[Any], value: Any) -> Any:
    """Run the field's own converter and validator on one variable's value, so that
    an error names the variable the user has to fix, not just the field."""
    try:
        if field.converter is not None:
            value = field.converter(value)  # type: ignore[operator]
        if field.validator is not None:
            field.validator(None, field, value)
    except ConfigError as exc:
        raise ConfigError(f"{key}={raw!r}: {exc}") from None
    return value


def _parse_env(key: str, raw: str, hint: Any) -> Any:
    """Parse one variable by the type of its field."""
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw.strip().lower() in ("", "none", "null"):
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = get_origin(hint), get_args(hint)
    try:
        if origin is Literal:
            return raw.strip().upper() if key == "OMNIQ_LOG_LEVEL" else raw.strip().lower()
        if hint is bool:
            return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}[
                raw.strip().lower()
            ]
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is Path:
            return Path(raw)
        if origin is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except (KeyError, ValueError):
        raise ConfigError(
            f"{key}={raw!r} is not a valid {getattr(hint, '__name__', hint)}"
        ) from None
