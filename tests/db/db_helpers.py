"""Small helpers shared by the database tests. Time is moved by writing timestamps into the past."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ayb_jobs import cron
from ayb_jobs.db import queries
from ayb_jobs.db.queries import Claimed
from ayb_jobs.models import Job, NewJob

TYPE = "test.job"


async def add_job(db: Any, job_type: str = TYPE, **kw: Any) -> Job:
    [job] = await queries.enqueue_jobs(db, [NewJob(job_type, **kw)], default_max_attempts=3)
    return job


async def add_jobs(db: Any, n: int, job_type: str = TYPE, **kw: Any) -> list[Job]:
    jobs = [NewJob(job_type, {"i": i}, **kw) for i in range(n)]
    return await queries.enqueue_jobs(db, jobs, default_max_attempts=3)


async def claim_one(db: Any, worker: str = "w1", lease_s: float = 30) -> Job:
    [job] = await queries.claim_jobs(db, limit=1, lease_s=lease_s, worker_id=worker)
    return job


def fence(job: Job) -> Claimed:
    return Claimed.of(job)


async def make_due(db: Any, job_id: UUID) -> None:
    """Let a retried job's backoff pass."""
    await db.execute("UPDATE _ayb_jobs SET run_at = now() - interval '1 second' WHERE id = $1", job_id)


async def expire_lease(db: Any, job_id: UUID) -> None:
    await db.execute("UPDATE _ayb_jobs SET lease_until = now() - interval '1 second' WHERE id = $1", job_id)


async def make_schedule_due(db: Any, schedule_id: UUID) -> None:
    await db.execute(
        "UPDATE _ayb_job_schedules SET next_run_at = now() - interval '1 second' WHERE id = $1", schedule_id
    )


async def advance_due(db: Any) -> list[Job]:
    """One scheduler tick: advance every due schedule and enqueue its job (as the daemon does)."""
    enqueued = []
    for due in await queries.due_schedules(db):
        nxt = cron.next_fire_after(due.cron_expr, due.timezone, due.now)
        job = await queries.advance_and_enqueue(db, due, next_run_at=nxt)
        if job is not None:
            enqueued.append(job)
    return enqueued


async def db_now(db: Any):
    return await db.fetchval("SELECT now()")


async def row(db: Any, job_id: UUID) -> dict[str, Any]:
    return dict(await db.fetchrow("SELECT * FROM _ayb_jobs WHERE id = $1", job_id))
