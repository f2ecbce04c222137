"""The outcome statements of snooze, results and cancel of running jobs, fenced like every outcome."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
from db_helpers import add_job, claim_one, expire_lease, fence, row

from ayb_jobs.db import queries


async def test_snooze_queues_the_job_after_its_delay_without_counting_the_attempt(pool: asyncpg.Pool) -> None:
    job = await add_job(pool, max_attempts=1)
    claimed = await claim_one(pool, "w1")
    states = await queries.snooze_jobs(pool, [fence(claimed)], worker_id="w1", delays_s=[2.5])
    assert states == {fence(claimed): "queued"}
    r = await row(pool, job.id)
    assert (r["attempts"], r["snoozes"], r["worker_id"], r["lease_until"]) == (0, 1, None, None)
    assert r["run_at"] - r["updated_at"] == timedelta(seconds=2.5)  # both from the statement's now()
    assert r["last_error"] is None and json.loads(r["errors"]) == []


async def test_a_snooze_after_a_cancel_request_ends_the_job_canceled(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    claimed = await claim_one(pool, "w1")
    await queries.cancel_job(pool, job.id)  # running: only requested
    states = await queries.snooze_jobs(pool, [fence(claimed)], worker_id="w1", delays_s=[60])
    assert states == {fence(claimed): "canceled"}
    assert (await row(pool, job.id))["canceled_at"] is not None


async def test_snooze_and_cancel_are_fenced_like_every_outcome(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    stale = await claim_one(pool, "w1")
    await expire_lease(pool, job.id)
    await queries.recover_expired(pool, jitter_s=0)
    await pool.execute("UPDATE _ayb_jobs SET run_at = now() WHERE id = $1", job.id)
    await claim_one(pool, "w2")
    assert await queries.snooze_jobs(pool, [fence(stale)], worker_id="w1", delays_s=[1]) == {}
    assert await queries.cancel_running_jobs(pool, [fence(stale)], worker_id="w1", reason="x") == set()
    r = await row(pool, job.id)
    assert (r["state"], r["worker_id"], r["snoozes"]) == ("running", "w2", 0)


async def test_cancel_running_ends_canceled_with_the_attempt_counted_and_in_the_history(pool) -> None:
    job = await add_job(pool)
    claimed = await claim_one(pool, "w1")
    done = await queries.cancel_running_jobs(
        pool, [fence(claimed)], worker_id="w1", reason="canceled by admin"
    )
    assert done == {fence(claimed)}
    r = await row(pool, job.id)
    assert (r["state"], r["attempts"], r["last_error"]) == ("canceled", 1, "canceled by admin")
    assert [e["error"] for e in json.loads(r["errors"])] == ["canceled by admin"]


async def test_complete_stores_each_result_and_none_as_null(pool: asyncpg.Pool) -> None:
    a, b = await add_job(pool), await add_job(pool)
    ca, cb = await claim_one(pool, "w1"), await claim_one(pool, "w1")
    results = {ca.id: '{"sent":3}', cb.id: None}
    await queries.complete_jobs(pool, [fence(ca), fence(cb)], worker_id="w1", results=[results[ca.id], None])
    assert json.loads((await row(pool, ca.id))["result"]) == {"sent": 3}
    assert (await row(pool, cb.id))["result"] is None
    assert {a.id, b.id} == {ca.id, cb.id}


async def test_the_heartbeat_reports_the_jobs_an_operator_asked_to_cancel(pool: asyncpg.Pool) -> None:
    await add_job(pool), await add_job(pool)
    ca, cb = await claim_one(pool, "w1"), await claim_one(pool, "w1")
    await queries.cancel_job(pool, cb.id)
    requested: set = set()
    extended = await queries.heartbeat_jobs(
        pool, [fence(ca), fence(cb)], lease_s=30, worker_id="w1", cancel_requested=requested
    )
    assert extended == {fence(ca), fence(cb)} and requested == {fence(cb)}


async def test_a_job_claimed_with_a_pending_cancel_request_ends_canceled_without_running(pool) -> None:
    from ayb_jobs.handlers import Registry
    from ayb_jobs.testing import Worker

    ran: list[str] = []

    async def handler(payload, ctx) -> None:
        ran.append(str(ctx.job_id))

    registry = Registry()
    registry.add("test.job", handler)
    job = await add_job(pool)
    await claim_one(pool, "dead-daemon")
    await queries.cancel_job(pool, job.id)  # requested; then its daemon dies and recovery requeues it
    await expire_lease(pool, job.id)
    await queries.recover_expired(pool, jitter_s=0)
    await pool.execute("UPDATE _ayb_jobs SET run_at = now() WHERE id = $1", job.id)
    async with Worker(pool, registry) as worker:
        assert await worker.drain() == {"canceled": 1}
    assert ran == [] and (await row(pool, job.id))["state"] == "canceled"
