"""The legacy webhook-delivery pruner, kept for jobs.enabled = false (AYB's default).

It deletes _ayb_webhook_deliveries older than 7 days once an hour, as AYB did before the job
queue existed. It never runs when the job queue is enabled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from ayb_jobs.db import queries
from ayb_jobs.handlers.builtin import BATCH, LEGACY_WEBHOOK_RETENTION_HOURS, drain
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.loops import wait_any

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
        deleted = await drain(self._pool, "delete_old_webhook_deliveries", LEGACY_WEBHOOK_RETENTION_HOURS,
                              BATCH)
        if deleted:
            log.info("legacy_webhook_prune", deleted=deleted)
        return deleted

    async def run(self) -> None:
        while not self.stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:
                self._metrics.db_error("legacy_pruner")
                log.warning("db_error", component="legacy_pruner", error=f"{type(exc).__name__}: {exc}")
            await wait_any(self.stop, timeout=self._interval_s)
