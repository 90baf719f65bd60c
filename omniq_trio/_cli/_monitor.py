"""The monitoring commands: ``workers`` (the worker registry) and ``metrics`` (the
store's Prometheus gauges)."""

from __future__ import annotations

import argparse
import functools
import json
import signal
import sys
from typing import Any

import attrs
import trio

from .._clock import DEFAULT_CLOCK
from ..config import Settings
from ..models import WorkerInfo
from ._commands import CliError
from ._commands import _client as client
from ._commands import _require_store as require_store
from ._text import age, table

__all__ = ["metrics", "worker_json", "workers"]


def worker_json(info: WorkerInfo) -> dict[str, Any]:
    """A worker as ``workers --json`` writes it: its fields, times in epoch seconds,
    ``running`` and ``queues`` as lists."""
    fields = attrs.asdict(info)
    fields["running"] = list(info.running)
    fields["queues"] = None if info.queues is None else list(info.queues)
    return fields


def workers(args: argparse.Namespace, settings: Settings) -> int:
    require_store(settings)
    found = client(settings, lambda omniq: omniq.list_workers())
    if args.json:
        print(json.dumps([worker_json(w) for w in found]))
        return 0
    if not found:
        print("no live workers (a worker lists itself while it runs)")
        return 0
    now = DEFAULT_CLOCK.now()
    rows = [
        [
            w.id,
            w.hostname,
            str(w.pid),
            f"{len(w.running)}/{w.concurrency}",
            "all" if w.queues is None else ",".join(w.queues),
            f"{age(now - w.started_at)} ago",
            f"{age(now - w.last_seen)} ago",
            str(w.succeeded),
            str(w.failed),
        ]
        for w in found
    ]
    headers = ["ID", "HOST", "PID", "BUSY", "QUEUES", "STARTED", "SEEN", "SUCCEEDED", "FAILED"]
    print(table(headers, rows, right=2))
    if args.running:
        for w in found:
            for task_id in w.running:
                print(f"{w.id}  {task_id}")
    return 0


def metrics(args: argparse.Namespace, settings: Settings) -> int:
    require_store(settings)
    try:
        from ..metrics import serve_store_metrics
    except ImportError as exc:
        raise CliError(
            f"metrics needs prometheus-client ({exc}): pip install 'omniq-trio[metrics]'"
        ) from None

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                serve = functools.partial(
                    serve_store_metrics, settings, host=args.host, port=args.port
                )
                url = await nursery.start(serve)
                print(f"omniq-trio metrics: serving the store's gauges at {url} (Ctrl-C stops)")
                sys.stdout.flush()
                async for _ in signals:  # Ctrl-C or SIGTERM is how it ends
                    nursery.cancel_scope.cancel()
                    break

    trio.run(run)
    return 0
