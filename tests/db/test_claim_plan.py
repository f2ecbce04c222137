"""The claim's plan on a deep queue: read the claim index in order, stop after the batch, never sort.

A sort under the claim's row lock cannot be a top-N sort, so it sorts every queued row: the backlog
would slow the queue exactly when it needs to be fast. The planner's choice depends on its
statistics, so the plan is checked as a burst of enqueues leaves them (never analysed), after
ANALYZE, and as the generic plan a long-lived prepared statement may switch to.
"""

from __future__ import annotations

import json

import asyncpg

from ayb_jobs.db.sql import SQL

DEPTH = 300_000


def _nodes(plan: object) -> list[dict]:
    if isinstance(plan, dict):
        return [plan, *(n for v in plan.values() for n in _nodes(v))]
    if isinstance(plan, list):
        return [n for v in plan for n in _nodes(v)]
    return []


async def _claim_plan(conn: asyncpg.Connection, limit: int) -> list[dict]:
    """The executed plan of the real claim statement; rolled back, so the queue stays as it is."""
    await conn.execute("PREPARE claim_plan(int, float8, text) AS " + SQL["claim_jobs"])
    tx = conn.transaction()
    await tx.start()
    try:
        raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_plan({limit}, 30, 'w')")
    finally:
        await tx.rollback()
        await conn.execute("DEALLOCATE claim_plan")
    return json.loads(raw)


def _assert_reads_the_index_in_order(plan: list[dict], limit: int) -> None:
    shown = json.dumps(plan, indent=1)
    [picked] = [n for n in _nodes(plan) if n.get("Subplan Name") == "CTE picked"]
    assert not {n.get("Node Type") for n in _nodes(picked)} & {"Sort", "Incremental Sort"}, shown
    [scan] = [n for n in _nodes(picked) if n.get("Relation Name") == "_ayb_jobs"]
    assert (scan["Node Type"], scan["Index Name"]) == ("Index Scan", "idx_ayb_jobs_claimable"), shown
    assert scan["Actual Rows"] <= limit, shown
    # The rows are then found by primary key: no scan of the table, no hash of it.
    assert not {n.get("Node Type") for n in _nodes(plan)} & {"Seq Scan", "Hash Join"}, shown
    assert plan[0]["Plan"]["Actual Rows"] == limit, shown


async def test_claim_reads_the_claim_index_in_order_on_a_deep_queue(pool: asyncpg.Pool) -> None:
    # As a batch enqueue writes them: a thousand jobs share each run_at.
    await pool.execute(
        "INSERT INTO _ayb_jobs (type, run_at) "
        "SELECT 't', now() - interval '1 day' + make_interval(secs => i / 1000) "
        "FROM generate_series(1, $1) i", DEPTH)
    async with pool.acquire() as conn:
        _assert_reads_the_index_in_order(await _claim_plan(conn, 64), 64)  # statistics not taken yet
        await conn.execute("ANALYZE _ayb_jobs")
        for limit in (1, 64, 256):
            _assert_reads_the_index_in_order(await _claim_plan(conn, limit), limit)
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        _assert_reads_the_index_in_order(await _claim_plan(conn, 64), 64)
