"""Handlers of the job-lifecycle end-to-end tests (snooze, results, cancel of running jobs), loaded
by the daemon through `jobs.handlers = [..., "lifecycle_handlers:register"]`. They report what they
saw as log events, which the tests read from the daemon's output."""

from __future__ import annotations

import asyncio
from typing import Any

from ayb_jobs import Snooze


async def snooze_then_complete(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Snooze payload["times"] times for payload["seconds"] each, then complete. Each run logs the
    database's claim time (last_run_at) and the snoozes so far."""
    row = await ctx.pool.fetchrow("SELECT snoozes, attempts, last_run_at FROM _ayb_jobs WHERE id = $1",
                                  ctx.job_id)
    ctx.log.info("life_run", snoozes=row["snoozes"], attempts=row["attempts"],
                 claimed_at=row["last_run_at"].isoformat())
    if row["snoozes"] < int(payload.get("times", 2)):
        raise Snooze(float(payload.get("seconds", 1)))
    return {"snoozed": row["snoozes"]}


async def returns(payload: dict[str, Any], ctx: Any) -> Any:
    """Return payload["value"], or a string of payload["kib"] KiB."""
    if "kib" in payload:
        return {"blob": "x" * (int(payload["kib"]) * 1024)}
    return payload.get("value")


async def sleeper(payload: dict[str, Any], ctx: Any) -> None:
    """Sleep payload["seconds"] (default 60); log when cancelled, then let the cancellation through."""
    ctx.log.info("e2e_handler_started")
    try:
        await asyncio.sleep(float(payload.get("seconds", 60)))
    except asyncio.CancelledError:
        ctx.log.info("life_handler_cancelled")
        raise


async def stubborn(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Swallow the cancellation and return as if done: the job must still end canceled."""
    ctx.log.info("e2e_handler_started")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        ctx.log.info("life_handler_cancelled")
    return {"vetoed": True}


def register(registry: Any) -> None:
    registry.add("snooze_then_complete", snooze_then_complete, description="e2e: snooze, then complete")
    registry.add("returns", returns, description="e2e: return payload.value or payload.kib KiB")
    registry.add("sleeper", sleeper, description="e2e: sleep, log the cancellation")
    registry.add("stubborn", stubborn, description="e2e: swallow the cancellation")
