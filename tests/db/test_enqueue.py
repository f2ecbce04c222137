"""Enqueue: defaults, batches, idempotency keys as DuplicateJob, the wake-up NOTIFY."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from db_helpers import TYPE, add_job, add_jobs

from ayb_jobs.db import queries
from ayb_jobs.errors import DuplicateJob, UnknownJobType
from ayb_jobs.models import JobState, NewJob
from ayb_jobs.service import JobService


async def test_enqueue_inserts_a_queued_job_with_defaults(pool: asyncpg.Pool) -> None:
    before = await pool.fetchval("SELECT now()")
    job = await add_job(pool, payload={"a": 1})
    assert job.state is JobState.QUEUED
    assert (job.type, job.payload, job.attempts, job.max_attempts) == (TYPE, {"a": 1}, 0, 3)
    assert job.run_at >= before and job.errors == [] and job.worker_id is None
    assert (await queries.get_job(pool, job.id)).payload == {"a": 1}


async def test_enqueue_batch_keeps_order_and_options(pool: asyncpg.Pool) -> None:
    at = await pool.fetchval("SELECT now() + interval '1 hour'")
    jobs = await queries.enqueue_jobs(pool, [
        NewJob("a", {"n": 1}), NewJob("b", {"n": 2}, run_at=at, max_attempts=7, idempotency_key="k"),
    ], default_max_attempts=5)
    assert [j.type for j in jobs] == ["a", "b"]
    assert (jobs[0].max_attempts, jobs[1].max_attempts) == (5, 7)
    assert jobs[1].run_at == at and jobs[1].idempotency_key == "k"


async def test_duplicate_idempotency_key_names_the_existing_job(pool: asyncpg.Pool) -> None:
    first = await add_job(pool, idempotency_key="order-1")
    with pytest.raises(DuplicateJob) as caught:
        await add_job(pool, idempotency_key="order-1")
    assert caught.value.existing_job_id == str(first.id)
    assert str(first.id) in caught.value.message and "order-1" in caught.value.message
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs") == 1


async def test_a_batch_with_a_duplicate_inserts_nothing_from_a_pool(pool: asyncpg.Pool) -> None:
    first = await add_job(pool, idempotency_key="k1")
    with pytest.raises(DuplicateJob) as caught:
        await queries.enqueue_jobs(
            pool, [NewJob(TYPE, idempotency_key="k0"), NewJob(TYPE, idempotency_key="k1")],
            default_max_attempts=3)
    assert caught.value.existing_job_id == str(first.id)
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs") == 1


async def test_duplicate_key_within_one_batch_is_a_duplicate(pool: asyncpg.Pool) -> None:
    with pytest.raises(DuplicateJob):
        await queries.enqueue_jobs(pool, [NewJob(TYPE, idempotency_key="same")] * 2, default_max_attempts=3)
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs") == 0


async def test_duplicate_inside_a_callers_transaction_does_not_abort_it(pool: asyncpg.Pool) -> None:
    first = await add_job(pool, idempotency_key="dup")
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("CREATE TABLE business (x int)")
            with pytest.raises(DuplicateJob) as caught:
                await add_job(conn, idempotency_key="dup")
            # The transaction is still usable: a following statement works and it commits.
            await conn.execute("INSERT INTO business VALUES (1)")
            await add_job(conn, idempotency_key="fresh")
    assert caught.value.existing_job_id == str(first.id)
    assert await pool.fetchval("SELECT count(*) FROM business") == 1
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs") == 2


async def test_enqueue_notifies_at_commit(pool: asyncpg.Pool, connect) -> None:
    listener = await connect()
    woke = asyncio.Event()
    await listener.add_listener("ayb_jobs", lambda *_: woke.set())
    async with pool.acquire() as conn, conn.transaction():
        await add_job(conn)
        await asyncio.sleep(0)  # let the listener run; nothing may arrive before commit
        assert not woke.is_set()
    await asyncio.wait_for(woke.wait(), 5)


async def test_future_job_counts_as_scheduled_not_due(pool: asyncpg.Pool) -> None:
    at = await pool.fetchval("SELECT now()") + timedelta(minutes=5)
    await add_job(pool, run_at=at)
    assert await queries.claim_jobs(pool, limit=10, lease_s=30, worker_id="w") == []


async def test_service_rejects_unknown_types_naming_the_registered_ones(service: JobService) -> None:
    with pytest.raises(UnknownJobType, match=r"unknown job type 'nope'; registered: .*job_prune"):
        await service.enqueue("nope")


async def test_service_enqueue_uses_its_default_max_attempts(pool: asyncpg.Pool, registry) -> None:
    svc = JobService(pool, registry, default_max_attempts=6)
    job = await svc.enqueue("job_prune", {"completed_retention_hours": 1})
    assert job.max_attempts == 6 and job.type == "job_prune"


async def test_enqueue_many_rows_in_one_call(pool: asyncpg.Pool) -> None:
    jobs = await add_jobs(pool, 500)
    assert len({j.id for j in jobs}) == 500
    assert [j.payload["i"] for j in jobs] == list(range(500))


async def test_the_returned_jobs_are_the_stored_rows_field_by_field(pool: asyncpg.Pool) -> None:
    # enqueue builds the Jobs from what it sent plus the new ids and the statement's now(),
    # without reading the rows back: each must equal the row as a read returns it.
    at = await pool.fetchval("SELECT now() + interval '1 hour'")
    schedule_id = await pool.fetchval("SELECT id FROM _ayb_job_schedules LIMIT 1")
    jobs = await queries.enqueue_jobs(pool, [
        NewJob("a"), NewJob("b", {"n": [1, "x"]}, run_at=at, max_attempts=7, idempotency_key="k",
                            schedule_id=schedule_id),
        NewJob("c", {}, max_attempts=1),
    ], default_max_attempts=4)
    for job in jobs:
        assert job == await queries.get_job(pool, job.id)


async def test_a_batch_without_keys_from_a_pool_is_stored_and_notifies(pool: asyncpg.Pool,
                                                                               connect) -> None:
    listener = await connect()
    woke = asyncio.Event()
    await listener.add_listener("ayb_jobs", lambda *_: woke.set())
    jobs = await queries.enqueue_jobs(pool, [NewJob(TYPE, {"i": i}) for i in range(3)],
                                      default_max_attempts=3)
    await asyncio.wait_for(woke.wait(), 5)
    assert [j.payload["i"] for j in jobs] == [0, 1, 2]
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE payload ? 'i'") == 3
