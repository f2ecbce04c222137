"""Two daemons draining one queue: every job runs exactly once between them (at least once by
contract, and no duplicate in a clean run)."""

from __future__ import annotations

import signal

from e2e_harness import poll_until

from ayb_jobs import Client
from ayb_jobs.models import NewJob

JOBS = 5000


async def test_two_daemons_drain_5000_jobs_without_duplicates(db, db_url, start_daemon):
    env = {"AYB_JOBS_WORKER_CONCURRENCY": "16", "AYB_DATABASE_POOL_MAX_SIZE": "20", "AYB_LOG_LEVEL": "info"}
    a, b = start_daemon(name="a", **env), start_daemon(name="b", **env)
    await a.event("daemon_started")
    await b.event("daemon_started")

    async with Client(dsn=db_url) as client:
        jobs = await client.enqueue_many(NewJob("record", {"marker": str(i)}) for i in range(JOBS))
    assert len(jobs) == JOBS

    await poll_until(lambda: db.fetchval("SELECT count(*) = $1 FROM _ayb_jobs WHERE state = 'completed'",
                                         JOBS), timeout=60, every=0.2, what=f"{JOBS} completed jobs")
    # A second run of any job would hit e2e_runs' primary key and show up as a failed attempt.
    assert await db.fetchval("SELECT count(*) FROM e2e_runs") == JOBS
    assert await db.fetchval(
        "SELECT count(*) FROM _ayb_jobs WHERE attempts <> 1 OR last_error IS NOT NULL") == 0
    per_worker = await db.fetch("SELECT worker_id, count(*) AS n FROM e2e_runs GROUP BY worker_id")
    assert len(per_worker) == 2, "both daemons should have taken a share"
    for d in (a, b):
        assert not d.events("job_failed") and not d.events("job_retry_scheduled")
        assert not d.events("job_lease_lost")

    for d in (a, b):
        d.signal(signal.SIGTERM)
    for d in (a, b):
        await d.expect_exit(0)
