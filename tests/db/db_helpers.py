"""Small helpers shared by the database tests. Time is moved by writing timestamps into the past."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ayb_jobs import fire_policy
from ayb_jobs.db import queries
from ayb_jobs.db.queries import Claimed
from ayb_jobs.models import ClaimedJob, Job, NewJob

TYPE = "test.job"


async def add_job(db: Any, job_type: str = TYPE, **kw: Any) -> Job:
    [job] = await queries.enqueue_jobs(db, [NewJob(job_type, **kw)], default_max_attempts=3)
    return job


async def add_jobs(db: Any, n: int, job_type: str = TYPE, **kw: Any) -> list[Job]:
    jobs = [NewJob(job_type, {"i": i}, **kw) for i in range(n)]
    return await queries.enqueue_jobs(db, jobs, default_max_attempts=3)


async def claim_one(db: Any, worker: str = "w1", lease_s: float = 30) -> Job:
    """Claim the one due job; returns its whole row as the claim left it (lease, worker, ...)."""
    [job] = await queries.claim_jobs(db, limit=1, lease_s=lease_s, worker_id=worker)
    return await queries.get_job(db, job.id)


def fence(job: Job | ClaimedJob) -> Claimed:
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


async def advance_due(db: Any, clock: Any = None) -> list[Job]:
    """One scheduler pass: decide every due schedule's slots and enqueue its jobs (as the daemon does)."""
    plans = [fire_policy.plan(due, due.now) for due in await queries.due_schedules(db, clock=clock)]
    return await jobs_of_fires(db, await queries.fire_schedules(db, plans, clock=clock))


async def fire_one(db: Any, due: queries.DueSchedule, *, next_run_at: Any) -> Job | None:
    """Fire one read due schedule's slot (next_run_at) as on time; None when it was not taken."""
    plan = queries.FirePlan(due, next_run_at, [(due.next_run_at, "enqueue")])
    jobs = await jobs_of_fires(db, await queries.fire_schedules(db, [plan]))
    return jobs[0] if jobs else None


async def jobs_of_fires(db: Any, fires: list[queries.Fire]) -> list[Job]:
    ids = [f.job_id for f in fires if f.job_id is not None]
    return [await queries.get_job(db, i) for i in ids]


async def db_now(db: Any):
    return await db.fetchval("SELECT now()")


async def row(db: Any, job_id: UUID) -> dict[str, Any]:
    return dict(await db.fetchrow("SELECT * FROM _ayb_jobs WHERE id = $1", job_id))
