"""Runs are keyed by claim: when this daemon claims a job again while an earlier run of it is still
in its handler (recovered meanwhile, failed, retried by an admin — so at the same attempt), the
earlier run is stopped and writes nothing; only the new run's outcome counts."""

from __future__ import annotations

import asyncio
from typing import Any

from harness import insert, poll, runtime

from ayb_jobs.db import queries
from ayb_jobs.handlers import Registry


async def test_a_stale_run_is_stopped_when_its_job_is_claimed_again(db_url: str, pool) -> None:
    runs: list[dict[str, Any]] = []

    async def tracked(_payload: dict[str, Any], ctx: Any) -> dict[str, int]:
        run = {"go": asyncio.Event(), "cancelled": False, "attempt": ctx.attempt}
        runs.append(run)
        try:
            await run["go"].wait()
        except asyncio.CancelledError:
            run["cancelled"] = True
            raise
        return {"run": len(runs)}

    registry = Registry()
    registry.add("slow", tracked)
    job_id = await insert(pool, "slow", max_attempts=1)
    async with runtime(db_url, pool, registry) as rt:
        await rt.claim()
        await poll(lambda: asyncio.sleep(0, len(runs) == 1), what="first run started")
        # Another daemon's recovery finds the lease expired and fails the job; an admin retries it.
        await pool.execute("UPDATE _ayb_jobs SET lease_until = now() - interval '1 second' WHERE id = $1",
                           job_id)
        await queries.recover_expired(pool, jitter_s=0.0)
        await queries.retry_job(pool, job_id)
        await rt.claim()
        await poll(lambda: asyncio.sleep(0, len(runs) == 2), what="second run started")
        assert runs[0]["attempt"] == runs[1]["attempt"] == 1
        await poll(lambda: asyncio.sleep(0, runs[0]["cancelled"]), what="the stale run stopped")
        assert (await rt.row(job_id))["state"] == "running"  # the stale run wrote nothing
        runs[1]["go"].set()
        row = await rt.settled(job_id, "completed", "failed", "queued")
        assert row["state"] == "completed" and row["claim_seq"] == 2
        # The writer reports the outcome after its statement returned (and the pool took the
        # connection back): the row can read completed a moment before the run ends here.
        await asyncio.wait_for(rt.executor.idle.wait(), 5)
        assert len(rt.executor.running) == 0
