"""Admin operations on jobs: cancel, retry, list, stats."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest
from db_helpers import add_job, claim_one, db_now, fence

from ayb_jobs.db import queries
from ayb_jobs.db.queries import Failure
from ayb_jobs.errors import Conflict, NotFound
from ayb_jobs.models import JobState
from ayb_jobs.service import JobService

UNKNOWN = UUID("00000000-0000-0000-0000-000000000001")


async def _failed_job(pool: asyncpg.Pool):
    job = await add_job(pool, max_attempts=1)
    claimed = await claim_one(pool)
    await queries.fail_jobs(pool, [Failure(fence(claimed), "boom", 1.0)], worker_id="w1")
    return job


async def test_cancel_a_queued_job(service: JobService, pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    canceled = await service.cancel_job(job.id)
    assert canceled.state is JobState.CANCELED and canceled.canceled_at is not None
    assert await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w") == []


async def test_cancel_of_a_running_job_requests_it_and_notifies_the_control_channel(
    service: JobService, pool: asyncpg.Pool, connect,
) -> None:
    job = await add_job(pool)
    await claim_one(pool)
    listener = await connect()
    heard: list[str] = []
    await listener.add_listener("ayb_jobs_control", lambda *args: heard.append(args[3]))
    requested = await service.cancel_job(job.id)
    assert requested.state is JobState.RUNNING and requested.cancel_requested_at is not None
    again = await service.cancel_job(job.id)  # asking twice keeps the first request's time
    assert again.cancel_requested_at == requested.cancel_requested_at
    await listener.fetchval("SELECT 1")  # notifications are delivered before the next reply
    assert heard == [f"cancel {job.id}", f"cancel {job.id}"]


async def test_cancel_refuses_finished_jobs(service: JobService, pool: asyncpg.Pool) -> None:
    failed = await _failed_job(pool)
    with pytest.raises(Conflict, match="is failed"):
        await service.cancel_job(failed.id)


async def test_cancel_and_retry_of_an_unknown_job_is_not_found(service: JobService) -> None:
    with pytest.raises(NotFound):
        await service.cancel_job(UNKNOWN)
    with pytest.raises(NotFound):
        await service.retry_job(UNKNOWN)
    with pytest.raises(NotFound):
        await service.get_job(UNKNOWN)


async def test_retry_a_failed_job_keeps_its_error_history(service: JobService, pool: asyncpg.Pool) -> None:
    job = await _failed_job(pool)
    retried = await service.retry_job(job.id)
    assert retried.state is JobState.QUEUED and retried.attempts == 0
    assert retried.run_at <= await db_now(pool) and retried.run_at == retried.updated_at
    assert [e["error"] for e in retried.errors] == ["boom"]
    assert (retried.lease_until, retried.worker_id) == (None, None)
    assert [j.id for j in await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w")] == [job.id]


async def test_retry_a_canceled_job(service: JobService, pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    await service.cancel_job(job.id)
    retried = await service.retry_job(job.id)
    assert retried.state is JobState.QUEUED and retried.canceled_at is None


async def test_retry_refuses_queued_running_and_completed(service: JobService, pool: asyncpg.Pool) -> None:
    queued = await add_job(pool, run_at=await db_now(pool) + timedelta(hours=1))
    with pytest.raises(Conflict, match="is queued"):
        await service.retry_job(queued.id)
    running = await add_job(pool)
    claimed = await claim_one(pool)
    with pytest.raises(Conflict, match="is running"):
        await service.retry_job(running.id)
    await queries.complete_jobs(pool, [fence(claimed)], worker_id="w1")
    with pytest.raises(Conflict, match="is completed"):
        await service.retry_job(running.id)


async def _seed_for_listing(pool: asyncpg.Pool) -> list:
    """Five jobs with distinct created_at (oldest first): types a,b,a,b,a; the second one canceled."""
    jobs = [await add_job(pool, job_type) for job_type in ("a", "b", "a", "b", "a")]
    for age, job in zip(range(5, 0, -1), jobs, strict=True):
        await pool.execute(
            "UPDATE _ayb_jobs SET created_at = now() - make_interval(mins => $2) WHERE id = $1", job.id, age)
    await queries.cancel_job(pool, jobs[1].id)
    return jobs


async def test_list_newest_first_with_total_and_paging(service: JobService, pool: asyncpg.Pool) -> None:
    jobs = await _seed_for_listing(pool)
    page, total = await service.list_jobs(limit=2, offset=0)
    assert total == 5 and [j.id for j in page] == [jobs[4].id, jobs[3].id]
    page, total = await service.list_jobs(limit=2, offset=4)
    assert total == 5 and [j.id for j in page] == [jobs[0].id]


async def test_list_filters_by_state_and_type(service: JobService, pool: asyncpg.Pool) -> None:
    jobs = await _seed_for_listing(pool)
    page, total = await service.list_jobs(job_type="a")
    assert total == 3 and [j.id for j in page] == [jobs[4].id, jobs[2].id, jobs[0].id]
    page, total = await service.list_jobs(state="canceled")
    assert total == 1 and [j.id for j in page] == [jobs[1].id]
    page, total = await service.list_jobs(state="queued", job_type="b", limit=1)
    assert total == 1 and [j.id for j in page] == [jobs[3].id]
    assert await service.list_jobs(state="failed") == ([], 0)


async def test_stats_counts_each_state_and_the_scheduled(service: JobService, pool: asyncpg.Pool) -> None:
    future = await db_now(pool) + timedelta(hours=1)
    await add_job(pool, run_at=future)
    await _failed_job(pool)
    await add_job(pool)
    await claim_one(pool)
    canceled = await add_job(pool)
    await service.cancel_job(canceled.id)
    due = await add_job(pool)
    await pool.execute("UPDATE _ayb_jobs SET run_at = now() - interval '100 seconds' WHERE id = $1", due.id)
    s = await service.stats()
    assert (s.queued, s.running, s.completed, s.failed, s.canceled, s.scheduled) == (2, 1, 0, 1, 1, 1)
    # The age of the oldest *due* job; the future one does not count.
    assert 100 <= s.oldest_queued_age_sec < 110


async def test_stats_age_is_zero_when_only_future_jobs_are_queued(service: JobService,
                                                                   pool: asyncpg.Pool) -> None:
    await add_job(pool, run_at=await db_now(pool) + timedelta(hours=1))
    s = await service.stats()
    assert (s.queued, s.scheduled, s.oldest_queued_age_sec) == (1, 1, 0.0)


async def test_stats_of_an_empty_queue(service: JobService) -> None:
    s = await service.stats()
    assert s.to_api() == {"queued": 0, "running": 0, "completed": 0, "failed": 0, "canceled": 0,
                          "scheduled": 0, "oldestQueuedAgeSec": 0.0}


async def test_active_counts_read_only_the_partial_indexes(pool: asyncpg.Pool) -> None:
    """systemd's STATUS line runs every few seconds: it must count queued/running jobs without
    scanning the (much larger) finished ones."""
    await pool.execute("INSERT INTO _ayb_jobs (type, state, completed_at) "
                       "SELECT 'job_prune', 'completed', now() FROM generate_series(1, 20000)")
    await add_job(pool)
    await add_job(pool)
    await claim_one(pool)
    await pool.execute("ANALYZE _ayb_jobs")
    assert await queries.active_counts(pool) == (1, 1)
    plan = "\n".join(r[0] for r in await pool.fetch("EXPLAIN " + queries.SQL["active_counts"], 10))
    # Either partial index over queued rows will do (the claim's or the run_at one).
    assert "idx_ayb_jobs_next_due" in plan or "idx_ayb_jobs_queue_claim" in plan
    assert "idx_ayb_jobs_lease" in plan and "Seq Scan" not in plan


async def test_active_counts_stop_at_their_cap_so_a_deep_queue_costs_no_more(pool: asyncpg.Pool) -> None:
    """Counted under the watchdog ping's timeout: a backlog must not make the count take longer."""
    cap = queries.ACTIVE_COUNT_CAP
    await pool.execute("INSERT INTO _ayb_jobs (type) SELECT 't' FROM generate_series(1, $1)", cap + 500)
    assert await queries.active_counts(pool) == (cap, 0)


def test_a_count_at_the_cap_shows_as_at_least_in_the_status_line() -> None:
    from ayb_jobs.runtime.daemon import _at_least

    assert (_at_least(queries.ACTIVE_COUNT_CAP), _at_least(7)) == (f"{queries.ACTIVE_COUNT_CAP}+", "7")
