"""Claim: due jobs only, in run_at order, SKIP LOCKED, never the same job twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
from db_helpers import add_job, add_jobs, db_now

from ayb_jobs.db import queries
from ayb_jobs.models import JobState


async def test_claim_starts_an_attempt_with_a_lease(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    [claimed] = await queries.claim_jobs(pool, limit=5, lease_s=30, worker_id="w1")
    assert (claimed.id, claimed.attempts, claimed.claim_seq) == (job.id, 1, 1)
    row = await queries.get_job(pool, job.id)
    assert row.state is JobState.RUNNING and row.worker_id == "w1"
    assert row.last_run_at is not None
    assert row.lease_until - row.last_run_at == timedelta(seconds=30)


async def test_a_claim_returns_what_running_the_job_needs(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    await pool.execute("UPDATE _ayb_jobs SET payload = '{\"n\": 1}', max_attempts = 7, priority = -3 "
                       "WHERE id = $1", job.id)
    [claimed] = await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w1")
    assert (claimed.type, claimed.payload, claimed.payload_error) == (job.type, {"n": 1}, None)
    assert (claimed.max_attempts, claimed.queue, claimed.priority) == (7, "default", -3)
    assert claimed.cancel_requested is False


async def test_claim_takes_due_jobs_oldest_first_up_to_the_limit(pool: asyncpg.Pool) -> None:
    jobs = await add_jobs(pool, 3)
    # Oldest run_at first, whatever the insertion order.
    await pool.execute("UPDATE _ayb_jobs SET run_at = now() - make_interval(secs => (payload->>'i')::int)")
    got = await queries.claim_jobs(pool, limit=2, lease_s=30, worker_id="w")
    assert [j.id for j in got] == [jobs[2].id, jobs[1].id]


async def test_delayed_jobs_are_not_claimable_until_due(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, run_at=await db_now(pool) + timedelta(hours=1))
    assert await queries.claim_jobs(pool, limit=5, lease_s=30, worker_id="w") == []
    await pool.execute("UPDATE _ayb_jobs SET run_at = now() - interval '1 second'")
    assert [j.id for j in await queries.claim_jobs(pool, limit=5, lease_s=30, worker_id="w")] == [job.id]


async def test_a_second_claimer_skips_rows_locked_by_the_first(pool: asyncpg.Pool, connect) -> None:
    await add_jobs(pool, 3)
    a, b = await connect(), await connect()
    tx_a, tx_b = a.transaction(), b.transaction()
    await tx_a.start()
    await tx_b.start()
    try:
        got_a = await queries.claim_jobs(a, limit=1, lease_s=30, worker_id="a")
        # Without SKIP LOCKED this would wait for a's transaction: bound it.
        got_b = await asyncio.wait_for(queries.claim_jobs(b, limit=10, lease_s=30, worker_id="b"), 5)
        assert len(got_a) == 1 and len(got_b) == 2
        assert not {j.id for j in got_a} & {j.id for j in got_b}
    finally:
        await tx_a.commit()
        await tx_b.commit()
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE state = 'running'") == 3


async def test_four_concurrent_claimers_drain_2000_jobs_without_duplicates(pool: asyncpg.Pool,
                                                                             connect) -> None:
    await pool.execute("INSERT INTO _ayb_jobs (type) SELECT 't' FROM generate_series(1, 2000)")
    conns = [await connect() for _ in range(4)]

    async def drain(conn: asyncpg.Connection, worker: str) -> list:
        got = []
        while batch := await queries.claim_jobs(conn, limit=25, lease_s=30, worker_id=worker):
            got.extend(j.id for j in batch)
        return got

    results = await asyncio.gather(*(drain(c, f"w{i}") for i, c in enumerate(conns)))
    every = [i for r in results for i in r]
    assert len(every) == len(set(every)) == 2000
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE state = 'queued'") == 0
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE attempts <> 1") == 0
