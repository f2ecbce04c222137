"""The queue's statements on a deep queue read the claim index in order and stop, never sort or
aggregate every queued row.

A sort under the claim's row lock cannot be a top-N sort, so it sorts every queued row: the backlog
would slow the queue exactly when it needs to be fast. The planner's choice depends on its
statistics, so the plans are checked as a burst of enqueues leaves them (never taken, or taken
before the burst), after ANALYZE, and as the generic plan a long-lived prepared statement may
switch to.
"""

from __future__ import annotations

import json

import asyncpg

from ayb_jobs.db.sql import SQL

DEPTH = 300_000
# As a batch enqueue writes them: a thousand jobs share each run_at.
BURST = ("INSERT INTO _ayb_jobs (type, run_at) SELECT 't', now() - interval '1 day' "
         "+ make_interval(secs => i / 1000) FROM generate_series(1, $1) i")


def _nodes(plan: object) -> list[dict]:
    if isinstance(plan, dict):
        return [plan, *(n for v in plan.values() for n in _nodes(v))]
    if isinstance(plan, list):
        return [n for v in plan for n in _nodes(v)]
    return []


async def _plan(conn: asyncpg.Connection, name: str, types: str = "", args: str = "") -> list[dict]:
    """The executed plan of one statement of queries.sql; rolled back, so the queue stays as it is."""
    await conn.execute(f"PREPARE p{types} AS " + SQL[name])
    tx = conn.transaction()
    await tx.start()
    try:
        raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE p{args}")
    finally:
        await tx.rollback()
        await conn.execute("DEALLOCATE p")
    return json.loads(raw)


async def _assert_claim_reads_the_index_in_order(conn: asyncpg.Connection, limit: int) -> None:
    plan = await _plan(conn, "claim_jobs", "(int, float8, text)", f"({limit}, 30, 'w')")
    shown = json.dumps(plan, indent=1)
    [picked] = [n for n in _nodes(plan) if n.get("Subplan Name") == "CTE picked"]
    assert not {n.get("Node Type") for n in _nodes(picked)} & {"Sort", "Incremental Sort"}, shown
    [scan] = [n for n in _nodes(picked) if n.get("Relation Name") == "_ayb_jobs"]
    assert (scan["Node Type"], scan["Index Name"]) == ("Index Scan", "idx_ayb_jobs_claimable"), shown
    assert scan["Actual Rows"] <= limit, shown
    # The rows are then found by primary key: no scan of the table, no hash of it.
    assert not {n.get("Node Type") for n in _nodes(plan)} & {"Seq Scan", "Hash Join"}, shown
    assert plan[0]["Plan"]["Actual Rows"] == limit, shown


async def _assert_reads_at_most(conn: asyncpg.Connection, name: str, rows: int, *prepare: str) -> None:
    """No scan of the statement reads more than `rows` rows (a gauge counts up to its cap)."""
    plan = await _plan(conn, name, *prepare)
    scans = [n for n in _nodes(plan) if n.get("Relation Name") == "_ayb_jobs"]
    assert scans and max(n["Actual Rows"] for n in scans) <= rows, json.dumps(plan, indent=1)


async def test_the_claim_reads_the_index_in_order_before_any_statistics(pool: asyncpg.Pool) -> None:
    await pool.execute(BURST, DEPTH)
    async with pool.acquire() as conn:
        await _assert_claim_reads_the_index_in_order(conn, 64)


async def test_queue_statements_stop_early_on_a_deep_queue_the_statistics_have_not_seen(
        pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO _ayb_jobs (type, state) "
                       "SELECT 't', 'completed' FROM generate_series(1, 20000)")
    await pool.execute("ANALYZE _ayb_jobs")  # the statistics say: nothing queued
    await pool.execute(BURST, DEPTH)
    async with pool.acquire() as conn:
        for _ in range(2):
            await _assert_claim_reads_the_index_in_order(conn, 64)
            await _assert_reads_at_most(conn, "seconds_until_next_job", 1, "(timestamptz)", "(NULL)")
            await _assert_reads_at_most(conn, "job_stats", 1000)
            await conn.execute("ANALYZE _ayb_jobs")
        for limit in (1, 256):
            await _assert_claim_reads_the_index_in_order(conn, limit)
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await _assert_claim_reads_the_index_in_order(conn, 64)
        await _assert_reads_at_most(conn, "seconds_until_next_job", 1, "(timestamptz)", "(NULL)")
