"""Cron expressions on the wall clock of a timezone: when each slot of a schedule falls.

The expression is matched by `cronsim <https://pypi.org/project/cronsim/>`_
(the ``cron`` extra) against *local wall times*, which are then placed on the
timeline of the schedule's timezone by the one rule of this module:

* a wall time that does not exist (the clocks spring forward over it) is
  skipped: ``30 2 * * *`` in Europe/Berlin does not run on the last Sunday of
  March;
* a wall time that happens twice (the clocks fall back over it) is a slot
  once, at its first occurrence: ``0 2 * * *`` runs once on the last Sunday of
  October, and ``*/15 * * * *`` does not repeat 02:00-02:45 in the second pass.

Slots are seconds since the epoch, on exact minutes; they only increase.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import Any, Final

import attrs

from .errors import ScheduleError

__all__ = ["ALIASES", "CronExpression"]

#: The ``@`` shorthands and the five fields each stands for.
ALIASES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

#: Wall times looked at before giving up on finding a slot that exists (an
#: expression can match only times the zone skips: 02:30 on the day of a
#: spring-forward and nothing else, for one).
_MAX_CANDIDATES: Final = 100_000
#: Local wall time differs from the time of one UTC offset by at most this
#: around a transition (real-world shifts are 1 h, Lord Howe's 30 min).
_FOLD_MARGIN: Final = dt.timedelta(hours=3)


def _cronsim() -> Any:
    try:
        import cronsim
    except ImportError:
        raise ScheduleError(
            "cron schedules need the cronsim package: pip install 'omniq-trio[cron]'"
        ) from None
    return cronsim


def _zone(name: object) -> zoneinfo.ZoneInfo:
    if isinstance(name, zoneinfo.ZoneInfo):
        return name
    if not isinstance(name, str) or not name:
        raise ScheduleError(
            f"timezone must be an IANA zone name like 'Europe/Berlin', got {name!r}"
        )
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown timezone {name!r}; use an IANA zone name like 'UTC' or 'Europe/Berlin' "
            "(pip install tzdata where the system has no zone database)"
        ) from None


@attrs.frozen
class CronExpression:
    """A checked cron expression and the timezone its wall times are in."""

    #: As given (``"*/5 * * * *"``, ``"@daily"``).
    text: str
    #: The five fields it stands for.
    fields: str
    zone: zoneinfo.ZoneInfo

    @classmethod
    def parse(cls, text: object, timezone: object = "UTC") -> CronExpression:
        """Check ``text`` (five fields or an ``@`` shorthand) and ``timezone``; raises
        :class:`~omniq_trio.errors.ScheduleError` naming the value that is wrong."""
        zone = _zone(timezone)
        if not isinstance(text, str):
            raise ScheduleError(f"cron must be a string like '*/5 * * * *', got {text!r}")
        stripped = " ".join(text.split())
        fields = ALIASES.get(stripped.lower(), stripped)
        if len(fields.split(" ")) != 5:
            raise ScheduleError(
                f"cron expression {text!r} must have five fields (minute hour day-of-month "
                f"month day-of-week) or be one of {', '.join(ALIASES)}"
            )
        cronsim = _cronsim()
        try:
            cronsim.CronSim(fields, dt.datetime(2000, 1, 1))
        except cronsim.CronSimError as exc:
            raise ScheduleError(f"bad cron expression {text!r}: {exc}") from None
        expression = cls(text, fields, zone)
        expression.next_after(0.0)  # one that never matches an existing time is an error
        return expression

    @property
    def timezone(self) -> str:
        """The zone's IANA name."""
        return self.zone.key

    def describe(self) -> str:
        """In words: ``"Every fifth minute of every hour"``."""
        text: str = _cronsim().CronSim(self.fields, dt.datetime(2000, 1, 1)).explain()
        return text

    def next_after(self, when: float) -> float:
        """The first slot strictly after ``when`` (seconds since the epoch)."""
        for slot in self._slots(when, reverse=False):
            if slot > when:
                return slot
        raise self._never()

    def first_from(self, when: float, *, tolerance: float = 0.0) -> float:
        """The first slot at or after ``when - tolerance``."""
        start = when - tolerance
        latest = self.latest_at_or_before(when)
        return latest if latest is not None and latest >= start else self.next_after(when)

    def latest_at_or_before(self, when: float) -> float | None:
        """The last slot at or before ``when``; ``None`` if there is none in the
        ~100,000 wall times before it (far more than any catch-up looks back)."""
        for slot in self._slots(when, reverse=True):
            if slot <= when:
                return slot
        return None

    def between(self, start: float, end: float, *, limit: int) -> list[float]:
        """Slots ``s`` with ``start <= s <= end``, oldest first, at most the latest ``limit``."""
        slots: list[float] = []
        for slot in self._slots(end, reverse=True):
            if slot > end:
                continue
            if slot < start or len(slots) >= limit:
                break
            slots.append(slot)
        slots.reverse()
        return slots

    def _slots(self, around: float, *, reverse: bool) -> Iterator[float]:
        """Slots in order (newest first if ``reverse``) from a wall time a little before
        (after) ``around``; callers skip the few on the wrong side of it."""
        zone = self.zone
        local = dt.datetime.fromtimestamp(around, zone).replace(tzinfo=None)
        start = local + _FOLD_MARGIN if reverse else local - _FOLD_MARGIN
        wall_times = _cronsim().CronSim(self.fields, start, reverse=reverse)
        for _ in range(_MAX_CANDIDATES):
            try:
                wall: dt.datetime = next(wall_times)
            except StopIteration:  # cronsim stops at the end of its calendar
                return
            placed = wall.replace(tzinfo=zone, fold=0)
            if placed.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != wall:
                continue  # skipped by a spring-forward: this wall time never happens
            yield placed.timestamp()

    def _never(self) -> ScheduleError:
        return ScheduleError(
            f"cron expression {self.text!r} matches no time that exists in {self.timezone}"
        )
