"""The handler of the reliability (chaos) tests, loaded by the daemon through
`jobs.handlers = ["chaos_handlers:register"]` (tests/e2e/support is on the child's PYTHONPATH).

`chaos_work` records every run in `chaos_runs` (see tests/e2e/chaos_scenarios.py): a row when the
run starts, then `steps` database round trips `step_ms` apart (so a run is inside a query, or between
queries, whenever a fault lands), then its end time. A run whose row has no `ended_at` was cut off
before its handler finished: by a kill -9 of its daemon, or by a database fault that made one of its
queries raise.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def chaos_work(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    run_id = await ctx.pool.fetchval(
        "INSERT INTO chaos_runs (job_id, attempt, worker_id) VALUES ($1, $2, $3) RETURNING run_id",
        ctx.job_id, ctx.attempt, ctx.worker_id)
    for _ in range(int(payload.get("steps", 1))):
        await asyncio.sleep(float(payload.get("step_ms", 10)) / 1000)
        await ctx.pool.fetchval("SELECT 1")
    await ctx.pool.execute("UPDATE chaos_runs SET ended_at = clock_timestamp() WHERE run_id = $1", run_id)
    return {"run_id": run_id}


def register(registry: Any) -> None:
    registry.add("chaos_work", chaos_work, description="chaos tests: record each run in chaos_runs")
