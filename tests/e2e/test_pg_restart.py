"""The daemon survives a Postgres restart (docs/job-lifecycle.md, "Database outages").

A private cluster (pgcluster.py) is restarted with a fast shutdown while the real daemon process
works through a stream of jobs. Expected: the daemon never exits; its LISTEN connection comes back
(`listener_reconnected`) and NOTIFY wake-ups work again; every job ends `completed`, none is lost.

At-least-once: a job whose handler or outcome write was cut by the restart may run again — after a
release (the interrupted attempt is not counted, and its handler's write did not commit) or, in the
rare case of a lost claim reply, after lease recovery with a new attempt number. What must never
happen is two recorded runs of the same job with the same attempt: that would mean this daemon ran
one attempt twice (e.g. claimed a job it was already running, or completed it twice).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from pgcluster import PgCluster

from ayb_jobs import Client
from ayb_jobs.db.migrate import migrate_dsn
from ayb_jobs.errors import AybJobsError, DuplicateJob
from ayb_jobs.models import NewJob

T = TypeVar("T")
JOB_TYPE = "restart_probe"
BEFORE, AFTER, BATCH = 400, 200, 40
CONCURRENCY = 4  # x 20 ms per job: ~200 jobs/s, so the restart lands in the middle of the first 400

# The handler module the daemon imports (written to a temp dir on its PYTHONPATH). It records each
# run it starts; the row is written before the sleep so that a cut connection fails the handler
# before anything is recorded (the job is then released and re-run).
HANDLERS_SOURCE = f'''
import asyncio


async def probe(payload, ctx):
    await ctx.pool.execute("INSERT INTO runs (job_id, attempt) VALUES ($1, $2)", ctx.job_id, ctx.attempt)
    await asyncio.sleep(0.02)


def register(registry):
    registry.add("{JOB_TYPE}", probe, description="records each run (test_pg_restart)")
'''


@pytest.fixture
async def cluster() -> AsyncIterator[PgCluster]:
    c = await asyncio.to_thread(PgCluster.create)
    try:
        await c.start()
        await migrate_dsn(c.dsn())
        conn = await asyncpg.connect(c.dsn())
        try:
            await conn.execute("CREATE TABLE runs (job_id uuid NOT NULL, attempt int NOT NULL, "
                               "at timestamptz NOT NULL DEFAULT clock_timestamp())")
            # The default schedules could fire at the top of an hour and add unrelated jobs.
            await conn.execute("DELETE FROM _ayb_job_schedules")
        finally:
            await conn.close()
        yield c
    finally:
        await c.destroy()


async def fetchval(dsn: str, sql: str) -> Any:
    """A fresh connection per query: the test's own reads must not depend on a pool across restarts."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def until(check: Callable[[], Awaitable[T]], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            last = exc  # the server is restarting: keep waiting
        else:
            if last:
                return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not reached within {timeout}s (last: {last!r})")


async def enqueue_batches(client: Client, first: int, count: int) -> None:
    """Enqueue jobs first..first+count-1 in batches, retrying through an outage. Idempotency keys
    make a retry of a batch whose commit we did not hear about safe."""
    for start in range(first, first + count, BATCH):
        batch = [NewJob(JOB_TYPE, {"n": i}, idempotency_key=f"job-{i}")
                 for i in range(start, min(start + BATCH, first + count))]
        deadline = time.monotonic() + 30
        while True:
            try:
                await client.enqueue_many(batch)
                break
            except DuplicateJob:
                break
            except (AybJobsError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def all_completed(dsn: str) -> bool:
    """True once every job is completed. A job whose attempt failed during the outage (the pool's
    reconnect raised in its handler) is retried after a backoff, and with 60 s polling nothing would
    wake the poller when it falls due: nudge like an enqueuing application would, once a due job has
    waited 2 s (the normal flow never needs it)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute("SELECT pg_notify('ayb_jobs', '') FROM (SELECT 1 FROM _ayb_jobs WHERE "
                           "state = 'queued' AND run_at < now() - interval '2 seconds' LIMIT 1) due")
        done = await conn.fetchval("SELECT count(*) FROM _ayb_jobs WHERE type = $1 AND state = 'completed'",
                                   JOB_TYPE)
        return bool(done == BEFORE + AFTER)
    finally:
        await conn.close()


def job_story(daemon: Any, job_ids: list[Any]) -> str:
    """The daemon's log lines about these jobs, and its database errors (for failure messages)."""
    wanted = {str(i) for i in job_ids}
    lines = [r for r in daemon.records if r.get("job_id") in wanted or r.get("event") == "db_error"]
    return "\n".join(str(r)[:400] for r in lines)


def write_handlers(directory: Path) -> str:
    (directory / "restart_handlers.py").write_text(HANDLERS_SOURCE)
    return os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))


