"""The fenced outcome statements find their rows by primary key, however the lease index looks.

idx_ayb_jobs_lease (state, lease_until) WHERE state = 'running' keeps an entry for every version
of every job claimed since the last vacuum. A generic plan that hash-joins a batch of claims
against that index reads all of them, and a draining daemon's complete statement took twice as
long that way. The plans are checked as a long-lived prepared statement runs them (the generic
plan), with the statistics saying "almost nothing is running", as they do in a busy queue.
"""

from __future__ import annotations

import json

import asyncpg
import pytest
from test_claim_plan import _nodes

from ayb_jobs.db.sql import SQL

# name -> (parameter types, arguments after the ids and claim seqs)
FENCED = {
    "complete_jobs": ("(uuid[], bigint[], text, text[])", "'w', {nulls}"),
    "fail_jobs": ("(uuid[], bigint[], text[], float8[], bool[], text)",
                  "{texts}, {floats}, {bools}, 'w'"),
    "snooze_jobs": ("(uuid[], bigint[], text, float8[])", "'w', {floats}"),
    "cancel_running_jobs": ("(uuid[], bigint[], text, text)", "'w', 'canceled by admin'"),
    "heartbeat_jobs": ("(uuid[], bigint[], float8, text)", "30, 'w'"),
    "release_jobs": ("(uuid[], bigint[], text, text[], float8[])", "'w', {texts}, {floats}"),
}


def _array(values: list, cast: str) -> str:
    return "'{" + ",".join(values) + "}'::" + cast


@pytest.mark.parametrize("name", sorted(FENCED))
async def test_a_fenced_statement_probes_the_primary_key(pool: asyncpg.Pool, name: str) -> None:
    await pool.execute("INSERT INTO _ayb_jobs (type) SELECT 't' FROM generate_series(1, 5000)")
    await pool.execute("ANALYZE _ayb_jobs")  # nothing running, as far as the planner knows
    rows = await pool.fetch(SQL["claim_jobs"], 64, 30.0, "w", None)
    n = len(rows)
    types, rest = FENCED[name]
    args = ", ".join([
        _array([str(r["id"]) for r in rows], "uuid[]"),
        _array([str(r["claim_seq"]) for r in rows], "bigint[]"),
        rest.format(nulls=_array(["NULL"] * n, "text[]"), texts=_array(["x"] * n, "text[]"),
                    floats=_array(["1"] * n, "float8[]"), bools=_array(["true"] * n, "bool[]")),
    ])
    async with pool.acquire() as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE p{types} AS " + SQL[name])
        async with conn.transaction():
            plan = json.loads(await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE p({args})"))
        await conn.execute("DEALLOCATE p")
        await conn.execute("RESET plan_cache_mode")
    shown = json.dumps(plan, indent=1)
    scans = [node for node in _nodes(plan)
             if node.get("Relation Name") == "_ayb_jobs" and node["Node Type"] != "ModifyTable"]
    assert scans and {node.get("Index Name") for node in scans} == {"_ayb_jobs_pkey"}, shown
    assert plan[0]["Plan"]["Actual Rows"] == n == 64, shown
