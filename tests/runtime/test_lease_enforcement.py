"""The daemon enforces its own leases, and says truthfully what became of an outcome it had to retry.

- Heartbeats that cannot reach the database (for this daemon only) confirm nothing: the handler is
  stopped before its lease may end, counted as a lost lease, and writes nothing.
- A retried outcome write that matches no row is judged from the job's row: a first try that
  committed (its reply lost) is reported as what it wrote; a claim recovered meanwhile is a lost
  lease, not "most likely committed".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from harness import WORKER, insert, poll, runtime

from ayb_jobs.db import queries
from ayb_jobs.handlers import Registry


def blocking_handler(record: dict[str, Any]) -> Any:
    async def handler(_payload: dict[str, Any], _ctx: Any) -> None:
        record["started"] = True
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            record["cancelled_at"] = datetime.now(UTC)
            raise
    return handler


async def test_a_handler_is_stopped_before_a_lease_no_heartbeat_could_confirm_ends(db_url: str, pool) -> None:
    record: dict[str, Any] = {}
    registry = Registry()
    registry.add("long", blocking_handler(record))
    job_id = await insert(pool, "long", max_attempts=1)
    async with runtime(db_url, pool, registry, lease_s=3.0, heartbeat=True) as rt:
        await rt.claim()
        await poll(lambda: asyncio.sleep(0, record.get("started")), what="handler started")
        rt.proxy.freeze()  # this daemon's database hangs; the test's own connections still work
        await poll(lambda: asyncio.sleep(0, "cancelled_at" in record), timeout=5, what="handler stopped")
        row = await rt.row(job_id)
        assert row["state"] == "running" and row["worker_id"] == WORKER  # nothing was written
        assert record["cancelled_at"] < row["lease_until"], (record["cancelled_at"], row["lease_until"])
        assert rt.counted("lease_lost", "long") == 1
        assert rt.executor.running == {}


async def test_a_retried_outcome_whose_claim_was_recovered_meanwhile_is_a_lost_lease(db_url, pool) -> None:
    go = asyncio.Event()

    async def waits(_payload: dict[str, Any], _ctx: Any) -> None:
        await go.wait()

    registry = Registry()
    registry.add("quick", waits)
    job_id = await insert(pool, "quick", max_attempts=3)
    async with runtime(db_url, pool, registry) as rt:
        await rt.claim()
        await rt.proxy.cut()
        go.set()
        await poll(lambda: asyncio.sleep(0, rt.writer.backlog == 1), what="outcome pending")
        # Meanwhile another daemon recovers the expired lease and claims the job.
        await pool.execute("UPDATE _ayb_jobs SET lease_until = now() - interval '1 second' WHERE id = $1",
                           job_id)
        await queries.recover_expired(pool, jitter_s=0.0)
        await pool.execute("UPDATE _ayb_jobs SET run_at = now() WHERE id = $1", job_id)
        await queries.claim_jobs(pool, limit=1, lease_s=30, worker_id="w-other")
        await rt.proxy.restore()
        await poll(lambda: asyncio.sleep(0, rt.counted("lease_lost", "quick") == 1), what="lease lost")
        row = await rt.row(job_id)
        assert (row["state"], row["worker_id"]) == ("running", "w-other")
        assert rt.counted("completed", "quick") == 0


async def test_a_retried_outcome_whose_first_try_committed_is_reported_as_written(db_url, pool) -> None:
    go = asyncio.Event()

    async def waits(payload: dict[str, Any], _ctx: Any) -> None:
        if payload.get("wait"):
            await go.wait()

    registry = Registry()
    registry.add("quick", waits)
    warm_up = await insert(pool, "quick", max_attempts=3)
    async with runtime(db_url, pool, registry, write_timeout_s=0.3) as rt:
        # One job through first, so the completion statement is prepared (a statement not yet
        # prepared would wait for the Parse reply and never reach the server).
        await rt.claim()
        await rt.settled(warm_up, "completed")
        job_id = await insert(pool, "quick", max_attempts=3, payload='{"wait": true}')
        await rt.claim()
        rt.proxy.freeze(replies_only=True)  # the completion commits, its answer never arrives
        go.set()
        await rt.settled(job_id, "completed")
        await poll(lambda: asyncio.sleep(0, rt.metrics._db_errors["outcomes"] > 0),
                   what="the write timed out")
        rt.proxy.thaw()
        await poll(lambda: asyncio.sleep(0, rt.counted("completed", "quick") == 2),
                   what="completion reported")
        assert rt.counted("lease_lost", "quick") == 0
