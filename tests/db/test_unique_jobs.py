"""Unique-while-active keys: one queued or running job per key; the key is free once it finished.

Distinct from idempotency keys, which stay taken forever (DuplicateJob / 409).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from db_helpers import TYPE, add_job, claim_one, fence

from ayb_jobs import Client
from ayb_jobs.db import queries
from ayb_jobs.errors import Conflict, DuplicateJob
from ayb_jobs.models import JobState, NewJob


async def count(pool: asyncpg.Pool, key: str) -> int:
    return await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE unique_key = $1", key)


async def test_a_second_enqueue_with_an_active_unique_key_returns_the_existing_job(pool) -> None:
    first = await add_job(pool, unique_key="report:42")
    assert first.unique_key == "report:42" and not first.deduplicated
    again = await add_job(pool, payload={"other": True}, unique_key="report:42")
    assert again.deduplicated and again.id == first.id and again.payload == {}
    assert await count(pool, "report:42") == 1


async def test_twenty_concurrent_enqueues_with_one_unique_key_create_one_job(pool) -> None:
    jobs = await asyncio.gather(*(add_job(pool, unique_key="sync-user-7") for _ in range(20)))
    assert len({j.id for j in jobs}) == 1
    assert sum(not j.deduplicated for j in jobs) == 1
    assert await count(pool, "sync-user-7") == 1


async def test_the_key_is_held_while_running_and_free_again_once_the_job_completed(pool) -> None:
    first = await add_job(pool, unique_key="k")
    running = await claim_one(pool)
    assert (await add_job(pool, unique_key="k")).id == first.id  # running still holds it
    assert await queries.complete_jobs(pool, [fence(running)], worker_id="w1") == {fence(running)}
    second = await add_job(pool, unique_key="k")
    assert not second.deduplicated and second.id != first.id
    assert await count(pool, "k") == 2


async def test_a_batch_with_one_key_twice_inserts_the_first_and_returns_it_for_the_second(pool) -> None:
    a, plain, b = await queries.enqueue_jobs(
        pool,
        [NewJob(TYPE, {"n": 1}, unique_key="u"), NewJob(TYPE), NewJob(TYPE, {"n": 2}, unique_key="u")],
        default_max_attempts=3,
    )
    assert not a.deduplicated and not plain.deduplicated and b.deduplicated
    assert b.id == a.id and b.payload == {"n": 1}


async def test_inside_a_callers_transaction_the_dedup_sees_the_callers_own_job(pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        first = await add_job(conn, unique_key="t")
        again = await add_job(conn, unique_key="t")
    assert again.deduplicated and again.id == first.id


async def test_client_enqueue_with_unique_key_marks_the_returned_job_deduplicated(pool) -> None:
    client = Client(pool=pool)
    first = await client.enqueue("anything", unique_key="c")
    again = await client.enqueue("anything", unique_key="c")
    assert (again.id, again.deduplicated, first.deduplicated) == (first.id, True, False)


async def test_idempotency_key_still_wins_over_unique_key(pool) -> None:
    first = await add_job(pool, idempotency_key="i", unique_key="u")
    await queries.complete_jobs(pool, [fence(await claim_one(pool))], worker_id="w1")
    with pytest.raises(DuplicateJob) as caught:
        await add_job(pool, idempotency_key="i", unique_key="u")
    assert caught.value.existing_job_id == str(first.id)


async def test_twenty_concurrent_enqueues_with_one_idempotency_key_still_give_one_job_and_duplicates(
    pool,
) -> None:
    results = await asyncio.gather(
        *(add_job(pool, idempotency_key="once") for _ in range(20)), return_exceptions=True
    )
    jobs = [r for r in results if not isinstance(r, BaseException)]
    duplicates = [r for r in results if isinstance(r, DuplicateJob)]
    assert len(jobs) == 1 and len(duplicates) == 19
    assert {d.existing_job_id for d in duplicates} == {str(jobs[0].id)}


async def test_retrying_a_failed_job_whose_key_is_held_again_is_a_conflict(pool) -> None:
    first = await add_job(pool, unique_key="r", max_attempts=1)
    claimed = await claim_one(pool)
    await queries.fail_jobs(pool, [queries.Failure(fence(claimed), "boom", 0)], worker_id="w1")
    assert (await queries.get_job(pool, first.id)).state is JobState.FAILED
    await add_job(pool, unique_key="r")
    with pytest.raises(Conflict, match="same unique key is already queued or running"):
        await queries.retry_job(pool, first.id)
