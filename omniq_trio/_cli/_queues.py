"""``omniq-trio queues`` (list, pause, resume, limit) and ``omniq-trio schedules``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import zoneinfo
from typing import Any

import attrs

from .._client import AsyncOmniQ
from .._clock import DEFAULT_CLOCK
from ..config import Settings
from ..models import QueueInfo, ScheduleInfo, TaskStatus
from ._commands import CliError
from ._commands import _client as client
from ._commands import _require_store as require_store
from ._text import age, parse_duration, table

__all__ = ["limit", "list_queues", "pause", "resume", "schedules"]

#: The count columns of ``omniq-trio queues``, in lifecycle order.
_COUNTED = (
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.RETRYING,
    TaskStatus.SUCCESS,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
)


def pause(args: argparse.Namespace, settings: Settings) -> int:
    """``queues pause NAME``: no worker of any process claims the queue's tasks."""
    require_store(settings)
    client(settings, lambda omniq: omniq.pause_queue(args.name))
    print(f"queue {args.name} is paused: no worker claims its tasks until it is resumed")
    return 0


def resume(args: argparse.Namespace, settings: Settings) -> int:
    """``queues resume NAME``: workers claim the queue's tasks again."""
    require_store(settings)
    client(settings, lambda omniq: omniq.resume_queue(args.name))
    print(f"queue {args.name} is resumed")
    return 0


def limit(args: argparse.Namespace, settings: Settings) -> int:
    """``queues limit NAME --max N --per S`` (or ``--clear``): a rate limit for every worker."""
    require_store(settings)
    name = args.name
    if args.clear:
        if args.max is not None or args.per is not None:
            raise CliError("give --clear, or --max and --per, not both", 2)
        client(settings, lambda omniq: omniq.clear_queue_limit(name))
        print(f"queue {name} has no rate limit")
        return 0
    if args.max is None or args.per is None:
        raise CliError("give --max N and --per SECONDS (or --clear to remove the limit)", 2)
    try:
        per = parse_duration(args.per)
    except ValueError as exc:
        raise CliError(f"--per: {exc}", 2) from None

    async def set_limit(omniq: AsyncOmniQ) -> None:
        await omniq.set_queue_limit(name, max_starts=args.max, per=per)

    client(settings, set_limit)
    print(f"queue {name}: at most {args.max} start(s) per {per:g}s, across every worker")
    return 0


def list_queues(args: argparse.Namespace, settings: Settings) -> int:
    """``queues``: every queue with its counts, paused state and rate limit."""
    require_store(settings)
    infos: list[QueueInfo] = client(settings, lambda omniq: omniq.list_queues())
    if args.json:
        print(json.dumps([_queue_json(info) for info in infos]))
        return 0
    rows = [
        [
            info.name,
            *(str(info.counts.get(status, 0)) for status in _COUNTED),
            "yes" if info.paused else "no",
            "-" if info.limit is None else f"{info.limit.max_starts}/{info.limit.per:g}s",
        ]
        for info in infos
    ]
    headers = ["QUEUE", *(s.value.upper() for s in _COUNTED), "PAUSED", "LIMIT"]
    print(table(headers, rows, right=0))
    if not infos:
        print("(no queue has tasks, is paused or is limited)")
    return 0


def _queue_json(info: QueueInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "counts": {status.value: count for status, count in info.counts.items()},
        "paused": info.paused,
        "limit": None if info.limit is None else attrs.asdict(info.limit),
    }


def schedules(args: argparse.Namespace, settings: Settings) -> int:
    """List the cron schedules worker pools run, with their last and next slots."""
    require_store(settings)
    infos: list[ScheduleInfo] = client(settings, lambda omniq: omniq.list_schedules())
    if args.json:
        print(json.dumps([attrs.asdict(info) for info in infos]))
        return 0
    now = DEFAULT_CLOCK.now()
    rows = [
        [
            info.name,
            info.func,
            info.cron,
            info.timezone,
            info.queue,
            _in_zone(info.last_slot, info.timezone, now),
            _in_zone(info.next_slot, info.timezone, now),
        ]
        for info in infos
    ]
    headers = ["NAME", "FUNC", "CRON", "TIMEZONE", "QUEUE", "LAST SLOT", "NEXT SLOT"]
    print(table(headers, rows))
    if not infos:
        print("(no worker pool has recorded a schedule here)")
    return 0


def _in_zone(slot: float | None, timezone: str, now: float) -> str:
    """``2026-12-02 08:00 CET (in 9h 12m)``: a slot on its schedule's wall clock."""
    if slot is None:
        return "-"
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    when = dt.datetime.fromtimestamp(slot, zone)
    delta = now - slot
    relative = f"{age(delta)} ago" if delta >= 0 else f"in {age(-delta)}"
    return f"{when:%Y-%m-%d %H:%M %Z} ({relative})"
