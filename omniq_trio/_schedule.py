"""``Schedule``: run a function on a cron schedule, once per slot across every worker pool."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, get_args

import attrs

from ._call import Call, build_task
from ._codec import Codec
from ._cron import CronExpression
from ._functions import func_path
from ._registry import prepare_call
from ._validate import check_int, check_queue_name, check_seconds, to_tuple
from .config import Settings
from .errors import ScheduleError
from .models import DEFAULT_QUEUE, ScheduleInfo, Task

__all__ = ["CatchUp", "Schedule", "check_schedules", "schedules_in"]

#: What a pool does at start with slots that passed while no pool ran the
#: schedule: ``"latest"`` runs once for the latest of them, ``"all"`` runs each
#: (oldest first, at most :data:`MAX_CATCH_UP`), ``"none"`` skips them.
CatchUp = Literal["latest", "all", "none"]

#: Most missed slots ``catch_up="all"`` runs (the latest ones); the rest are skipped.
MAX_CATCH_UP: Final = 1_000
#: Longest schedule name, in characters.
MAX_NAME: Final = 200


def _name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ScheduleError(
            f"schedule name must be a non-empty string of at most {MAX_NAME} characters, "
            f"got {value!r}"
        )
    return value


def _kwargs(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ScheduleError(f"schedule kwargs must be a mapping with string keys, got {value!r}")
    return dict(value)


def _args(value: object) -> tuple[Any, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ScheduleError(f"schedule args must be a tuple or list, got {value!r}")
    return to_tuple(value)


def _catch_up(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    choices = get_args(CatchUp)
    if value not in choices:
        raise ScheduleError(
            f"catch_up must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )


def _optional_seconds(value: object) -> float | None:
    if value is None:
        return None
    return check_seconds(value, name="schedule timeout", error=ScheduleError, allow_zero=False)


def _optional_retries(value: object) -> int | None:
    if value is None:
        return None
    return check_int(value, name="schedule max_retries", error=ScheduleError, minimum=0)


@attrs.frozen(eq=False)
class Schedule:
    """Run ``func(*args, **kwargs)`` at every slot of a cron expression.

    ``Schedule(send_report, cron="0 8 * * MON-FRI", timezone="Europe/Berlin")``.
    ``cron`` is five fields (minute hour day-of-month month day-of-week) or
    ``@yearly``, ``@monthly``, ``@weekly``, ``@daily``, ``@hourly``; its wall
    times are in ``timezone`` (a time the clocks skip is not a slot, a time
    they repeat is one slot). A function object is registered (this
    process's workers may run it). Give schedules to a pool
    (``omniq.worker(schedules=[...])``), or define them at module level in a
    module of ``Settings.imports`` for ``serve`` and ``omniq-trio worker``.
    Each slot is enqueued once however many pools run the schedule: they share
    its ``name`` (default: the function's path and the expression), and the
    store records the last slot fired. ``catch_up`` says what a pool starting
    after slots passed unfired does (see :data:`CatchUp`). ``queue``,
    ``priority``, ``max_retries`` and ``timeout`` apply to each run's task.
    A bad value raises :class:`~omniq_trio.errors.ScheduleError` naming it.
    """

    func: Callable[..., Any] | str
    cron: str
    args: tuple[Any, ...] = attrs.field(default=(), converter=_args, kw_only=True)
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=_kwargs, kw_only=True)
    _given_name: str | None = attrs.field(default=None, converter=_name, kw_only=True, alias="name")
    timezone: str = attrs.field(default="UTC", kw_only=True)
    #: ``None``: the function's ``@omniq_trio.task(queue=...)``, else ``"default"``
    #: (so too for the options below: the task's defaults, then Settings).
    queue: str | None = attrs.field(default=None, kw_only=True)
    priority: int | None = attrs.field(default=None, kw_only=True)
    max_retries: int | None = attrs.field(default=None, converter=_optional_retries, kw_only=True)
    timeout: float | None = attrs.field(default=None, converter=_optional_seconds, kw_only=True)
    retry_on_timeout: bool | None = attrs.field(default=None, kw_only=True)
    catch_up: CatchUp = attrs.field(default="latest", validator=_catch_up, kw_only=True)
    _path: str = attrs.field(init=False)
    _expression: CronExpression = attrs.field(init=False)
    #: each run's call but for its eta, with the function's @task defaults applied
    _call: Call = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_path", func_path(self.func))
        expression = CronExpression.parse(self.cron, self.timezone)
        object.__setattr__(self, "_expression", expression)
        object.__setattr__(self, "timezone", expression.timezone)
        if self.queue is not None:
            check_queue_name(self.queue, error=ScheduleError, name="schedule queue")
        if self.priority is not None:
            check_int(self.priority, name="schedule priority", error=ScheduleError)
        if self.retry_on_timeout not in (None, True, False):
            raise ScheduleError(
                f"schedule retry_on_timeout must be True or False, got {self.retry_on_timeout!r}"
            )
        call = Call(
            self.func,
            self.args,
            self.kwargs,
            queue=self.queue,
            priority=self.priority,
            max_retries=self.max_retries,
            timeout=self.timeout,
            retry_on_timeout=self.retry_on_timeout,
        )
        # registers a function object, so that this process's workers run it
        object.__setattr__(self, "_call", prepare_call(call))

    @property
    def name(self) -> str:
        """Unique per store: pools running a schedule of this name share its slots."""
        return self._given_name or f"{self._path} {self.cron}"

    @property
    def func_path(self) -> str:
        """The ``"module:qualname"`` each run's task names."""
        return self._path

    @property
    def expression(self) -> CronExpression:
        """The checked cron expression, with its timezone."""
        return self._expression

    def next_slot(self, after: float | dt.datetime) -> float:
        """The first slot strictly after ``after`` (an aware datetime or epoch seconds),
        as seconds since the epoch: ``schedule.next_slot(omniq.clock.now())``."""
        if isinstance(after, dt.datetime):
            if after.tzinfo is None:
                raise ScheduleError(f"after must be an aware datetime, got naive {after!r}")
            return self._expression.next_after(after.timestamp())
        return self._expression.next_after(float(after))

    @property
    def task_queue(self) -> str:
        """The queue each run's task goes to."""
        return self._call.queue or DEFAULT_QUEUE

    def task_for(self, slot: float, *, settings: Settings, codec: Codec, now: float) -> Task:
        """The task that runs slot ``slot`` (due at it)."""
        call = attrs.evolve(self._call, eta=slot)
        return build_task(call, settings=settings, codec=codec, now=now)

    def info(self, *, next_slot: float | None, now: float) -> ScheduleInfo:
        """How the store records it (``omniq-trio schedules``)."""
        return ScheduleInfo(
            name=self.name,
            func=self._path,
            cron=self.cron,
            timezone=self.timezone,
            queue=self.task_queue,
            next_slot=next_slot,
            updated_at=now,
        )

    def _definition(self) -> tuple[Any, ...]:
        return (
            self._path,
            self._expression.fields,
            self.timezone,
            self.args,
            dict(self.kwargs),
            self.queue,
            self.priority,
            self.max_retries,
            self.timeout,
            self.retry_on_timeout,
            self.catch_up,
        )


def check_schedules(schedules: object) -> tuple[Schedule, ...]:
    """A pool's schedules: each a :class:`Schedule`, names unique (the same
    definition given twice counts once)."""
    if isinstance(schedules, Schedule) or not isinstance(schedules, Iterable):
        raise ScheduleError(f"schedules must be a list of Schedule, got {schedules!r}")
    by_name: dict[str, Schedule] = {}
    for schedule in schedules:
        if not isinstance(schedule, Schedule):
            raise ScheduleError(f"schedules must be Schedule objects, got {schedule!r}")
        seen = by_name.get(schedule.name)
        if seen is None:
            by_name[schedule.name] = schedule
        elif seen._definition() != schedule._definition():
            raise ScheduleError(
                f"two different schedules are named {schedule.name!r}; give one a name= of "
                "its own (pools sharing a name share its slots)"
            )
    return tuple(by_name.values())


def schedules_in(modules: Iterable[str]) -> tuple[Schedule, ...]:
    """Every :class:`Schedule` bound to a module-level name of ``modules``, in order."""
    found: list[Schedule] = []
    for name in modules:
        module = sys.modules.get(name) or importlib.import_module(name)
        found.extend(value for value in vars(module).values() if isinstance(value, Schedule))
    return check_schedules(found)
