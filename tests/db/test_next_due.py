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


async def test_the_earliest_queued_job_sets_the_wake_up(pool: asyncpg.Pool) -> None:
    due = await db_now(pool) + timedelta(minutes=5)
    await add_job(pool, run_at=due + timedelta(hours=1))
    await add_job(pool, run_at=due)
    assert await queries.seconds_until_next_job(pool, now=due - timedelta(seconds=10)) == 10.0
    assert await queries.seconds_until_next_job(pool, now=due) == 0.0
    assert await queries.seconds_until_next_job(pool, now=due + timedelta(seconds=2)) == -2.0
    assert 299 < await queries.seconds_until_next_job(pool) <= 300
