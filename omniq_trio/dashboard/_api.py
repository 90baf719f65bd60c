"""The JSON endpoints: ``/api/overview`` for scripts and monitors, ``/healthz`` for probes."""

from __future__ import annotations

import logging

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ._context import dashboard_of

__all__ = ["healthz", "not_supported", "overview_json", "store_failed"]

_logger = logging.getLogger("omniq_trio.dashboard")


async def overview_json(request: Request) -> Response:
    """Counts by status and queue, the oldest wait, live workers, throughput; times in
    epoch seconds, as ``omniq-trio list --json`` writes them."""
    dashboard = dashboard_of(request)
    overview = await dashboard.queries.overview()
    throughput = dashboard.throughput
    throughput.record(overview.at, overview.counts)
    oldest = overview.oldest_waiting_since
    return JSONResponse(
        {
            "at": overview.at,
            "counts": {status.value: n for status, n in overview.counts.items()},
            "total": overview.total,
            "queues": [
                {
                    "name": queue.name,
                    "counts": {status.value: n for status, n in queue.counts.items()},
                    "paused": queue.paused,
                    "limit": None
                    if queue.limit is None
                    else {"max_starts": queue.limit.max_starts, "per": queue.limit.per},
                }
                for queue in overview.queues
            ],
            "oldest_waiting_since": oldest,
            "oldest_waiting_age": None if oldest is None else overview.at - oldest,
            "workers": [
                {**attrs.asdict(worker, recurse=False), "running": list(worker.running)}
                for worker in overview.workers
            ],
            "throughput": {
                "per_minute": throughput.per_minute(overview.at),
                "bucket_seconds": throughput.bucket_seconds,
                "buckets": [
                    {
                        "start": bucket.start,
                        "succeeded": bucket.succeeded,
                        "failed": bucket.failed,
                        "sampled": bucket.sampled,
                    }
                    for bucket in throughput.series(overview.at)
                ],
            },
        },
        headers={"cache-control": "no-store"},
    )


async def healthz(request: Request) -> Response:
    """``ok`` while the server runs; needs no token and says nothing about the tasks."""
    return PlainTextResponse("ok\n", headers={"cache-control": "no-store"})


async def store_failed(request: Request, exc: Exception) -> Response:
    """503 when the store fails (PostgreSQL unreachable, a disk error): the page says
    so, and the dashboard goes on serving; the next refresh tries again."""
    _logger.warning("%s %s: the store failed: %s", request.method, request.url.path, exc)
    message = " ".join(str(exc).split()) or type(exc).__name__
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"error": message}, status_code=503)
    return dashboard_of(request).error(
        request, 503, "The store did not answer", f"{type(exc).__name__}: {message}"
    )


async def not_supported(request: Request, exc: Exception) -> Response:
    """501 for a page the store cannot answer yet (it says which feature it lacks)."""
    message = str(exc) or "this store does not support this yet"
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"error": message}, status_code=501)
    return dashboard_of(request).error(request, 501, "Not supported by this store", message)
