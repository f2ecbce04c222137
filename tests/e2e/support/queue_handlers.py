"""Job types for the queue end-to-end tests, loaded by the daemon through
`jobs.handlers = ["queue_handlers:register"]` (tests/e2e/support is on the child's PYTHONPATH).

`interval` records when each run starts and ends (database clock) in e2e_intervals, which
tests/e2e/test_e2e_queues.py creates, so overlaps can be checked from the table afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def interval(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    await ctx.pool.execute(
        "INSERT INTO e2e_intervals (job_id, worker_id, started) VALUES ($1, $2, clock_timestamp())",
        ctx.job_id, ctx.worker_id)
    await asyncio.sleep(float(payload.get("seconds", 0.02)))
    await ctx.pool.execute("UPDATE e2e_intervals SET ended = clock_timestamp() WHERE job_id = $1",
                           ctx.job_id)
    return None


async def noop(payload: dict[str, Any], ctx: Any) -> None:
    return None


async def slow(payload: dict[str, Any], ctx: Any) -> None:
    await asyncio.sleep(float(payload.get("seconds", 5)))


def register(registry: Any) -> None:
    registry.add("interval", interval, queue="serialish", description="e2e: record start/end times")
    registry.add("email_job", noop, queue="email", priority=-10, description="e2e: an email")
    registry.add("plain_job", noop, description="e2e: default queue")
    registry.add("maint", slow, queue="maintenance", max_attempts=1, timeout_s=1,
                 description="e2e: one attempt, one second")
