"""``create_app``: the dashboard as an ASGI application (Starlette)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from .._client import AsyncOmniQ
from ..errors import StoreError
from ._access import Access
from ._actions import cancel_action, purge_action, retry_action
from ._api import healthz, not_supported, overview_json, store_failed
from ._context import Dashboard
from ._guard import Guard
from ._pages import overview_page, task_page, tasks_page, workers_page
from ._queries import Queries
from ._throughput import Throughput

__all__ = ["create_app"]

#: Seconds between a page's refreshes of its live parts.
REFRESH_INTERVAL = 2.0
_STATIC = Path(__file__).with_name("static")


def create_app(
    omniq: AsyncOmniQ,
    *,
    access: Access,
    throughput: Throughput | None = None,
    refresh_interval: float = REFRESH_INTERVAL,
    metrics_app: ASGIApp | None = None,
) -> Starlette:
    """The dashboard over ``omniq`` (an open client), behind ``access``.

    Serve it with any ASGI server running trio (``serve_dashboard`` uses
    Hypercorn's). ``metrics_app`` is mounted at ``/metrics``, behind the token.
    """
    routes: list[BaseRoute] = [
        Route("/", overview_page, methods=["GET"]),
        Route("/tasks", tasks_page, methods=["GET"]),
        Route("/tasks/{task_id:str}", task_page, methods=["GET"]),
        Route("/workers", workers_page, methods=["GET"]),
        Route("/tasks/{task_id:str}/cancel", cancel_action, methods=["POST"]),
        Route("/tasks/{task_id:str}/retry", retry_action, methods=["POST"]),
        Route("/purge", purge_action, methods=["POST"]),
        Route("/api/overview", overview_json, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=_STATIC), name="static"),
    ]
    # ---- /metrics -------------------------------------------------------
    # The store's gauges (tasks by status and queue, oldest wait, live
    # workers), served once per store by the dashboard process; behind the
    # token like every page (a Prometheus scrape sends it as a bearer token).
    if metrics_app is not None:
        routes.append(Route("/metrics", metrics_app))
    # -----------------------------------------------------------------------
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, access=access)],
        exception_handlers={
            StoreError: store_failed,
            OSError: store_failed,
            NotImplementedError: not_supported,
        },
    )
    app.state.dashboard = Dashboard(
        queries=Queries(omniq),
        access=access,
        throughput=Throughput() if throughput is None else throughput,
        refresh_interval=refresh_interval,
    )
    return app
