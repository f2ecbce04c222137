"""Job handlers for the daemon end-to-end tests, loaded by the daemon through
`jobs.handlers = ["handlers:register"]` (tests/e2e/support is on the child's PYTHONPATH).

They write to tables the tests create (see tests/e2e/conftest.py: e2e_runs, e2e_signals).
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

SIGNAL_POLL_S = 0.05


async def record(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Insert (job_id, attempt) into e2e_runs; a second run of one job fails on the primary key."""
    await ctx.pool.execute(
        "INSERT INTO e2e_runs (job_id, attempt, worker_id, marker) VALUES ($1, $2, $3, $4)",
        ctx.job_id, ctx.attempt, ctx.worker_id, payload.get("marker"))
    return {"recorded": str(ctx.job_id)}


async def sleep(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Sleep payload["seconds"]; logs e2e_handler_started first so a test knows it is running."""
    ctx.log.info("e2e_handler_started")
    await asyncio.sleep(float(payload.get("seconds", 1)))
    return {"slept": payload.get("seconds", 1)}


async def boom(payload: dict[str, Any], ctx: Any) -> None:
    raise RuntimeError(payload.get("message", "boom"))


async def suicide(payload: dict[str, Any], ctx: Any) -> None:
    """Kill the whole daemon process, as a segfaulting extension or the OOM killer would."""
    ctx.log.info("e2e_handler_started")
    os.kill(os.getpid(), signal.SIGKILL)


async def hang(payload: dict[str, Any], ctx: Any) -> None:
    """Run far longer than any test's jobs.job_timeout_s."""
    ctx.log.info("e2e_handler_started")
    await asyncio.sleep(3600)


async def block_until(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Wait until the test inserts payload["key"] into e2e_signals, then record the run."""
    ctx.log.info("e2e_handler_started")
    # The signal comes from another process (the test), so polling the table is the only way.
    while not await ctx.pool.fetchval("SELECT true FROM e2e_signals WHERE key = $1", payload["key"]):  # noqa: ASYNC110
        await asyncio.sleep(SIGNAL_POLL_S)
    return await record(payload, ctx)


def register(registry: Any) -> None:
    registry.add("record", record, description="e2e: record each run in e2e_runs")
    registry.add("sleep", sleep, description="e2e: sleep payload.seconds")
    registry.add("boom", boom, description="e2e: always raise RuntimeError")
    registry.add("suicide", suicide, description="e2e: SIGKILL the daemon")
    registry.add("hang", hang, description="e2e: sleep an hour")
    registry.add("block_until", block_until, description="e2e: wait for a row in e2e_signals")
