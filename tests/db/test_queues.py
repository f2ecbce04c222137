"""Queues and priorities in the claim: order, the queues a daemon works, pause, the global limit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest
from db_helpers import add_job, db_now, fence

from ayb_jobs.db import queries, queue_queries
from ayb_jobs.models import JobState


async def claim(db, limit: int = 10, queues=None, worker: str = "w") -> list:
    return await queries.claim_jobs(db, limit=limit, lease_s=30, worker_id=worker, queues=queues)


async def test_with_one_slot_lower_priority_runs_first_and_equal_priorities_by_run_at(pool) -> None:
    now = await db_now(pool)
    five = await add_job(pool, priority=5)
    minus_five = await add_job(pool, priority=-5)
    zero_later = await add_job(pool, priority=0, run_at=now - timedelta(seconds=1))
    zero_earlier = await add_job(pool, priority=0, run_at=now - timedelta(seconds=2))
    order = []
    for _ in range(4):
        [job] = await claim(pool, limit=1)
        order.append(job.id)
    assert order == [minus_five.id, zero_earlier.id, zero_later.id, five.id]


async def test_a_batch_claim_returns_jobs_in_claim_order_across_queues(pool) -> None:
    a = await add_job(pool, queue="a", priority=3)
    b = await add_job(pool, queue="b", priority=-3)
    c = await add_job(pool, queue="c", priority=0)
    assert [j.id for j in await claim(pool)] == [b.id, c.id, a.id]


async def test_the_job_list_filters_by_queue(pool) -> None:
    email = await add_job(pool, queue="email")
    await add_job(pool)
    jobs, total = await queries.list_jobs(pool, limit=10, offset=0, where=queries.JobFilter(queue="email"))
    assert ([j.id for j in jobs], total) == ([email.id], 1)
    assert (jobs[0].queue, jobs[0].priority) == ("email", 0)


async def test_a_daemon_with_a_queue_list_never_claims_other_queues(pool) -> None:
    await add_job(pool)  # queue "default"
    email = await add_job(pool, queue="email")
    assert [j.id for j in await claim(pool, queues=["email", "not-created-yet"])] == [email.id]
    assert await claim(pool, queues=["email"]) == []
    assert len(await claim(pool)) == 1  # every queue


async def test_a_paused_queue_keeps_its_jobs_queued_while_others_flow(pool) -> None:
    held = await add_job(pool, queue="held")
    other = await add_job(pool, queue="other")
    await queue_queries.set_queue(pool, "held", paused=True)
    assert [j.id for j in await claim(pool)] == [other.id]
    assert (await queries.get_job(pool, held.id)).state is JobState.QUEUED
    await queue_queries.set_queue(pool, "held", paused=False)
    assert [j.id for j in await claim(pool)] == [held.id]


async def test_a_limited_queue_never_has_more_running_jobs_than_its_limit(pool) -> None:
    for _ in range(5):
        await add_job(pool, queue="serial")
    await queue_queries.set_queue(pool, "serial", concurrency=2)
    first = await claim(pool, limit=10)
    assert len(first) == 2
    assert await claim(pool, limit=10, worker="other") == []
    await queries.complete_jobs(pool, [fence(first[0])], worker_id="w")
    assert len(await claim(pool, limit=10, worker="other")) == 1
    await queue_queries.set_queue(pool, "serial", clear_concurrency=True)
    assert len(await claim(pool, limit=10)) == 2


async def test_a_second_claimer_waits_for_the_first_and_then_sees_its_running_jobs(pool, connect) -> None:
    """The race between two daemons: A claims the queue's whole limit inside a transaction that is
    still open; B's claim must wait for A (not decide on a snapshot that cannot see A's claim), and
    once A commits, B finds no free slot. Without the lock B would take two more at once."""
    for _ in range(6):
        await add_job(pool, queue="limited")
    await queue_queries.set_queue(pool, "limited", concurrency=2)
    a, b = await connect(), await connect()
    tx = a.transaction()
    await tx.start()
    try:
        assert len(await claim(a, limit=10, worker="a")) == 2
        b_claim = asyncio.ensure_future(claim(b, limit=10, worker="b"))
        await _wait_until_blocked_on_advisory_lock(pool, b)
        assert not b_claim.done()
    finally:
        await tx.commit()
    assert await asyncio.wait_for(b_claim, 10) == []
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE state = 'running'") == 2


async def _wait_until_blocked_on_advisory_lock(pool, conn: asyncpg.Connection) -> None:
    pid = conn.get_server_pid()
    for _ in range(400):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted", pid)
        if waiting:
            return
        await asyncio.sleep(0.025)
    pytest.fail("the second claim never waited on the queue's lock")


async def test_unlimited_queues_take_no_lock_so_claims_never_wait_on_each_other(pool, connect) -> None:
    for _ in range(4):
        await add_job(pool)
    a, b = await connect(), await connect()
    tx = a.transaction()
    await tx.start()
    try:
        assert len(await claim(a, limit=2, worker="a")) == 2
        assert len(await asyncio.wait_for(claim(b, limit=10, worker="b"), 5)) == 2
    finally:
        await tx.commit()


async def test_the_slots_function_counts_only_limited_queues_and_never_goes_negative(pool) -> None:
    await queue_queries.set_queue(pool, "one", concurrency=1)
    await add_job(pool, queue="one")
    await add_job(pool, queue="one")
    await claim(pool)
    await pool.execute("UPDATE _ayb_jobs SET state = 'running' WHERE queue = 'one'")  # as if over the limit
    rows = await pool.fetch("SELECT * FROM _ayb_jobs_queue_slots(ARRAY['one', 'unlimited'])")
    assert [(r["queue"], r["free"]) for r in rows] == [("one", 0)]


@pytest.mark.parametrize(("column", "value"), [("queue", "has space"), ("queue", ""), ("priority", 101),
                                               ("priority", -101)])
async def test_the_table_refuses_bad_queue_names_and_priorities(pool, column: str, value) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(f"INSERT INTO _ayb_jobs (type, {column}) VALUES ('t', $1)", value)


async def test_a_plain_sql_insert_gets_the_column_defaults(pool) -> None:
    await queue_queries.publish_job_types(pool, [queue_queries.TypePolicy(
        "t", "maintenance", 7, 1, 1.0, False, "", False)])
    row = await pool.fetchrow(
        "INSERT INTO _ayb_jobs (type) VALUES ('t') RETURNING queue, priority, max_attempts")
    assert tuple(row) == ("default", 0, 3)


async def test_explain_names_a_paused_queue_a_full_limit_and_the_jobs_ahead_in_claim_order(pool) -> None:
    from ayb_jobs.db import ops_queries
    from ayb_jobs.db.ops_queries import WorkerBeat
    from ayb_jobs.handlers import default_registry
    from ayb_jobs.service import JobService

    service = JobService(pool, default_registry())
    await ops_queries.upsert_worker(pool, WorkerBeat("w-live", "host", 1, "0", (), ("test.job",), 4, 0))
    held = await add_job(pool, queue="held")
    await service.update_queue("held", paused=True)
    out = {r["code"]: r["message"] for r in (await service.explain_job(held.id))["reasons"]}
    assert "queue_paused" in out and "ayb-jobs queues resume held" in out["queue_paused"]

    await add_job(pool, queue="one")
    waiting = await add_job(pool, queue="one")
    await service.update_queue("one", concurrency=1)
    await claim(pool, limit=5, queues=["one"])
    out = {r["code"]: r["message"] for r in (await service.explain_job(waiting.id))["reasons"]}
    assert "queue_at_limit" in out and "1 / 1" in out["queue_at_limit"]

    urgent = await add_job(pool, queue="prio", priority=-1)
    later = await add_job(pool, queue="prio", priority=1)
    await add_job(pool, queue="other")  # another queue is not ahead of it
    behind = {r["code"]: r["message"] for r in (await service.explain_job(later.id))["reasons"]}
    assert behind["waiting_behind"].startswith("1 due jobs are ahead")
    assert "waiting_behind" not in {r["code"] for r in (await service.explain_job(urgent.id))["reasons"]}
