"""The legacy webhook-delivery pruner, kept for jobs.enabled = false (AYB's default).

It deletes _ayb_webhook_deliveries older than 7 days once an hour, as AYB did before the job
queue existed. It never runs when the job queue is enabled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from ayb_jobs.db import queries
from ayb_jobs.handlers.builtin import BATCH, LEGACY_WEBHOOK_RETENTION_HOURS, delete_in_batches
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.loops import FailureDelay, supervise

log = structlog.get_logger("ayb_jobs.legacy")
INTERVAL_S = 3600.0


class LegacyPruner:
    def __init__(self, *, pool: Any, metrics: Metrics, interval_s: float = INTERVAL_S) -> None:
        self._pool = pool
        self._metrics = metrics
        self._interval_s = interval_s
        self.stop = asyncio.Event()

    async def run_once(self) -> int | None:
        """Rows deleted, or None when the table does not exist (not an AYB database)."""
        if not await queries.table_exists(self._pool, "_ayb_webhook_deliveries"):
            return None
        deleted = await delete_in_batches(self._pool, "delete_old_webhook_deliveries",
                                          LEGACY_WEBHOOK_RETENTION_HOURS, BATCH)
        if deleted:
            log.info("legacy_webhook_prune", deleted=deleted)
        return deleted

    async def step(self) -> float:
        await self.run_once()
        return self._interval_s

    async def run(self) -> None:
        # Hourly whether it worked or not, as AYB's own pruner: nothing here is worth retrying sooner.
        await supervise("legacy_pruner", self.step, stop=self.stop, log=log,
                        on_db_error=self._metrics.db_error,
                        delay=FailureDelay(first=self._interval_s, cap=self._interval_s, spread=0))
