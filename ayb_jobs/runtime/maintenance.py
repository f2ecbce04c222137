"""Recovery of expired leases: jobs whose worker died or hung go back to queued (or to failed
when their attempts are used up). Runs at start and every jobs.recovery_interval_s on every
daemon; SKIP LOCKED keeps daemons from fighting over the same rows."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import structlog

from ayb_jobs.db import queries
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.loops import FailureDelay, jittered, supervise

log = structlog.get_logger("ayb_jobs.maintenance")
BATCH = 1000


class Maintenance:
    def __init__(self, *, pool: Any, metrics: Metrics, interval_s: float,
                 on_requeued: Callable[[], None] = lambda: None,
                 rand: Callable[[], float] = random.random) -> None:
        self._pool = pool
        self._metrics = metrics
        self._interval_s = interval_s
        self._on_requeued = on_requeued
        self._rand = rand
        self.stop = asyncio.Event()

    async def run_once(self) -> int:
        total = 0
        while True:
            recovered = await queries.recover_expired(self._pool, jitter_s=self._rand(), limit=BATCH)
            for r in recovered:
                self._metrics.recovered(r.type)
                log.warning("job_recovered", job_id=str(r.id), job_type=r.type, attempt=r.attempts,
                            max_attempts=r.max_attempts, state=str(r.state), lost_worker_id=r.lost_worker_id)
            total += len(recovered)
            if len(recovered) < BATCH:
                break
        if total:
            self._on_requeued()
        return total

    async def step(self) -> float:
        await self.run_once()
        return jittered(self._interval_s)

    async def run(self) -> None:
        # A failed recovery is retried at the next (jittered) interval, as if that pass were skipped:
        # expired leases wait one interval anyway, and retrying sooner only loads a sick database.
        await supervise("maintenance", self.step, stop=self.stop, log=log, on_db_error=self._metrics.db_error,
                        delay=FailureDelay(first=self._interval_s, cap=self._interval_s))