async def test_daemon_survives_postgres_restart(cluster: PgCluster, start_daemon: Callable[..., Any],
                                                tmp_path: Path) -> None:
    dsn = cluster.dsn()
    daemon = start_daemon(
        name="restart", url=dsn, PYTHONPATH=write_handlers(tmp_path),
        AYB_JOBS_HANDLERS='["restart_handlers:register"]', AYB_LOG_LEVEL="info",
        AYB_JOBS_WORKER_CONCURRENCY=str(CONCURRENCY),
        # Polling every 60 s: any quick pickup after the restart must come from NOTIFY.
        AYB_JOBS_POLL_INTERVAL_MS="60000",
        # Bounds the rare lost-claim-reply case (the job is recovered once its lease expires).
        AYB_JOBS_LEASE_DURATION_S="30",
    )
    await daemon.event("daemon_started", timeout=30)

    async with Client(dsn=dsn) as client:
        await enqueue_batches(client, 0, BEFORE)
        await until(lambda: fetchval(dsn, "SELECT count(*) >= 60 FROM runs"), 30, "first runs")
        done_before = await fetchval(dsn, f"SELECT count(*) FROM _ayb_jobs WHERE type = '{JOB_TYPE}' "
                                          "AND state = 'completed'")
        await cluster.restart()
        assert done_before < BEFORE, "the restart must land while jobs are still flowing"
        assert daemon.proc.poll() is None, daemon.tail()

        await enqueue_batches(client, BEFORE, AFTER)
        await daemon.event("listener_reconnected", timeout=30)
        await until(lambda: all_completed(dsn), 60, "every job completed")

        # Idle daemon, 60 s polling: a fresh job is picked up at once only through NOTIFY/LISTEN.
        probe = await client.enqueue(JOB_TYPE, {"probe": True})
        pickup = await until(lambda: fetchval(dsn, (
            "SELECT extract(epoch FROM last_run_at - created_at) FROM _ayb_jobs "
            f"WHERE id = '{probe.id}' AND state = 'completed'")), 10, "probe job completed")
        assert pickup < 1.0, f"pickup after the restart took {pickup:.3f}s: NOTIFY did not wake the daemon"

    conn = await asyncpg.connect(dsn)
    try:
        dupes = await conn.fetch(
            "SELECT job_id, attempt, count(*) FROM runs GROUP BY 1, 2 HAVING count(*) > 1")
        assert dupes == [], f"attempts run twice: {dupes}\n{job_story(daemon, [d['job_id'] for d in dupes])}"
        unrun = await conn.fetchval("SELECT count(*) FROM _ayb_jobs j WHERE type = $1 AND NOT EXISTS "
                                    "(SELECT 1 FROM runs r WHERE r.job_id = j.id)", JOB_TYPE)
        assert unrun == 0
        assert await conn.fetchval("SELECT count(*) FROM _ayb_jobs WHERE state <> 'completed'") == 0
    finally:
        await conn.close()

    assert daemon.proc.poll() is None, f"the daemon exited:\n{daemon.tail()}"
    assert daemon.events("core_task_died") == []
    assert daemon.events("daemon_start_failed") == []
