"""Recovery of expired leases: back to queued after a backoff, or failed when used up."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from db_helpers import add_job, claim_one, expire_lease, row

from ayb_jobs.db import queries
from ayb_jobs.models import JobState


async def test_expired_lease_with_attempts_left_goes_back_to_queued(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, max_attempts=3)
    await claim_one(pool, "worker-a")
    await expire_lease(pool, job.id)
    [rec] = await queries.recover_expired(pool, jitter_s=0.25)
    assert (rec.id, rec.state, rec.attempts, rec.lost_worker_id) == (job.id, JobState.QUEUED, 1, "worker-a")
    r = await row(pool, job.id)
    assert r["state"] == "queued" and r["last_error"] == "lease expired (worker worker-a)"
    assert (r["worker_id"], r["lease_until"], r["attempts"]) == (None, None, 1)
    # Backoff of attempt 1 (5 s) plus the caller's jitter, from the same now() as updated_at.
    assert r["run_at"] - r["updated_at"] == timedelta(seconds=5.25)
    [entry] = (await queries.get_job(pool, job.id)).errors
    assert entry["attempt"] == 1 and entry["worker_id"] == "worker-a"
    assert entry["error"] == "lease expired (worker worker-a)"


async def test_expired_lease_with_no_attempts_left_fails(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, max_attempts=1)
    await claim_one(pool, "worker-b")
    await expire_lease(pool, job.id)
    [rec] = await queries.recover_expired(pool, jitter_s=0.0)
    assert rec.state is JobState.FAILED
    failed = await queries.get_job(pool, job.id)
    assert failed.state is JobState.FAILED and failed.last_error == "lease expired (worker worker-b)"
    assert await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w") == []


async def test_live_leases_are_left_alone(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    await claim_one(pool)
    assert await queries.recover_expired(pool, jitter_s=0.0) == []
    assert (await queries.get_job(pool, job.id)).state is JobState.RUNNING


async def test_recovery_is_bounded_per_call(pool: asyncpg.Pool) -> None:
    for _ in range(3):
        await add_job(pool)
    await queries.claim_jobs(pool, limit=3, lease_s=30, worker_id="w")
    await pool.execute("UPDATE _ayb_jobs SET lease_until = now() - interval '1 minute'")
    assert len(await queries.recover_expired(pool, jitter_s=0.0, limit=2)) == 2
    assert len(await queries.recover_expired(pool, jitter_s=0.0, limit=2)) == 1


async def test_recovery_backoff_is_capped_for_huge_attempt_counts(pool: asyncpg.Pool) -> None:
    # Rows written by other languages may allow thousands of attempts; 2^1999 must not overflow.
    job = await add_job(pool, max_attempts=5000)
    await pool.execute("UPDATE _ayb_jobs SET attempts = 1998 WHERE id = $1", job.id)
    await claim_one(pool)
    await expire_lease(pool, job.id)
    [rec] = await queries.recover_expired(pool, jitter_s=0.5)
    assert rec.state is JobState.QUEUED
    r = await row(pool, job.id)
    assert r["run_at"] - r["updated_at"] == timedelta(seconds=300.5)
