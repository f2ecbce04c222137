"""Extends the leases of all in-flight jobs in one statement every lease/3.

A job whose lease could not be extended (it expired and was recovered, maybe re-claimed) is
treated as lost: its handler is cancelled and its outcome discarded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from ayb_jobs.db import queries
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.executor import Executor
from ayb_jobs.runtime.loops import wait_any

log = structlog.get_logger("ayb_jobs.heartbeat")
WRITE_TIMEOUT_S = 10.0


class Heartbeat:
    def __init__(self, *, pool: Any, executor: Executor, metrics: Metrics, lease_s: float) -> None:
        self._pool = pool
        self._executor = executor
        self._metrics = metrics
        self._lease_s = lease_s
        self.interval_s = lease_s / 3
        self.stop = asyncio.Event()
        self.healthy = True

    async def run_once(self) -> int:
        """Extend every in-flight lease; returns how many jobs were found lost."""
        claimed = self._executor.claimed()
        if not claimed:
            return 0
        cancel: set = set()
        extended = await queries.heartbeat_jobs(self._pool, claimed, lease_s=self._lease_s,
                                                worker_id=self._executor.worker_id, timeout=WRITE_TIMEOUT_S,
                                                cancel_requested=cancel)
        for c in cancel:  # the control notification is the fast path; this is the fallback
            self._executor.cancel_requested(c.id)
        lost = [c for c in claimed if c not in extended]
        for c in lost:
            # Only a run still in its handler is stopped here; one waiting for its outcome write
            # will learn it from the fenced write itself.
            self._executor.stop_job(c, "lease_lost")
        return len(lost)

    async def run(self) -> None:
        while not self.stop.is_set():
            await wait_any(self.stop, timeout=self.interval_s)
            if self.stop.is_set():
                return
            try:
                await self.run_once()
                self.healthy = True
            except Exception as exc:
                self.healthy = False
                self._metrics.db_error("heartbeat")
                log.warning("db_error", component="heartbeat", error=f"{type(exc).__name__}: {exc}")
