"""The lease keeper: renews this worker's leases and its registry record, reclaims
expired leases, purges old results; runs whose task it no longer holds are cancelled."""

from __future__ import annotations

from collections.abc import Callable
from typing import final

import trio

from .._clock import Clock
from .._hook_delivery import HookDelivery
from ..logging import log_task_released, worker_logger
from ..models import WorkerInfo
from ..store import Store
from ._cancel import RunningTasks
from ._health import StoreHealth
from ._observe import report_lost

__all__ = ["Heartbeat", "lease_keeper"]


async def lease_keeper(
    *,
    store: Store,
    worker_id: str,
    lease_duration: float,
    result_ttl: float,
    failed_ttl: float,
    clock: Clock,
    heartbeat: Heartbeat | None = None,
    hooks: HookDelivery | None = None,
    health: StoreHealth | None = None,
    runs: RunningTasks | None = None,
) -> None:
    """Every third of ``lease_duration``: renew, heartbeat, reclaim, purge. Runs until
    cancelled.

    Renewing three times per lease leaves two chances to recover from a slow
    or failed store round trip before a lease lapses. A task ``runs`` holds that
    the renewal no longer returns was cancelled or taken back: its run is
    cancelled (the fallback for a cancel whose notification did not arrive). The heartbeat refreshes
    the pool's record in the worker registry, so a pool that dies drops out of
    it once its last heartbeat is older than its lease.
    """
    while True:
        await trio.sleep(lease_duration / 3)
        now = clock.now()
        try:
            mark = 0 if runs is None else runs.mark()
            held = await store.renew(worker_id, lease_until=now + lease_duration)
            if runs is not None:
                runs.cancel_missing(held, mark)
            if heartbeat is not None:
                await heartbeat.beat(now)
            reclaimed = await store.reclaim_expired(now=now)
            log_task_released(reclaimed.requeued, "their worker's lease expired")
            if reclaimed.failed:
                worker_logger.error(
                    "%d task(s) FAILED: their runs were lost to dead workers more than "
                    "max_lost_runs times: %s",
                    len(reclaimed.failed),
                    ", ".join(reclaimed.failed),
                )
            if hooks:
                lost = [*reclaimed.requeued, *reclaimed.failed]
                await report_lost(hooks, lost, store=store, worker_id=worker_id, at=now)
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


@final
class Heartbeat:
    """A pool's record in the worker registry: written at start and with every lease
    renewal, removed at stop. Its failures are logged, never raised: a pool runs
    tasks whether or not it is listed."""

    def __init__(self, store: Store, worker_info: Callable[[float], WorkerInfo]) -> None:
        self._store = store
        self._worker_info = worker_info
        #: the store keeps no registry (said once)
        self._unsupported = False

    async def beat(self, now: float) -> None:
        """Record the pool as it is at ``now``."""
        if self._unsupported:
            return
        info = self._worker_info(now)
        try:
            await self._store.register_worker(info)
        except NotImplementedError:
            self._unsupported = True
            worker_logger.warning(
                "%s keeps no worker registry: this pool is not listed by `omniq-trio workers`",
                type(self._store).__name__,
            )
        except Exception:
            worker_logger.exception("recording worker %s in the registry failed", info.id)

    async def end(self, worker_id: str) -> None:
        """Remove the pool's record (it stopped)."""
        if self._unsupported:
            await trio.lowlevel.checkpoint()
            return
        try:
            await self._store.unregister_worker(worker_id)
        except Exception:
            worker_logger.exception(
                "removing worker %s from the registry failed; it drops out when its "
                "heartbeat expires",
                worker_id,
            )
