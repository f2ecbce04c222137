"""The poller: claims as many due jobs as there are free worker slots, in one statement.

It wakes on a NOTIFY (via `wake`), when one of its jobs ends (a slot frees up), or every
poll_interval_ms; while claims come back full it polls again at once. Polling alone is correct;
notifications only cut latency. A slot frees when a handler ends, before its outcome is written,
so the next claim overlaps the writer's statement.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import structlog

from ayb_jobs.db import queries
from ayb_jobs.db.pool import bounded
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.executor import Executor
from ayb_jobs.runtime.loops import FailureDelay, Pause, jittered, supervise

log = structlog.get_logger("ayb_jobs.poller")
# Floor for the idle sleep, so a job due "now" that another daemon holds cannot make us spin.
MIN_SLEEP_S = 0.02
CLAIM_TIMEOUT_S = 10.0


class Poller:
    def __init__(self, *, pool: Any, executor: Executor, metrics: Metrics, lease_s: float,
                 poll_interval_s: float, claim_timeout_s: float = CLAIM_TIMEOUT_S,
                 queues: Sequence[str] | None = None) -> None:
        self._pool = pool
        self._queues = None if queues is None else list(queues)  # None: every queue
        self._executor = executor
        self._metrics = metrics
        self._lease_s = lease_s
        self._poll_interval_s = poll_interval_s
        self._claim_timeout_s = claim_timeout_s
        # Set when a claim failed on our side: it may have committed without us learning its jobs.
        self._claim_unsure = False
        self.wake = asyncio.Event()
        self.stop = asyncio.Event()

    async def run_once(self) -> int:
        """Claim up to the free slots and start the jobs; returns how many were claimed."""
        if self._claim_unsure:
            await self._release_unheld()
        free = self._executor.free_slots()
        if free <= 0:
            return 0
        sent = time.monotonic()  # the leases start later than this: the executor counts from here
        try:
            jobs = await bounded(queries.claim_jobs(self._pool, limit=free, lease_s=self._lease_s,
                                                    worker_id=self._executor.worker_id, queues=self._queues,
                                                    timeout=self._claim_timeout_s), self._claim_timeout_s)
        except Exception:
            self._claim_unsure = True
            raise
        self._executor.start(jobs, claim_sent=sent)
        return len(jobs)

    async def _release_unheld(self) -> None:
        """A failed claim may have committed: give back at once the jobs it took that we do not
        hold, instead of leaving them running until their leases expire."""
        released = await bounded(queries.release_unheld(self._pool, self._executor.worker_id,
                                                        self._executor.claimed(),
                                                        timeout=self._claim_timeout_s), self._claim_timeout_s)
        self._claim_unsure = False
        if released:
            log.warning("unheld_jobs_released", count=len(released), job_ids=[str(i) for i in released[:20]],
                        reason="a claim committed but its answer was lost; released at once, attempt "
                               "not counted")

    async def run(self) -> None:
        await supervise("poller", self.step, stop=self.stop, log=log, on_db_error=self._metrics.db_error,
                        delay=FailureDelay())

    async def step(self) -> float | Pause:
        """One claim, and how long to wait before the next: none while claims come back full."""
        executor = self._executor
        if executor.free_slots() <= 0:
            executor.slot_freed.clear()
            return Pause(None, (executor.slot_freed,))
        self.wake.clear()
        # A job of ours that ends after this claim wakes the idle wait below: with a queue at its
        # concurrency limit (or paused, or another daemon's), a finished job can free the slot the
        # next job of that queue waits for, and nothing else would say so before the poll interval.
        executor.slot_freed.clear()
        asked = executor.free_slots()
        if await self.run_once() >= asked:
            return 0
        return Pause(await self._idle_sleep_s(), (self.wake, executor.slot_freed))

    async def _idle_sleep_s(self) -> float:
        """The poll interval, or less when a queued job (a retry, a delayed job) falls due sooner."""
        interval = jittered(self._poll_interval_s)
        try:
            until_due = await queries.seconds_until_next_job(self._pool)
        except Exception:
            return interval  # the next claim reports the database error
        if until_due is None:
            return interval
        return min(interval, max(until_due, MIN_SLEEP_S))
