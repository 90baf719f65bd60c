"""The lease keeper: renews this worker's leases, reclaims expired ones, purges old results."""

from __future__ import annotations

import trio

from .._clock import Clock
from ..logging import log_task_released, worker_logger
from ..store import Store
from ._health import StoreHealth

__all__ = ["lease_keeper"]


async def lease_keeper(
    *,
    store: Store,
    worker_id: str,
    lease_duration: float,
    result_ttl: float,
    failed_ttl: float,
    clock: Clock,
    health: StoreHealth | None = None,
) -> None:
    """Every third of ``lease_duration``: renew, reclaim, purge. Runs until cancelled.

    Renewing three times per lease leaves two chances to recover from a slow
    or failed store round trip before a lease lapses.
    """
    while True:
        await trio.sleep(lease_duration / 3)
        now = clock.now()
        try:
            await store.renew(worker_id, lease_until=now + lease_duration)
            reclaimed = await store.reclaim_expired(now=now)
            log_task_released(reclaimed.requeued, "their worker's lease expired")
            if reclaimed.failed:
                worker_logger.error(
                    "%d task(s) FAILED: their runs were lost to dead workers more than "
                    "max_lost_runs times: %s",
                    len(reclaimed.failed),
                    ", ".join(reclaimed.failed),
                )
            await store.purge(
                finished_before=now - result_ttl, failed_before=now - failed_ttl, limit=10_000
            )
        except Exception as exc:
            worker_logger.exception("lease upkeep failed; retrying in %.1fs", lease_duration / 3)
            if health is not None:
                health.failed(exc)
        else:
            if health is not None:
                health.ok()
