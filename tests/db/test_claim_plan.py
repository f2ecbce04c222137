"""The claim's plan on a deep queue: read the claim index in order, stop after the batch, never sort
under the row lock.

A sort under the claim's row lock cannot be a top-N sort, so it sorts every queued row: the backlog
would slow the queue exactly when it needs to be fast. The claim reads each queue's head off the
claim index (queue, priority, run_at, id) under its own LIMIT and lock, and only the merge of those
heads (at most queues x limit rows) is sorted, above the locks. The planner's choice depends on its
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


async def _claim_plan(conn: asyncpg.Connection, limit: int, queues: str = "NULL") -> list[dict]:
    """The executed plan of the real claim statement; rolled back, so the queue stays as it is."""
    await conn.execute("PREPARE claim_plan(int, float8, text, text[]) AS " + SQL["claim_jobs"])
    tx = conn.transaction()
    await tx.start()
    try:
        raw = await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_plan({limit}, 30, 'w', {queues})")
    finally:
        await tx.rollback()
        await conn.execute("DEALLOCATE claim_plan")
    return json.loads(raw)


def _assert_reads_the_index_in_order(plan: list[dict], limit: int, queues: int = 1) -> None:
    shown = json.dumps(plan, indent=1)
    [picked] = [n for n in _nodes(plan) if n.get("Subplan Name") == "CTE picked"]
    [lock] = [n for n in _nodes(picked) if n.get("Node Type") == "LockRows"]
    # Nothing sorts under the row lock: each queue's head comes off the index in claim order.
    assert not {n.get("Node Type") for n in _nodes(lock)} & {"Sort", "Incremental Sort"}, shown
    [scan] = [n for n in _nodes(lock) if n.get("Relation Name") == "_ayb_jobs"]
    assert (scan["Node Type"], scan["Index Name"]) == ("Index Scan", "idx_ayb_jobs_queue_claim"), shown
    assert scan["Actual Rows"] <= limit and scan["Actual Loops"] <= queues, shown
    # The only sort merges the queues' heads: at most queues x limit rows, never the backlog.
    for sort in (n for n in _nodes(picked) if n.get("Node Type") in ("Sort", "Incremental Sort")):
        assert sort["Actual Rows"] <= limit and sort["Plans"][0]["Actual Rows"] <= queues * limit, shown
    # The rows are then found by primary key: no scan of the job table, no hash of it.
    for node in _nodes(plan):
        assert not (node.get("Node Type") == "Seq Scan" and node.get("Relation Name") == "_ayb_jobs"), shown
        if node.get("Node Type") == "Hash Join":
            assert "_ayb_jobs" not in {n.get("Relation Name") for n in _nodes(node)}, shown
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


QUEUES = ("default", "email", "bulk", "reports")


async def test_claim_reads_only_each_queues_head_with_a_deep_backlog_in_several_queues(pool) -> None:
    """300,000 queued jobs over four queues and three priorities, one of the queues limited and one
    paused: the claim still reads a handful of index entries per queue and sorts only their heads."""
    await pool.execute(
        "INSERT INTO _ayb_jobs (type, queue, priority, run_at) "
        "SELECT 't', ($2::text[])[1 + i % 4], (i % 3) - 1, "
        "       now() - interval '1 day' + make_interval(secs => i / 1000) "
        "FROM generate_series(1, $1) i", DEPTH, list(QUEUES))
    await pool.execute("INSERT INTO _ayb_job_queues (name, concurrency) VALUES ('bulk', 5)")
    await pool.execute("INSERT INTO _ayb_job_queues (name, paused) VALUES ('reports', true)")
    async with pool.acquire() as conn:
        _assert_reads_the_index_in_order(await _claim_plan(conn, 64), 64, queues=3)  # no statistics yet
        await conn.execute("ANALYZE _ayb_jobs")
        for limit in (1, 64, 256):
            _assert_reads_the_index_in_order(await _claim_plan(conn, limit), limit, queues=3)
        _assert_reads_the_index_in_order(await _claim_plan(conn, 64, "ARRAY['email','bulk']"), 64, queues=2)
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        _assert_reads_the_index_in_order(await _claim_plan(conn, 64), 64, queues=3)
