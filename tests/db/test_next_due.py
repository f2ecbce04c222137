"""The idle poller's next-due read: how long until the earliest queued job falls due, at a given
instant (the clock parameter) or the database's now()."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from db_helpers import add_job, claim_one, db_now

from ayb_jobs.db import queries


async def test_nothing_queued_means_no_wake_up(pool: asyncpg.Pool) -> None:
    assert await queries.seconds_until_next_job(pool) is None
    await add_job(pool)
    await claim_one(pool)  # a running job is not waiting to fall due
    assert await queries.seconds_until_next_job(pool) is None


async def test_the_earliest_job_not_yet_due_sets_the_wake_up(pool: asyncpg.Pool) -> None:
    due = await db_now(pool) + timedelta(minutes=5)
    await add_job(pool, run_at=due + timedelta(hours=1))
    await add_job(pool, run_at=due)
    assert await queries.seconds_until_next_job(pool, now=due - timedelta(seconds=10)) == 10.0
    # A job already due is not waited for: the claim that just came back short could not take it
    # (another daemon holds it, or its queue is paused or at its limit), so the next one counts.
    assert await queries.seconds_until_next_job(pool, now=due) == 3600.0
    assert await queries.seconds_until_next_job(pool, now=due + timedelta(seconds=2)) == 3598.0
    assert 299 < await queries.seconds_until_next_job(pool) <= 300


async def test_a_due_job_of_a_paused_queue_does_not_make_the_idle_poller_spin(pool: asyncpg.Pool) -> None:
    """Before, a due job the claim could not take gave a wake-up of <= 0 s, so every idle poller
    polled every 20 ms for as long as the queue stayed paused (or at its limit)."""
    from ayb_jobs.db import queue_queries

    await add_job(pool, queue="held")
    await queue_queries.set_queue(pool, "held", paused=True)
    assert await queries.claim_jobs(pool, limit=4, lease_s=30, worker_id="w") == []
    assert await queries.seconds_until_next_job(pool) is None
