"""Extends the leases of all in-flight jobs in one statement every lease/3, and enforces them.

A claim whose lease could not be extended (it expired and was recovered, maybe re-claimed) is
treated as lost: its handler is cancelled and its outcome discarded.

When heartbeats fail (the database is unreachable or too slow for this daemon while others may
reach it), nothing confirms the leases any more. Each run knows until when its lease surely holds
(when the last successful claim or heartbeat was *sent*, plus the lease); the guard stops a
handler `margin` before that, so it never works on past its lease while another daemon may have
recovered the job and be running it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from ayb_jobs.db import queries
from ayb_jobs.db.pool import bounded
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.executor import Executor
from ayb_jobs.runtime.loops import FailureDelay, supervise, wait_any

log = structlog.get_logger("ayb_jobs.heartbeat")
WRITE_TIMEOUT_S = 10.0
# Handlers stop this share of the lease before it could end unconfirmed (5 s of a 30 s lease).
MARGIN_FRACTION = 1 / 6
# The guard looks again at least this often (new runs start with a later deadline than it knows).
GUARD_MAX_SLEEP_S = 1.0
RETRY_S = 1.0  # the next beat after a failed one


class Heartbeat:
    def __init__(self, *, pool: Any, executor: Executor, metrics: Metrics, lease_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = pool
        self._executor = executor
        self._metrics = metrics
        self._lease_s = lease_s
        self._clock = clock
        self.interval_s = lease_s / 3
        self.margin_s = lease_s * MARGIN_FRACTION
        self.stop = asyncio.Event()
        self.healthy = True

    async def run_once(self) -> int:
        """Extend every in-flight lease; returns how many claims were found lost."""
        claimed = self._executor.claimed()
        if not claimed:
            return 0
        sent = self._clock()
        # Bounded by the interval, so a hung statement cannot hold up the next beat.
        timeout = min(WRITE_TIMEOUT_S, self.interval_s)
        cancel: set = set()
        extended = await bounded(queries.heartbeat_jobs(self._pool, claimed, lease_s=self._lease_s,
                                                        worker_id=self._executor.worker_id,
                                                        timeout=timeout, cancel_requested=cancel), timeout)
        self._executor.leases_confirmed(extended, sent=sent)
        for c in cancel:  # the control notification is the fast path; this is the fallback
            self._executor.cancel_requested(c.id)
        lost = [c for c in claimed if c not in extended]
        for c in lost:
            # Only a run still in its handler is stopped here; one waiting for its outcome write
            # will learn it from the fenced write itself.
            self._executor.stop_job(c, "lease_lost")
        return len(lost)

    async def run(self) -> None:
        guard = asyncio.create_task(self.guard(), name="lease-guard")
        try:
            await self._beat()
        finally:
            guard.cancel()

    async def _beat(self) -> None:
        # A short outage (a restart) costs no lease: a failed beat is tried again within RETRY_S.
        retry_s = min(self.interval_s, RETRY_S)
        await wait_any(self.stop, timeout=self.interval_s)
        await supervise("heartbeat", self._step, stop=self.stop, log=log, on_db_error=self._metrics.db_error,
                        delay=FailureDelay(first=retry_s, cap=retry_s, spread=0))

    async def _step(self) -> float:
        try:
            await self.run_once()
        except Exception:
            self.healthy = False
            raise
        self.healthy = True
        return self.interval_s

    async def guard(self) -> None:
        """Stop handlers whose lease no heartbeat could confirm, `margin_s` before it may end."""
        while True:
            now = self._clock()
            stopped = self._executor.stop_unconfirmed(now, self.margin_s)
            if stopped:
                log.warning("leases_unconfirmed", stopped=stopped, lease_s=self._lease_s,
                            margin_s=round(self.margin_s, 3),
                            reason="no heartbeat could extend these leases; their handlers were "
                                   "stopped before the leases may end")
            deadline = self._executor.lease_deadline(self.margin_s)
            await asyncio.sleep(min(max(deadline - now, 0.01), GUARD_MAX_SLEEP_S))
