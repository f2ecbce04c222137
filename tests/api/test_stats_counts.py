"""Queue counts from cheap reads: exact below the cap, estimated from table statistics above it."""

from __future__ import annotations

import asyncio
import time

from ayb_jobs.db import queries


async def _seed(pool) -> None:
    await pool.execute("""
        INSERT INTO _ayb_jobs (type, state, run_at) SELECT 'job_prune', 'queued', now() - interval '1 minute'
            FROM generate_series(1, 5);
        INSERT INTO _ayb_jobs (type, state, run_at) SELECT 'job_prune', 'queued', now() + interval '1 hour'
            FROM generate_series(1, 2);
        INSERT INTO _ayb_jobs (type, state, lease_until, worker_id, attempts)
            VALUES ('job_prune', 'running', now() + interval '5 minutes', 'w', 1);
        INSERT INTO _ayb_jobs (type, state, completed_at) SELECT 'job_prune', 'completed', now()
            FROM generate_series(1, 30000);
        INSERT INTO _ayb_jobs (type, state) SELECT 'job_prune', 'failed' FROM generate_series(1, 2);
    """)


async def test_small_states_are_exact_and_a_large_one_is_estimated_closely(pool) -> None:
    await _seed(pool)
    deadline = time.monotonic() + 15
    while True:  # the statistics system publishes the inserted rows within about a second
        stats = await queries.job_stats(pool)
        if abs(stats.completed - 30000) <= 300 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert (stats.queued, stats.scheduled, stats.running, stats.failed, stats.canceled) == (7, 2, 1, 2, 0)
    assert abs(stats.completed - 30000) <= 300, stats
    assert 59 <= stats.oldest_queued_age_sec < 120


async def test_the_count_reads_a_bounded_number_of_rows_however_large_the_table(pool) -> None:
    await _seed(pool)
    await pool.execute("VACUUM ANALYZE _ayb_jobs")
    async with pool.acquire() as conn:
        await conn.execute("SET max_parallel_workers_per_gather = 0")
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN ANALYZE " + queries.SQL["job_stats"]))
    # Every scan of _ayb_jobs stops at the cap (1000 rows): none walks the 30,000 completed jobs.
    rows = [int(part.split("rows=")[1].split()[0]) for part in plan.split("actual time=")[1:]]
    assert max(rows) <= 1000, plan
