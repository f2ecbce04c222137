"""A claim that commits but whose answer never arrives leaves its jobs `running` under this daemon,
which does not know them: after the failed claim the poller releases them at once (attempt not
counted), instead of leaving them until their leases expire."""

from __future__ import annotations

import asyncio
from typing import Any

from harness import insert, runtime

from ayb_jobs.handlers import Registry
from ayb_jobs.runtime.poller import Poller


async def test_jobs_of_a_claim_whose_answer_was_lost_are_released_and_run(db_url: str, pool) -> None:
    runs: list[int] = []

    async def record(_payload: dict[str, Any], ctx: Any) -> None:
        runs.append(ctx.attempt)

    registry = Registry()
    registry.add("work", record)
    async with runtime(db_url, pool, registry) as rt:
        # Prepare the claim statement on the pool's connection first: an unprepared statement would
        # wait for the Parse answer and never reach the server while answers are held.
        poller = Poller(pool=rt.pool, executor=rt.executor, metrics=rt.metrics, lease_s=rt.lease_s,
                        poll_interval_s=0.05, claim_timeout_s=0.3)
        assert await poller.run_once() == 0
        job_id = await insert(pool, "work", max_attempts=1)
        rt.proxy.freeze(replies_only=True)  # the claim commits; its answer is held
        try:
            await poller.run_once()
        except Exception as exc:
            print("claim failed:", repr(exc))
        else:
            raise AssertionError("the claim should have timed out")
        row = await rt.row(job_id)
        assert row["state"] == "running" and rt.executor.running == {}  # claimed, unknown to us
        rt.proxy.thaw()
        task = asyncio.create_task(poller.run())
        try:
            done = await rt.settled(job_id, "completed", "failed", timeout=10)
        finally:
            poller.stop.set()
            await asyncio.wait_for(task, 5)
        assert done["state"] == "completed" and done["attempts"] == 1 and runs == [1]
