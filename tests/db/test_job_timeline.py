"""The dashboard's timeline query: right counts, and read through indexes on a table of many rows."""

from __future__ import annotations

import json

import asyncpg

from ayb_jobs.db.sql import SQL


def _nodes(plan: object) -> list[dict]:
    if isinstance(plan, dict):
        return [plan, *(n for v in plan.values() for n in _nodes(v))]
    if isinstance(plan, list):
        return [n for v in plan for n in _nodes(v)]
    return []


async def test_timeline_reads_only_the_window_through_partial_indexes(pool: asyncpg.Pool) -> None:
    """200,000 jobs finished over two weeks, a few in the last hour: the plan scans no table and
    its index scans return only the window's rows (plus the live queue)."""
    await pool.execute(
        """INSERT INTO _ayb_jobs (type, state, completed_at, updated_at)
           SELECT 't' || (i % 7), 'completed', now() - make_interval(mins => i % 20000), now()
           FROM generate_series(1, 180000) i""")
    await pool.execute(
        """INSERT INTO _ayb_jobs (type, state, updated_at)
           SELECT 't' || (i % 5), 'failed', now() - make_interval(mins => i % 20000)
           FROM generate_series(1, 20000) i""")
    await pool.execute("INSERT INTO _ayb_jobs (type) SELECT 't1' FROM generate_series(1, 500)")
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE _ayb_jobs")
        await conn.execute("PREPARE timeline_plan(int) AS " + SQL["job_timeline"])
        # Six executions, so the sixth may be the generic plan a long-lived connection ends up with.
        for _ in range(5):
            await conn.fetch("EXECUTE timeline_plan(60)")
        plan = json.loads(await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE timeline_plan(60)"))
        await conn.execute("DEALLOCATE timeline_plan")
    nodes = _nodes(plan)
    shown = json.dumps(plan, indent=1)
    assert not [n for n in nodes if n.get("Node Type") == "Seq Scan"], shown
    used = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert {"idx_ayb_jobs_completed_at", "idx_ayb_jobs_failed_updated"} <= used, shown
    rows_from_indexes = sum(n["Actual Rows"] for n in nodes if "Index Name" in n)
    # 60 minutes of 180,000/20,000 rows spread over 20,000 minutes, and the 500 queued jobs.
    assert rows_from_indexes < 500 + 60 * 10 + 60 * 2 + 100, shown
