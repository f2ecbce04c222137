"""Per-type policies: published to _ayb_job_types, filled in by every enqueue path unless given."""

from __future__ import annotations

import asyncpg
import pytest
from db_helpers import advance_due, make_schedule_due

from ayb_jobs.client import Client
from ayb_jobs.db import queue_queries
from ayb_jobs.handlers import Registry, default_registry
from ayb_jobs.models import NewJob
from ayb_jobs.runtime.policies import publish_job_types
from ayb_jobs.service import JobService


async def noop(payload, ctx):
    return None


@pytest.fixture
async def registry(pool: asyncpg.Pool) -> Registry:
    registry = default_registry()
    registry.add("maint", noop, queue="maintenance", max_attempts=1, timeout_s=1, priority=-7,
                 description="serial maintenance")
    registry.add("plain", noop)
    await publish_job_types(pool, registry)
    return registry


async def test_the_daemon_publishes_each_type_with_its_policy(pool, registry) -> None:
    rows = {r["type"]: r for r in await pool.fetch("SELECT * FROM _ayb_job_types")}
    assert set(rows) == set(registry.names())
    maint = rows["maint"]
    policy = (maint["queue"], maint["priority"], maint["max_attempts"], maint["timeout_s"])
    assert policy == ("maintenance", -7, 1, 1.0)
    assert (maint["description"], maint["builtin"]) == ("serial maintenance", False)
    assert rows["plain"]["queue"] is None and rows["job_prune"]["builtin"]


async def test_publishing_again_replaces_a_changed_policy(pool, registry) -> None:
    changed = Registry()
    changed.add("maint", noop, queue="elsewhere")
    await publish_job_types(pool, changed)
    row = await pool.fetchrow("SELECT queue, max_attempts FROM _ayb_job_types WHERE type = 'maint'")
    assert tuple(row) == ("elsewhere", None)
    assert await pool.fetchval("SELECT count(*) FROM _ayb_job_types WHERE type = 'plain'") == 1


async def test_service_enqueue_fills_the_policy_and_an_explicit_value_wins(pool, registry) -> None:
    service = JobService(pool, registry, default_max_attempts=3)
    job = await service.enqueue("maint")
    stored = await pool.fetchrow("SELECT queue, priority, max_attempts FROM _ayb_jobs WHERE id = $1", job.id)
    assert (job.queue, job.priority, job.max_attempts) == tuple(stored) == ("maintenance", -7, 1)
    explicit = await service.enqueue("maint", queue="urgent", priority=2, max_attempts=5)
    assert (explicit.queue, explicit.priority, explicit.max_attempts) == ("urgent", 2, 5)
    plain = await service.enqueue("plain")
    assert (plain.queue, plain.priority, plain.max_attempts) == ("default", 0, 3)


async def test_client_enqueue_fills_the_policy_in_a_batch_and_as_stored(db_url, pool, registry) -> None:
    async with Client(dsn=db_url) as client:
        job = await client.enqueue("maint")
        batch = await client.enqueue_many([NewJob("maint", priority=0), NewJob("plain", queue="bulk")])
    assert (job.queue, job.priority, job.max_attempts) == ("maintenance", -7, 1)
    assert [(j.queue, j.priority, j.max_attempts) for j in batch] == [("maintenance", 0, 1), ("bulk", 0, 3)]
    for j in (job, *batch):
        row = await pool.fetchrow("SELECT queue, priority, max_attempts FROM _ayb_jobs WHERE id = $1", j.id)
        assert tuple(row) == (j.queue, j.priority, j.max_attempts)


async def test_schedules_take_the_type_policy_unless_they_set_their_own(pool, registry) -> None:
    service = JobService(pool, registry, default_max_attempts=3)
    inherit = await service.create_schedule(name="inherit", job_type="maint", cron_expr="@hourly")
    own = await service.create_schedule(name="own", job_type="maint", cron_expr="@hourly", queue="q2",
                                        priority=9, max_attempts=4)
    assert (inherit.queue, inherit.priority, inherit.max_attempts) == (None, None, 1)
    await make_schedule_due(pool, inherit.id)
    await make_schedule_due(pool, own.id)
    fired = {j.schedule_id: j for j in await advance_due(pool)}
    assert (fired[inherit.id].queue, fired[inherit.id].priority) == ("maintenance", -7)
    assert (fired[own.id].queue, fired[own.id].priority, fired[own.id].max_attempts) == ("q2", 9, 4)
    triggered = await service.trigger_schedule(inherit.id)
    assert (triggered.queue, triggered.priority) == ("maintenance", -7)
    back = await service.update_schedule(own.id, clear_queue=True, priority=1)
    assert (back.queue, back.priority) == (None, 1)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"queue": "bad name"}, "queue"), ({"priority": 101}, "priority"), ({"priority": -101}, "priority"),
    ({"max_attempts": 0}, "maxAttempts"),
])
async def test_service_enqueue_rejects_bad_queue_and_priority_naming_the_field(pool, registry, kwargs,
                                                                               field) -> None:
    from ayb_jobs.errors import InvalidInput

    service = JobService(pool, registry, default_max_attempts=3)
    with pytest.raises(InvalidInput) as err:
        await service.enqueue("maint", **kwargs)
    assert err.value.field == field


async def test_queue_depth_counts_queued_scheduled_and_running(pool, registry) -> None:
    service = JobService(pool, registry, default_max_attempts=3)
    await service.enqueue("maint")
    await pool.execute("UPDATE _ayb_jobs SET run_at = now() + interval '1 hour'")
    await service.enqueue("maint")
    await service.enqueue("plain")
    await service.update_queue("empty-but-limited", concurrency=3)
    queues = {q.name: q for q in await service.list_queues()}
    assert set(queues) == {"maintenance", "default", "empty-but-limited"}
    m = queues["maintenance"]
    assert (m.queued, m.scheduled, m.running, m.paused, m.concurrency) == (2, 1, 0, False, None)
    assert queues["empty-but-limited"].concurrency == 3
    by_queue, by_type = await queue_queries.job_breakdown(pool)
    assert by_queue["maintenance"].queued == 2 and by_type["plain"].queued == 1
