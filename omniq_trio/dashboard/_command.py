"""What ``omniq-trio dashboard`` does: serve the dashboard until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial
from typing import TextIO

import trio

from ..config import Settings
from ..logging import configure_logging
from ._serve import DEFAULT_HOST, DEFAULT_PORT, serve_dashboard

__all__ = ["run_dashboard"]


def run_dashboard(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    no_token: bool = False,
    read_only: bool = False,
    allowed_hosts: Sequence[str] = (),
    out: TextIO | None = None,
) -> int:
    """Serve the dashboard of ``settings``' store; print where once it listens.

    Returns 0 when stopped by SIGINT or SIGTERM. Bad options raise
    :class:`~omniq_trio.errors.ConfigError` before anything is bound.
    """
    out = sys.stdout if out is None else out
    if not logging.getLogger().handlers:
        configure_logging(settings.log_level)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                partial(
                    serve_dashboard,
                    settings,
                    host=host,
                    port=port,
                    token=token,
                    no_token=no_token,
                    read_only=read_only,
                    allowed_hosts=allowed_hosts,
                )
            )
            mode = " (read-only)" if read_only else ""
            print(f"omniq-trio dashboard{mode}: open {url} (Ctrl-C stops it)", file=out, flush=True)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()

    trio.run(main)
    return 0
