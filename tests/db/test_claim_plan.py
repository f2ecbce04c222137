"""The queue's statements on a deep queue read the claim index in order and stop, never sort or
aggregate every queued row.

A sort under the claim's row lock cannot be a top-N sort, so it sorts every queued row: the backlog
would slow the queue exactly when it needs to be fast. The claim reads each queue's head off the
claim index (queue, priority, run_at, id) under its own LIMIT and lock, and only the merge of those
heads (at most queues x limit rows) is sorted, above the locks. The planner's choice depends on its
statistics, so the plans are checked as a burst of enqueues leaves them (never taken, or taken
before the burst), after ANALYZE, and as the generic plan a long-lived prepared statement may
switch to.
"""

from __future__ import annotations

import json

import asyncpg

from ayb_jobs.db.pool import create_pool
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


async def _assert_claim_reads_the_index_in_order(conn: asyncpg.Connection, limit: int, queues: int = 1,
                                                 only: str = "NULL") -> None:
    plan = await _plan(conn, "claim_jobs", "(int, float8, text, text[])", f"({limit}, 30, 'w', {only})")
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
        await _assert_claim_reads_the_index_in_order(conn, 64, queues=3)  # no statistics yet
        await conn.execute("ANALYZE _ayb_jobs")
        for limit in (1, 64, 256):
            await _assert_claim_reads_the_index_in_order(conn, limit, queues=3)
        await _assert_claim_reads_the_index_in_order(conn, 64, queues=2, only="ARRAY['email','bulk']")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await _assert_claim_reads_the_index_in_order(conn, 64, queues=3)
        await _assert_reads_at_most(conn, "seconds_until_next_job", 1, "(timestamptz)", "(NULL)")


async def test_the_daemons_connections_never_jit_compile_the_claim(db_url: str, pool: asyncpg.Pool) -> None:
    """With a deep backlog the planner's estimate of the claim passes jit_above_cost, and compiling
    it took 100 times what executing it does: the daemon's connections have JIT off."""
    await pool.execute(BURST, DEPTH)
    await pool.execute("ANALYZE _ayb_jobs")
    args = ("claim_jobs", "(int, float8, text, text[])", "(64, 30, 'w', NULL)")
    async with pool.acquire() as conn:  # a connection with the server's defaults
        if await conn.fetchval("SELECT pg_jit_available() AND current_setting('jit')::bool"):
            assert "JIT" in (await _plan(conn, *args))[0], "the case this guards against did not arise"
    daemon_pool = await create_pool(db_url, max_size=1)
    try:
        async with daemon_pool.acquire() as conn:
            plan = await _plan(conn, *args)
    finally:
        await daemon_pool.close()
    assert "JIT" not in plan[0], json.dumps(plan[0].get("JIT"))


async def test_the_claim_reads_the_queue_index_when_stale_statistics_saw_only_finished_jobs(
        pool: asyncpg.Pool) -> None:
    """Autovacuum analysed the table while nothing was queued, then a burst arrived: with many
    finished rows the planner used to read every queued row off the run_at index instead."""
    await pool.execute("INSERT INTO _ayb_jobs (type, state, completed_at) "
                       "SELECT 't', 'completed', now() FROM generate_series(1, 100000)")
    await pool.execute("ANALYZE _ayb_jobs")
    await pool.execute(BURST, 20_000)
    async with pool.acquire() as conn:
        await _assert_claim_reads_the_index_in_order(conn, 64)
        await _assert_claim_reads_the_index_in_order(conn, 256)
        await _assert_reads_at_most(conn, "seconds_until_next_job", 1, "(timestamptz)", "(NULL)")
