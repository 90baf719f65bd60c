"""``serve_dashboard``: the dashboard as a trio service, served by Hypercorn's trio worker."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from functools import partial
from urllib.parse import quote

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.types import ASGIApp

from .._client import AsyncOmniQ
from ..config import Settings
from ..models import TaskStatus
from ._access import Access, host_name
from ._app import REFRESH_INTERVAL, create_app
from ._queries import Queries
from ._throughput import SAMPLE_INTERVAL, Throughput

__all__ = ["serve_dashboard"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Seconds open requests get to finish when the server stops (pages answer in milliseconds).
_GRACEFUL_TIMEOUT = 2.0

_logger = logging.getLogger("omniq_trio.dashboard")


async def serve_dashboard(
    settings: Settings | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    no_token: bool = False,
    read_only: bool = False,
    allowed_hosts: Iterable[str] = (),
    omniq: AsyncOmniQ | None = None,
    refresh_interval: float = REFRESH_INTERVAL,
    metrics_app: ASGIApp | None = None,
    environ: Mapping[str, str] | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the dashboard over the store of ``settings`` until cancelled.

    ``await nursery.start(serve_dashboard, settings)`` returns once it listens,
    with its address and token: ``http://127.0.0.1:8765/?token=...`` (port 0
    picks a free port). The token is ``token``, else ``OMNIQ_DASHBOARD_TOKEN``,
    else a random one; ``no_token=True`` serves without one, which is refused
    (:class:`~omniq_trio.errors.ConfigError`) unless ``host`` is a loopback
    address. ``read_only=True`` hides and refuses every action. Pass ``omniq``
    to serve a client you opened (it is not closed here); by default one is
    opened from ``settings`` (default ``Settings.from_env()``). ``/metrics``
    serves the store's Prometheus gauges when the ``metrics`` extra is
    installed (or ``metrics_app``, an ASGI app of yours), behind the token.
    """
    access = Access.create(
        token=token,
        no_token=no_token,
        bind_host=host,
        allowed_hosts=allowed_hosts,
        read_only=read_only,
        environ=os.environ if environ is None else environ,
    )
    async with AsyncExitStack() as stack:
        if omniq is None:
            omniq = await stack.enter_async_context(
                AsyncOmniQ(Settings.from_env() if settings is None else settings)
            )
        else:
            await omniq.open()
        throughput = Throughput()
        if metrics_app is None:
            metrics_app = _store_metrics(omniq)
        app = create_app(
            omniq,
            access=access,
            throughput=throughput,
            refresh_interval=refresh_interval,
            metrics_app=metrics_app,
        )
        config = _hypercorn_config(host, port)
        queries = Queries(omniq)

        async def sample() -> tuple[float, Mapping[TaskStatus, int]]:
            return queries.now(), await queries.counts()

        async with trio.open_nursery() as nursery:
            await nursery.start(partial(throughput.run, sample, interval=SAMPLE_INTERVAL))
            binds: list[str] = await nursery.start(partial(serve, app, config))  # type: ignore[arg-type]
            url = _address(binds[0], host) + "/"
            if access.token is not None:
                url += "?token=" + quote(access.token, safe="")
            _logger.info("dashboard serving on %s", url)
            task_status.started(url)


def _hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    bind_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    config.bind = [f"{bind_host}:{port}"]
    config.accesslog = None
    config.errorlog = _logger
    config.graceful_timeout = _GRACEFUL_TIMEOUT
    config.include_server_header = False
    return config


def _address(bind: str, host: str) -> str:
    """The address to open: Hypercorn's bound ``http://host:port``, with this machine's
    name in place of a wildcard address (which no browser can open)."""
    scheme, _, hostport = bind.partition("://")
    if host_name(host) in ("", "0.0.0.0", "::"):
        port = hostport.rpartition(":")[2]
        return f"{scheme}://{os.uname().nodename}:{port}"
    return bind


def _store_metrics(omniq: AsyncOmniQ) -> ASGIApp | None:
    """The store's Prometheus gauges for ``/metrics``, when the ``metrics`` extra is there."""
    try:
        from ..metrics import store_metrics_app
    except ImportError:
        return None
    return store_metrics_app(omniq)
