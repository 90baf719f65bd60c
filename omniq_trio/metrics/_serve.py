"""The store's gauges, served on their own (``omniq-trio metrics``) or as an ASGI app."""

from __future__ import annotations

import functools

import trio

from .._client import AsyncOmniQ
from ..config import Settings
from ..logging import logger
from ._http import ASGIApp, metrics_asgi_app, serve_metrics
from ._store import StoreMetrics

__all__ = ["serve_store_metrics", "store_metrics_app"]


def store_metrics_app(omniq: AsyncOmniQ) -> ASGIApp:
    """The store's gauges (:class:`StoreMetrics` over ``omniq``, an open client) as an
    ASGI app; the dashboard mounts it at ``/metrics``."""
    return metrics_asgi_app(StoreMetrics(omniq).render)


async def serve_store_metrics(
    settings: Settings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    omniq: AsyncOmniQ | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the store's gauges at ``http://host:port/metrics`` until cancelled
    (``omniq-trio metrics``); with ``nursery.start``, returns the URL once it listens.

    Opens a client of ``settings`` (default ``Settings.from_env()``), or serves
    ``omniq``, a client you opened (then left open).
    """
    if omniq is None:
        async with AsyncOmniQ(settings) as own:
            await serve_store_metrics(host=host, port=port, omniq=own, task_status=task_status)
        return
    await omniq.open()
    render = StoreMetrics(omniq).render
    async with trio.open_nursery() as nursery:
        url = await nursery.start(functools.partial(serve_metrics, render, host=host, port=port))
        logger.info("store metrics at %s", url)
        task_status.started(url)
