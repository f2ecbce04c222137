"""ayb_jobs.testing in a plain pytest test: run_handler inline, Worker.drain through the real SQL."""

from __future__ import annotations

import pytest

from ayb_jobs import Client, Snooze
from ayb_jobs.errors import InvalidPayload, UnknownJobType
from ayb_jobs.handlers import JobContext, Registry
from ayb_jobs.testing import Worker, run_handler


async def send_receipt(payload: dict, ctx: JobContext) -> dict:
    if "order" not in payload:
        raise InvalidPayload("payload needs 'order'")
    return {"sent": payload["order"], "attempt": ctx.attempt, "job": str(ctx.job_id)}


async def flaky(payload: dict, ctx: JobContext) -> None:
    raise RuntimeError("smtp down")


async def later(payload: dict, ctx: JobContext) -> None:
    raise Snooze(60)


@pytest.fixture
def registry() -> Registry:
    r = Registry()
    r.add("send_receipt", send_receipt)
    r.add("flaky", flaky)
    r.add("later", later)
    return r


async def test_run_handler_returns_what_the_handler_returns_with_a_real_context(registry) -> None:
    result = await run_handler(registry, "send_receipt", {"order": 42}, attempt=2)
    assert result["sent"] == 42 and result["attempt"] == 2 and len(result["job"]) == 36


async def test_run_handler_raises_what_the_handler_raises(registry) -> None:
    with pytest.raises(InvalidPayload):
        await run_handler(registry, "send_receipt", {})
    with pytest.raises(Snooze):
        await run_handler(registry, "later")
    with pytest.raises(UnknownJobType, match="registered: flaky, later, send_receipt"):
        await run_handler(registry, "nope")


async def test_drain_runs_a_queued_job_through_the_real_sql_and_reports_completed(pool, registry) -> None:
    job = await Client(pool=pool).enqueue("send_receipt", {"order": 7})
    async with Worker(pool, registry) as worker:
        assert await worker.drain() == {"completed": 1}
        assert await worker.drain() == {}  # nothing left
    row = await pool.fetchrow("SELECT state, attempts, result FROM _ayb_jobs WHERE id = $1", job.id)
    assert (row["state"], row["attempts"]) == ("completed", 1)


async def test_drain_counts_each_kind_of_ending_and_does_not_wait_for_later_runs(pool, registry) -> None:
    client = Client(pool=pool)
    await client.enqueue("send_receipt", {"order": 1})
    await client.enqueue("send_receipt", {})  # invalid payload: failed at once
    await client.enqueue("flaky", max_attempts=3)  # retried after a backoff: not waited for
    await client.enqueue("later")  # snoozed for a minute: not waited for
    async with Worker(pool, registry) as worker:
        counts = await worker.drain()
    assert counts == {"completed": 1, "failed": 1, "retried": 1, "snoozed": 1}
