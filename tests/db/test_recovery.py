"""Recovery of expired leases: back to queued after a backoff, or failed when used up.

Time is the statement's clock parameter: a test names the instant after a lease ran out instead of
rewriting the lease or waiting for it."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from db_helpers import add_job, claim_one, row

from ayb_jobs.db import queries
from ayb_jobs.models import JobState

AFTER = timedelta(milliseconds=1)


async def test_expired_lease_with_attempts_left_goes_back_to_queued(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, max_attempts=3)
    claimed = await claim_one(pool, "worker-a")
    at = claimed.lease_until + AFTER
    [rec] = await queries.recover_expired(pool, jitter_s=0.25, now=at)
    assert (rec.id, rec.state, rec.attempts, rec.lost_worker_id) == (job.id, JobState.QUEUED, 1, "worker-a")
    r = await row(pool, job.id)
    assert r["state"] == "queued" and r["last_error"] == "lease expired (worker worker-a)"
    assert (r["worker_id"], r["lease_until"], r["attempts"]) == (None, None, 1)
    # Backoff of attempt 1 (5 s) plus the caller's jitter, from the recovery's instant.
    assert (r["updated_at"], r["run_at"]) == (at, at + timedelta(seconds=5.25))
    [entry] = (await queries.get_job(pool, job.id)).errors
    assert entry["attempt"] == 1 and entry["worker_id"] == "worker-a"
    assert entry["error"] == "lease expired (worker worker-a)"


async def test_expired_lease_with_no_attempts_left_fails(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, max_attempts=1)
    claimed = await claim_one(pool, "worker-b")
    [rec] = await queries.recover_expired(pool, jitter_s=0.0, now=claimed.lease_until + AFTER)
    assert rec.state is JobState.FAILED
    failed = await queries.get_job(pool, job.id)
    assert failed.state is JobState.FAILED and failed.last_error == "lease expired (worker worker-b)"
    assert await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w") == []


async def test_a_lease_is_live_up_to_its_last_instant(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    claimed = await claim_one(pool)
    assert await queries.recover_expired(pool, jitter_s=0.0) == []
    assert await queries.recover_expired(pool, jitter_s=0.0, now=claimed.lease_until) == []
    assert (await queries.get_job(pool, job.id)).state is JobState.RUNNING
    [rec] = await queries.recover_expired(pool, jitter_s=0.0, now=claimed.lease_until + AFTER)
    assert rec.id == job.id


async def test_recovery_is_bounded_per_call(pool: asyncpg.Pool) -> None:
    for _ in range(3):
        await add_job(pool)
    claimed = await queries.claim_jobs(pool, limit=3, lease_s=30, worker_id="w")
    at = max([(await queries.get_job(pool, j.id)).lease_until for j in claimed]) + AFTER
    assert len(await queries.recover_expired(pool, jitter_s=0.0, limit=2, now=at)) == 2
    assert len(await queries.recover_expired(pool, jitter_s=0.0, limit=2, now=at)) == 1


async def test_recovery_backoff_is_capped_for_huge_attempt_counts(pool: asyncpg.Pool) -> None:
    # Rows written by other languages may allow thousands of attempts; 2^1999 must not overflow.
    job = await add_job(pool, max_attempts=5000)
    await pool.execute("UPDATE _ayb_jobs SET attempts = 1998 WHERE id = $1", job.id)
    claimed = await claim_one(pool)
    at = claimed.lease_until + AFTER
    [rec] = await queries.recover_expired(pool, jitter_s=0.5, now=at)
    assert rec.state is JobState.QUEUED
    r = await row(pool, job.id)
    assert r["run_at"] - at == timedelta(seconds=300.5)
