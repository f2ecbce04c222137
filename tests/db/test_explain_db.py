"""explain through JobService on the real database: the facts are read in one snapshot, the row-lock
probe sees another session's open FOR UPDATE, and each case of the contract gives its code."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import pytest
from db_helpers import add_job, claim_one, fence

from ayb_jobs.db import ops_queries, queries
from ayb_jobs.db.ops_queries import WorkerBeat
from ayb_jobs.db.queries import Failure
from ayb_jobs.errors import NotFound
from ayb_jobs.service import JobService


async def beat(pool: asyncpg.Pool, worker_id: str = "w-live", *, types=("test.job",), concurrency: int = 2,
               in_flight: int = 0) -> None:
    """A worker row as a daemon's presence loop writes it."""
    row = WorkerBeat(worker_id, "host", 1, "0", (), types, concurrency, in_flight)
    await ops_queries.upsert_worker(pool, row)


async def codes(service: JobService, job_id: UUID) -> list[str]:
    return [r["code"] for r in (await service.explain_job(job_id))["reasons"]]


async def reason(service: JobService, job_id: UUID, code: str) -> str:
    out = await service.explain_job(job_id)
    return next(r["message"] for r in out["reasons"] if r["code"] == code)


async def test_a_job_due_in_an_hour(
    service: JobService, pool: asyncpg.Pool
) -> None:
    await beat(pool)
    job = await add_job(pool, run_at=await pool.fetchval("SELECT now() + interval '1 hour'"))
    out = await service.explain_job(job.id)
    assert (out["id"], out["state"]) == (str(job.id), "queued")
    assert [r["code"] for r in out["reasons"]] == ["scheduled_in_future"]
    assert "(in 59m" in out["reasons"][0]["message"]


async def test_no_live_daemon_and_a_type_no_live_daemon_registers(
    service: JobService, pool: asyncpg.Pool
) -> None:
    job = await add_job(pool)
    assert await codes(service, job.id) == ["no_live_worker_for_queue"]
    await beat(pool, types=("other.type",))
    await beat(pool, "w-dead", types=("test.job",))
    await pool.execute("UPDATE _ayb_job_workers SET last_seen_at = now() - interval '31 seconds' "
                       "WHERE worker_id = 'w-dead'")
    assert await codes(service, job.id) == ["no_live_worker_with_handler"]
    assert "type 'test.job'" in await reason(service, job.id, "no_live_worker_with_handler")


async def test_all_slots_of_the_only_daemon_busy_and_the_jobs_ahead(
    service: JobService, pool: asyncpg.Pool
) -> None:
    await beat(pool, concurrency=2, in_flight=2)
    first, second = await add_job(pool), await add_job(pool)
    await pool.execute("UPDATE _ayb_jobs SET run_at = now() - interval '1 minute' WHERE id = $1", first.id)
    assert await codes(service, second.id) == ["all_workers_busy", "waiting_behind"]
    assert "1 due jobs are ahead" in await reason(service, second.id, "waiting_behind")
    assert await codes(service, first.id) == ["all_workers_busy"]


async def test_a_row_held_for_update_by_an_open_transaction(service: JobService, pool: asyncpg.Pool,
                                                           connect) -> None:
    await beat(pool)
    job = await add_job(pool)
    other = await connect()
    tx = other.transaction()
    await tx.start()
    await other.execute("SET application_name = 'stuck-report'")
    await other.fetchrow("SELECT id FROM _ayb_jobs WHERE id = $1 FOR UPDATE", job.id)
    pid = await other.fetchval("SELECT pg_backend_pid()")
    try:
        assert await codes(service, job.id) == ["locked_by_transaction"]
        text = await reason(service, job.id, "locked_by_transaction")
        assert f"pid {pid}" in text and "'stuck-report'" in text and "idle in transaction" in text
        # The probe waits for nothing and leaves the row to its holder.
        assert await other.fetchval("SELECT state FROM _ayb_jobs WHERE id = $1", job.id) == "queued"
    finally:
        await tx.rollback()
    assert await codes(service, job.id) == ["due"]


async def test_an_uncommitted_update_of_the_row_counts_as_locked(service: JobService, pool: asyncpg.Pool,
                                                                 connect) -> None:
    await beat(pool)
    job = await add_job(pool)
    other = await connect()
    async with other.transaction():
        await other.execute("UPDATE _ayb_jobs SET payload = '{\"x\": 1}' WHERE id = $1", job.id)
        assert await asyncio.wait_for(codes(service, job.id), 5) == ["locked_by_transaction"]


async def test_running_on_a_worker_that_is_gone_with_its_lease_not_expired(
    service: JobService, pool: asyncpg.Pool
) -> None:
    await beat(pool, "w-killed")
    await add_job(pool)
    running = await claim_one(pool, worker="w-killed", lease_s=300)
    assert "(alive, attempt 1 of 3)" in await reason(service, running.id, "running")
    await pool.execute("UPDATE _ayb_job_workers SET last_seen_at = now() - interval '40 seconds'")
    text = await reason(service, running.id, "running")
    assert "w-killed, which is gone (last seen 40s ago)" in text and "nothing to do but wait" in text
    await pool.execute("UPDATE _ayb_jobs SET lease_until = now() - interval '1 second' WHERE id = $1",
                       running.id)
    assert await codes(service, running.id) == ["lease_expired_awaiting_recovery"]


async def test_a_failed_job_gives_its_error_and_a_retry_in_backoff(
    service: JobService, pool: asyncpg.Pool
) -> None:
    await beat(pool)
    job = await add_job(pool, max_attempts=2)
    claimed = await claim_one(pool, worker="w-live")
    await queries.fail_jobs(pool, [Failure(fence(claimed), "ConnectionError: smtp down", 60.0)],
                            worker_id="w-live")
    assert await codes(service, job.id) == ["retry_backoff"]
    text = await reason(service, job.id, "retry_backoff")
    assert "attempt 1 of 2 failed: ConnectionError: smtp down" in text
    await pool.execute("UPDATE _ayb_jobs SET run_at = now() WHERE id = $1", job.id)
    claimed = await claim_one(pool, worker="w-live")
    await queries.fail_jobs(pool, [Failure(fence(claimed), "ConnectionError: smtp still down", 60.0)],
                            worker_id="w-live")
    assert await codes(service, job.id) == ["failed"]
    assert "failed after 2 of 2 attempts: ConnectionError: smtp still down" in await reason(
        service, job.id, "failed")


async def test_completed_and_canceled_and_unknown(
    service: JobService, pool: asyncpg.Pool
) -> None:
    job = await add_job(pool)
    await service.cancel_job(job.id)
    assert await codes(service, job.id) == ["canceled"]
    with pytest.raises(NotFound):
        await service.explain_job(UUID(int=5))
