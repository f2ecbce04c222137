"""A job whose handler has ended frees its worker slot at once, while its outcome waits to be
written: its lease is still extended by the heartbeat, and the daemon holds at most twice its
concurrency in flight, so a database that stops taking outcome writes stops the claims too."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
from harness import WORKER, insert, poll

from ayb_jobs.db import queries
from ayb_jobs.handlers import Registry
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.executor import Executor
from ayb_jobs.runtime.heartbeat import Heartbeat
from ayb_jobs.runtime.outcomes import OutcomeWriter

LEASE_S = 60.0


async def quick(_payload: dict[str, Any], _ctx: Any) -> None:
    return None


def parts(pool: asyncpg.Pool, concurrency: int) -> tuple[OutcomeWriter, Executor, Heartbeat]:
    registry = Registry()
    registry.add("quick", quick)
    # The writer's task is not started: outcomes stay pending until the test starts it.
    writer = OutcomeWriter(pool, WORKER)
    executor = Executor(pool=pool, registry=registry, writer=writer, metrics=Metrics(), worker_id=WORKER,
                        concurrency=concurrency, job_timeout_s=30.0, lease_s=LEASE_S)
    return writer, executor, Heartbeat(pool=pool, executor=executor, metrics=Metrics(), lease_s=LEASE_S)


async def claim(pool: asyncpg.Pool, executor: Executor) -> int:
    jobs = await queries.claim_jobs(pool, limit=executor.free_slots(), lease_s=LEASE_S, worker_id=WORKER)
    executor.start(jobs)
    await poll(lambda: _async(executor.in_handlers() == 0), what="the handlers to end")
    return len(jobs)


async def _async(value: bool) -> bool:
    return value


async def test_a_finished_job_frees_its_slot_and_keeps_its_lease_until_its_outcome_is_written(
        pool: asyncpg.Pool) -> None:
    ids = [await insert(pool, "quick") for _ in range(2)]
    writer, executor, heartbeat = parts(pool, concurrency=2)
    assert await claim(pool, executor) == 2
    # Both handlers ended: their slots are free, their outcomes pending, the jobs still in flight.
    assert executor.free_slots() == 2 and writer.backlog == 2
    assert {c.id for c in executor.claimed()} == set(ids) and not executor.idle.is_set()
    before = {r["id"]: r["lease_until"] for r in await pool.fetch(
        "SELECT id, lease_until FROM _ayb_jobs WHERE id = ANY($1)", ids)}
    await pool.execute("UPDATE _ayb_jobs SET lease_until = lease_until - interval '50 seconds' "
                       "WHERE id = ANY($1)", ids)
    assert await heartbeat.run_once() == 0  # none lost: both leases extended again
    after = await pool.fetch("SELECT id, state, lease_until FROM _ayb_jobs WHERE id = ANY($1)", ids)
    assert all(r["state"] == "running" and r["lease_until"] >= before[r["id"]] for r in after)
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(executor.idle.wait(), 10)
        states = await pool.fetch("SELECT state FROM _ayb_jobs WHERE id = ANY($1)", ids)
        assert [r["state"] for r in states] == ["completed", "completed"]
        assert executor.claimed() == []
    finally:
        writer.close()
        await asyncio.wait_for(task, 10)


async def test_claims_stop_while_twice_the_concurrency_waits_to_be_written(pool: asyncpg.Pool) -> None:
    for _ in range(5):
        await insert(pool, "quick")
    writer, executor, _heartbeat = parts(pool, concurrency=2)
    assert await claim(pool, executor) == 2
    assert executor.free_slots() == 2  # the handlers ended: a second claim may overlap the write
    assert await claim(pool, executor) == 2
    assert executor.free_slots() == 0 and writer.backlog == 4  # the bound: no third claim
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(executor.idle.wait(), 10)
        assert executor.free_slots() == 2
    finally:
        writer.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
