"""Cron expressions on a timezone's wall clock: slots, DST rules, shorthands, checks."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from omniq_trio import ScheduleError
from omniq_trio._cron import CronExpression

BERLIN = ZoneInfo("Europe/Berlin")


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    *,
    zone: dt.tzinfo = dt.UTC,
    fold: int = 0,
) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).timestamp()


def walk(expression: CronExpression, start: float, count: int) -> list[str]:
    slots, t = [], start
    for _ in range(count):
        t = expression.next_after(t)
        slots.append(dt.datetime.fromtimestamp(t, BERLIN).strftime("%d %H:%M %Z"))
    return slots


def test_a_repeated_wall_time_is_one_slot_at_its_first_occurrence() -> None:
    every_20 = CronExpression.parse("*/20 * * * *", "Europe/Berlin")
    start = at(2026, 10, 25, 1, 30, zone=BERLIN)
    assert walk(every_20, start, 7) == [
        "25 01:40 CEST",
        "25 02:00 CEST",
        "25 02:20 CEST",
        "25 02:40 CEST",
        # 02:00-02:59 CET happens too, an hour later: no slots in it
        "25 03:00 CET",
        "25 03:20 CET",
        "25 03:40 CET",
    ]
    # from inside the second pass, the next slot is after it
    second_pass = at(2026, 10, 25, 2, 10, zone=BERLIN, fold=1)
    assert every_20.next_after(second_pass) == at(2026, 10, 25, 3, 0, zone=BERLIN)
    assert every_20.latest_at_or_before(second_pass) == at(2026, 10, 25, 2, 40, zone=BERLIN)


def test_a_skipped_wall_time_is_no_slot() -> None:
    nightly = CronExpression.parse("30 2 * * *", "Europe/Berlin")
    assert walk(nightly, at(2026, 3, 28), 2) == ["28 02:30 CET", "30 02:30 CEST"]
    hourly = CronExpression.parse("@hourly", "Europe/Berlin")
    assert walk(hourly, at(2026, 3, 28, 23, 30), 3) == [
        "29 01:00 CET",
        "29 03:00 CEST",
        "29 04:00 CEST",
    ]


def test_between_latest_and_first_from() -> None:
    five = CronExpression.parse("*/5 * * * *")
    t0 = at(2026, 1, 1)
    assert five.between(t0, t0 + 900, limit=100) == [t0, t0 + 300, t0 + 600, t0 + 900]
    assert five.between(t0, t0 + 900, limit=2) == [t0 + 600, t0 + 900]  # the latest ones
    assert five.between(t0 + 1, t0 + 299, limit=100) == []
    assert five.latest_at_or_before(t0 + 299) == t0
    assert five.first_from(t0) == t0
    assert five.first_from(t0 + 0.0005, tolerance=0.001) == t0
    assert five.first_from(t0 + 1) == t0 + 300
    assert five.next_after(t0) == t0 + 300


@pytest.mark.parametrize(
    ("alias", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@HOURLY", "0 * * * *"),
    ],
)
def test_shorthands(alias: str, fields: str) -> None:
    expression = CronExpression.parse(alias)
    assert expression.fields == fields
    assert expression.text == alias
    assert expression.timezone == "UTC"


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("* * * *", "UTC", "must have five fields"),
        ("0 0 30 2 *", "UTC", "Bad day-of-month"),
        ("0 25 * * *", "UTC", "Bad hour"),
        ("* * * * * *", "UTC", "five fields"),
        ("0 0 * * *", "Nowhere/City", "unknown timezone 'Nowhere/City'"),
        ("0 0 * * *", "", "timezone must be an IANA zone name"),
        ("0 0 * * *", None, "timezone must be an IANA zone name"),
    ],
)
def test_bad_expressions_and_zones_are_named(cron: str, timezone: object, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        CronExpression.parse(cron, timezone)
