"""The claimed-job lifecycle: complete, fail/retry/failed, heartbeat, release, fencing."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from db_helpers import add_job, claim_one, db_now, expire_lease, fence, make_due, row

from ayb_jobs.backoff import backoff_seconds
from ayb_jobs.db import queries
from ayb_jobs.db.queries import Claimed, Failure
from ayb_jobs.models import JobState


async def test_enqueue_claim_complete(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    claimed = await claim_one(pool, "w1")
    assert await queries.complete_jobs(pool, [fence(claimed)], worker_id="w1") == {fence(claimed)}
    done = await queries.get_job(pool, job.id)
    assert done.state is JobState.COMPLETED and done.completed_at is not None
    assert (done.lease_until, done.worker_id, done.attempts) == (None, None, 1)


async def test_failed_attempt_is_retried_after_a_fractional_backoff(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, max_attempts=3)
    claimed = await claim_one(pool, "w1")
    delay = backoff_seconds(claimed.attempts, rand=lambda: 0.375)
    failure = Failure(fence(claimed), "ValueError: boom", delay)
    result = await queries.fail_jobs(pool, [failure], worker_id="w1")
    assert result == {failure.claimed: JobState.QUEUED}
    r = await row(pool, job.id)
    assert r["state"] == "queued" and r["last_error"] == "ValueError: boom"
    assert (r["lease_until"], r["worker_id"]) == (None, None)
    # One statement, one now(): run_at is exactly updated_at + the backoff, fractions included.
    assert r["run_at"] - r["updated_at"] == timedelta(seconds=5.375)
    assert await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w1") == []
    [entry] = (await queries.get_job(pool, job.id)).errors
    assert (entry["attempt"], entry["error"], entry["worker_id"]) == (1, "ValueError: boom", "w1")
    assert entry["at"]


async def test_attempts_exhausted_is_terminal_failed(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, max_attempts=3)
    states = []
    for _ in range(3):
        claimed = await claim_one(pool, "w1")
        got = await queries.fail_jobs(pool, [Failure(fence(claimed), f"err {claimed.attempts}", 2.5)],
                                      worker_id="w1")
        states.append(got[fence(claimed)])
        await make_due(pool, job.id)
    assert states == [JobState.QUEUED, JobState.QUEUED, JobState.FAILED]
    failed = await queries.get_job(pool, job.id)
    assert failed.state is JobState.FAILED and failed.attempts == 3 and failed.last_error == "err 3"
    assert [e["attempt"] for e in failed.errors] == [1, 2, 3]
    assert await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w1") == []


async def test_a_non_retryable_failure_fails_at_once(pool: asyncpg.Pool) -> None:
    await add_job(pool, max_attempts=5)
    claimed = await claim_one(pool)
    failure = Failure(fence(claimed), "InvalidPayload: bad", 1.0, retryable=False)
    got = await queries.fail_jobs(pool, [failure], worker_id="w1")
    assert got == {failure.claimed: JobState.FAILED}


async def test_error_history_keeps_the_last_ten(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, max_attempts=12)
    for _ in range(12):
        claimed = await claim_one(pool)
        await queries.fail_jobs(pool, [Failure(fence(claimed), f"e{claimed.attempts}", 0.0)], worker_id="w1")
        await make_due(pool, job.id)
    errors = (await queries.get_job(pool, job.id)).errors
    assert [e["attempt"] for e in errors] == list(range(3, 13))
    assert [e["error"] for e in errors] == [f"e{i}" for i in range(3, 13)]


async def test_last_error_is_stored_as_passed(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    claimed = await claim_one(pool)
    message = "RuntimeError: " + "x" * 10_000
    await queries.fail_jobs(pool, [Failure(fence(claimed), message, 1.0)], worker_id="w1")
    assert (await queries.get_job(pool, job.id)).last_error == message


async def test_heartbeat_extends_the_lease(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    claimed = await claim_one(pool, lease_s=5)
    extended = await queries.heartbeat_jobs(pool, [fence(claimed)], lease_s=120, worker_id="w1")
    assert extended == {fence(claimed)}
    lease = (await queries.get_job(pool, job.id)).lease_until
    assert lease - await db_now(pool) > timedelta(seconds=100)


async def test_release_gives_the_job_back_without_counting_the_attempt(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    first = await claim_one(pool)
    await queries.fail_jobs(pool, [Failure(fence(first), "e", 0.0)], worker_id="w1")
    await make_due(pool, job.id)
    claimed = await claim_one(pool)
    assert claimed.attempts == 2
    assert await queries.release_jobs(pool, [fence(claimed)], worker_id="w1") == {fence(claimed)}
    back = await queries.get_job(pool, job.id)
    assert back.state is JobState.QUEUED and back.attempts == 1
    assert (back.worker_id, back.lease_until) == (None, None)
    assert back.run_at <= await db_now(pool)
    assert [j.id for j in await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w2")] == [job.id]


async def test_release_after_a_lost_connection_waits_and_says_why(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    claimed = await claim_one(pool)
    released = await queries.release_jobs(pool, [fence(claimed)], worker_id="w1",
                                          reasons=["database connection lost"], delays_s=[7.25])
    assert released == {fence(claimed)}
    back = await queries.get_job(pool, job.id)
    assert back.state is JobState.QUEUED and back.attempts == 0
    assert back.last_error == "database connection lost"
    delay = (back.run_at - await db_now(pool)).total_seconds()
    assert 6.5 < delay <= 7.25
    assert await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w2") == []


async def _recover_and_reclaim(pool: asyncpg.Pool, stale_worker: str, new_worker: str):
    job = await add_job(pool, max_attempts=5)
    stale = await claim_one(pool, stale_worker)
    await expire_lease(pool, job.id)
    [recovered] = await queries.recover_expired(pool, jitter_s=0.0)
    assert recovered.state is JobState.QUEUED
    await make_due(pool, job.id)
    current = await claim_one(pool, new_worker)
    assert current.attempts == stale.attempts + 1
    return stale, current


async def _stale_writes_change_nothing(pool: asyncpg.Pool, stale: Claimed, worker: str) -> None:
    before = await row(pool, stale.id)
    assert await queries.complete_jobs(pool, [stale], worker_id=worker) == set()
    assert await queries.fail_jobs(pool, [Failure(stale, "late", 1.0)], worker_id=worker) == {}
    assert await queries.heartbeat_jobs(pool, [stale], lease_s=999, worker_id=worker) == set()
    assert await queries.release_jobs(pool, [stale], worker_id=worker) == set()
    assert await row(pool, stale.id) == before


async def test_a_stale_worker_cannot_touch_a_job_reclaimed_by_another(pool: asyncpg.Pool) -> None:
    stale, current = await _recover_and_reclaim(pool, "old", "new")
    await _stale_writes_change_nothing(pool, fence(stale), "old")
    # The current owner's fence still works.
    assert await queries.complete_jobs(pool, [fence(current)], worker_id="new") == {fence(current)}


async def test_the_same_worker_with_an_old_attempt_is_fenced_too(pool: asyncpg.Pool) -> None:
    stale, current = await _recover_and_reclaim(pool, "w1", "w1")
    await _stale_writes_change_nothing(pool, fence(stale), "w1")
    assert (await queries.get_job(pool, current.id)).state is JobState.RUNNING


async def test_another_workers_fence_does_not_match(pool: asyncpg.Pool) -> None:
    await add_job(pool)
    claimed = await claim_one(pool, "w1")
    await _stale_writes_change_nothing(pool, fence(claimed), "w2")


async def test_a_claim_from_before_an_admin_retry_stays_fenced_at_the_same_attempt(pool) -> None:
    job = await add_job(pool, max_attempts=1)
    stale = await claim_one(pool, "w1")
    await expire_lease(pool, job.id)
    [recovered] = await queries.recover_expired(pool, jitter_s=0.0)
    assert recovered.state is JobState.FAILED
    await queries.retry_job(pool, job.id)  # attempts back to 0
    current = await claim_one(pool, "w1")
    # Same job, worker and attempt as the stale claim: only the claim counter tells them apart.
    assert current.attempts == stale.attempts
    assert (await queries.get_job(pool, job.id)).worker_id == "w1"
    assert current.claim_seq == stale.claim_seq + 1
    await _stale_writes_change_nothing(pool, fence(stale), "w1")
    assert await queries.complete_jobs(pool, [fence(current)], worker_id="w1") == {fence(current)}


async def test_release_unheld_gives_back_only_this_workers_jobs_it_does_not_hold(pool: asyncpg.Pool) -> None:
    for _ in range(3):
        await add_job(pool)
    held, unheld = await claim_one(pool, "w1"), await claim_one(pool, "w1")
    other = await claim_one(pool, "w2")
    released = await queries.release_unheld(pool, "w1", [fence(held)])
    assert released == [unheld.id]
    back = await row(pool, unheld.id)
    assert (back["state"], back["attempts"], back["worker_id"]) == ("queued", 0, None)
    assert back["last_error"] == queries.UNHELD_REASON
    assert (await row(pool, held.id))["state"] == (await row(pool, other.id))["state"] == "running"
