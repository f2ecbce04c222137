"""The scheduler: turns due cron slots into jobs, exactly once per slot across daemons.

Each due schedule is advanced and its job inserted by one guarded statement (see
advance_and_enqueue in queries.sql); zero rows means another daemon took the slot. It sleeps
until the earlier of jobs.scheduler_tick_s and the earliest next_run_at, or until woken because
a schedule changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from ayb_jobs import cron
from ayb_jobs.db import queries
from ayb_jobs.errors import InvalidInput
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.loops import Backoff, wait_any

log = structlog.get_logger("ayb_jobs.scheduler")
# Never spin faster than this, even when a slot is due "now" but another daemon holds it.
MIN_SLEEP_S = 0.05


async def fill_missing_next_run(pool: Any) -> int:
    """Give every enabled schedule without a next_run_at its next slot (from the database clock)."""
    ids, nexts = [], []
    for schedule_id, expr, tz, now in await queries.schedules_missing_next_run(pool):
        try:
            nexts.append(cron.next_fire_after(expr, tz, now))
            ids.append(schedule_id)
        except InvalidInput as exc:
            log.error("schedule_invalid", schedule_id=str(schedule_id), error=str(exc))
    return await queries.set_missing_next_run(pool, ids, nexts) if ids else 0


class Scheduler:
    def __init__(self, *, pool: Any, metrics: Metrics, tick_s: float,
                 on_enqueued: Callable[[], None] = lambda: None) -> None:
        self._pool = pool
        self._metrics = metrics
        self._tick_s = tick_s
        self._on_enqueued = on_enqueued
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()

    async def run_once(self) -> int:
        """Fire every due schedule once; returns the number of jobs this daemon enqueued."""
        await fill_missing_next_run(self._pool)
        fired = 0
        for due in await queries.due_schedules(self._pool):
            try:
                next_run = cron.next_fire_after(due.cron_expr, due.timezone, due.now)
            except InvalidInput as exc:
                log.error("schedule_invalid", schedule_id=str(due.id), schedule=due.name, error=str(exc))
                continue
            job = await queries.advance_and_enqueue(self._pool, due, next_run_at=next_run)
            if job is None:
                continue
            fired += 1
            self._metrics.schedule_fired(due.name)
            log.info("schedule_fired", schedule_id=str(due.id), schedule=due.name, job_id=str(job.id),
                     job_type=job.type, slot=due.next_run_at.isoformat(), next_run_at=next_run.isoformat())
        if fired:
            self._on_enqueued()
        return fired

    async def _sleep_s(self) -> float:
        until_next = await queries.seconds_until_next_schedule(self._pool)
        if until_next is None:
            return self._tick_s
        if until_next <= 0:
            # Still due right after a pass: only a schedule we could not compute (logged) does that.
            return 1.0
        return max(MIN_SLEEP_S, min(self._tick_s, until_next))

    async def run(self) -> None:
        backoff = Backoff(first=0.5, cap=self._tick_s)
        while not self.stop.is_set():
            self.wake.clear()
            try:
                await self.run_once()
                sleep_s = await self._sleep_s()
                backoff.reset()
            except Exception as exc:
                self._metrics.db_error("scheduler")
                log.warning("db_error", component="scheduler", error=f"{type(exc).__name__}: {exc}")
                sleep_s = backoff.next()
            await wait_any(self.stop, self.wake, timeout=sleep_s)
