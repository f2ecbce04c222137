"""The scheduler: turns due cron slots into fire decisions and jobs, exactly once per slot.

Each pass reads the due schedules, works out each one's decisions with fire_policy (overlap and
misfire) and records them in batches: one statement per FIRE_BATCH schedules advances them, writes
one _ayb_job_schedule_fires row per slot and enqueues the jobs (see fire_schedules in queries.sql).
A schedule another daemon advanced or is deciding is left out, so daemons share the work and each
slot gets one decision. It sleeps until the earlier of jobs.scheduler_tick_s and the earliest
next_run_at, or until woken because a schedule changed.

`clock` returns the instant the scheduler treats as now, or None for the database's now() (what the
daemon uses); tests pass instants to step through minutes without waiting for them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog

from ayb_jobs import cron, fire_policy
from ayb_jobs.db import queries
from ayb_jobs.errors import InvalidInput
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.loops import FailureDelay, supervise

log = structlog.get_logger("ayb_jobs.scheduler")
# Never spin faster than this, even when a slot is due "now" but another daemon holds it.
MIN_SLEEP_S = 0.05
# Schedules decided per statement: large enough that 5,000 slots due in the same minute take a few
# statements, small enough that one statement's row locks and duration stay short.
FIRE_BATCH = 500
FIRE_PARALLEL = 3  # batch statements in flight at once
HISTORY_KEEP = 100  # fire decisions kept per schedule
PRUNE_EVERY_S = 600.0
PRUNE_MIN_IDLE_S = 10.0  # prune only when the next slot is at least this far away


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
                 on_enqueued: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime | None] = lambda: None) -> None:
        self._pool = pool
        self._metrics = metrics
        self._tick_s = tick_s
        self._on_enqueued = on_enqueued
        self._clock = clock
        self._pruned_at = time.monotonic()
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()

    async def run_once(self) -> int:
        """Decide every due slot once; returns the number of jobs this daemon enqueued."""
        await fill_missing_next_run(self._pool)
        clock = self._clock()
        began = time.perf_counter()
        dues = await queries.due_schedules(self._pool, clock=clock)
        read_s = time.perf_counter() - began
        plans = self._plans(dues)
        planned_s = time.perf_counter() - began
        fires = await self._fire(plans, clock)
        if fires:  # timings of the pass, to see where a late minute went
            log.info("scheduler_pass", due=len(dues), decided=len(fires), read_s=round(read_s, 3),
                     planned_s=round(planned_s, 3), total_s=round(time.perf_counter() - began, 3),
                     slot_lag_s=round((dues[0].now - dues[0].next_run_at).total_seconds(), 3))
        enqueued = self._report(plans, fires)  # after every batch: logging must not delay the next one
        if enqueued:
            self._on_enqueued()
        return enqueued

    async def _fire(self, plans: list[queries.FirePlan], clock: datetime | None) -> list[queries.Fire]:
        """The batches' statements, FIRE_PARALLEL at a time on their own connections (they touch
        disjoint schedules, so they never wait on each other's locks)."""
        gate = asyncio.Semaphore(FIRE_PARALLEL)

        async def fire(batch: list[queries.FirePlan]) -> list[queries.Fire]:
            async with gate:
                return await queries.fire_schedules(self._pool, batch, clock=clock)

        results = await asyncio.gather(*(fire(b) for b in _batches(plans)))
        return [f for r in results for f in r]

    def _plans(self, dues: list[queries.DueSchedule]) -> list[queries.FirePlan]:
        plans = []
        for due in dues:
            try:
                plans.append(fire_policy.plan(due, due.now))
            except InvalidInput as exc:
                log.error("schedule_invalid", schedule_id=str(due.id), schedule=due.name, error=str(exc))
        return plans

    def _report(self, plans: list[queries.FirePlan], fires: list[queries.Fire]) -> int:
        """Metrics and logs for the decisions taken: a line per job, one per schedule for its skips."""
        by_id = {p.due.id: p for p in plans}
        skipped: dict[tuple[UUID, str], list[datetime]] = {}
        enqueued = 0
        for f in fires:
            p = by_id[f.schedule_id]
            self._metrics.schedule_decided(f.outcome)
            if f.outcome != "enqueued":
                skipped.setdefault((f.schedule_id, f.outcome), []).append(f.slot_at)
                continue
            enqueued += 1
            self._metrics.schedule_fired(p.due.name)
            log.info("schedule_fired", schedule_id=str(f.schedule_id), schedule=p.due.name,
                     job_id=str(f.job_id), job_type=p.due.job_type, slot=f.slot_at.isoformat(),
                     next_run_at=p.next_run_at.isoformat())
        for (sid, outcome), slots in skipped.items():
            log.info("schedule_skipped", schedule_id=str(sid), schedule=by_id[sid].due.name, outcome=outcome,
                     slots=len(slots), first_slot=slots[0].isoformat(), last_slot=slots[-1].isoformat())
        return enqueued

    async def _prune_history(self) -> bool:
        """Trim the fire history when due and the next slot is far enough away: with thousands of
        schedules the delete takes a second or two, which must not make a minute late."""
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return False
        until_next = await queries.seconds_until_next_schedule(self._pool, clock=self._clock())
        if until_next is not None and until_next < PRUNE_MIN_IDLE_S:
            return False
        self._pruned_at = time.monotonic()
        deleted = await queries.prune_schedule_fires(self._pool, keep=HISTORY_KEEP)
        log.debug("schedule_history_pruned", deleted=deleted)
        return True

    async def _sleep_s(self) -> float:
        until_next = await queries.seconds_until_next_schedule(self._pool, clock=self._clock())
        if until_next is None:
            return self._tick_s
        if until_next <= 0:
            # Still due right after a pass: only a schedule we could not compute (logged) does that.
            return 1.0
        return max(MIN_SLEEP_S, min(self._tick_s, until_next))

    async def step(self) -> float:
        """One pass and, when due, the history prune; returns the sleep before the next pass."""
        self.wake.clear()  # before the pass: a change made during it wakes the sleep after it
        await self.run_once()
        sleep_s = await self._sleep_s()
        if await self._prune_history():
            sleep_s = await self._sleep_s()  # the prune took a while: the next slot may be nearer
        return sleep_s

    async def run(self) -> None:
        # After a failure, retry soon (a database restart then costs no minute), waiting at most a
        # tick; a schedule change (`wake`) ends that wait too.
        await supervise("scheduler", self.step, stop=self.stop, log=log, on_db_error=self._metrics.db_error,
                        delay=FailureDelay(first=0.5, cap=self._tick_s), wake_on=(self.wake,))


def _batches(plans: list[queries.FirePlan]) -> list[list[queries.FirePlan]]:
    """FIRE_BATCH-sized batches, starting at a random one: two daemons reading the same due list then
    begin on different batches and share the work instead of skipping each other's locked rows."""
    batches = [plans[i:i + FIRE_BATCH] for i in range(0, len(plans), FIRE_BATCH)]
    if len(batches) > 1:
        k = random.randrange(len(batches))
        batches = batches[k:] + batches[:k]
    return batches
