"""Schedules through JobService and the scheduler's statements, on the real database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest
from db_helpers import advance_due, db_now, fire_one, make_schedule_due

from ayb_jobs import cron
from ayb_jobs.db import queries
from ayb_jobs.errors import Conflict, InvalidCron, InvalidTimezone, NotFound, UnknownJobType
from ayb_jobs.service import JobService

YEARLY = "0 0 1 1 *"
UNKNOWN = UUID("00000000-0000-0000-0000-0000000000aa")


async def _create(service: JobService, name: str = "nightly", expr: str = YEARLY, **kw):
    kw.setdefault("job_type", "job_prune")
    return await service.create_schedule(name=name, cron_expr=expr, **kw)


async def _jobs_of(pool: asyncpg.Pool, schedule_id: UUID) -> int:
    return await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE schedule_id = $1", schedule_id)


async def _set_next(pool: asyncpg.Pool, schedule_id: UUID, sql_expr: str):
    """Put next_run_at on an instant no cron computes, to see whether a write recomputed it."""
    return await pool.fetchval(
        f"UPDATE _ayb_job_schedules SET next_run_at = {sql_expr} WHERE id = $1 RETURNING next_run_at",
        schedule_id)


# --- create / read / delete ----------------------------------------------------------------------

async def test_create_computes_the_first_slot(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service, payload={"completed_retention_hours": 2}, max_attempts=4)
    assert (s.job_type, s.cron_expr, s.timezone, s.enabled, s.max_attempts) == (
        "job_prune", YEARLY, "UTC", True, 4)
    assert s.payload == {"completed_retention_hours": 2} and s.last_run_at is None
    assert s.next_run_at == cron.next_fire_after(YEARLY, "UTC", s.created_at)
    assert await service.get_schedule(s.id) == s


async def test_a_new_schedule_never_fires_immediately(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service, expr="* * * * *")
    assert s.next_run_at > await db_now(pool)
    assert await queries.due_schedules(pool) == []


async def test_create_disabled_has_no_next_run(service: JobService) -> None:
    s = await _create(service, enabled=False)
    assert (s.enabled, s.next_run_at) == (False, None)


async def test_duplicate_names_are_a_conflict_with_a_message(service: JobService) -> None:
    await _create(service, "dup")
    with pytest.raises(Conflict, match="a schedule with this name already exists"):
        await _create(service, "dup", expr="0 3 * * *")


async def test_schedules_of_unknown_job_types_are_rejected(service: JobService, pool: asyncpg.Pool) -> None:
    with pytest.raises(UnknownJobType, match="unknown job type 'nope'"):
        await _create(service, job_type="nope")
    assert await pool.fetchval("SELECT count(*) FROM _ayb_job_schedules WHERE name = 'nightly'") == 0


async def test_bad_cron_and_timezone_are_rejected(service: JobService) -> None:
    with pytest.raises(InvalidCron):
        await _create(service, expr="0 0 31 2 *")
    with pytest.raises(InvalidTimezone):
        await _create(service, timezone="Mars/Base")
    s = await _create(service)
    with pytest.raises(InvalidCron):
        await service.update_schedule(s.id, cron_expr="@reboot")
    with pytest.raises(InvalidTimezone):
        await service.update_schedule(s.id, timezone="Local")


async def test_list_get_delete(service: JobService) -> None:
    a = await _create(service, "zz-last")
    names = [s.name for s in await service.list_schedules()]
    assert names == sorted(names) and "zz-last" in names and len(names) == 6
    await service.delete_schedule(a.id)
    with pytest.raises(NotFound):
        await service.get_schedule(a.id)
    with pytest.raises(NotFound):
        await service.delete_schedule(a.id)
    with pytest.raises(NotFound):
        await service.update_schedule(UNKNOWN, payload={})


async def test_deleting_a_schedule_keeps_its_jobs_with_a_null_schedule_id(
    service: JobService, pool: asyncpg.Pool
) -> None:
    s = await _create(service)
    job = await service.trigger_schedule(s.id)
    await service.delete_schedule(s.id)
    kept = await queries.get_job(pool, job.id)
    assert kept.schedule_id is None and kept.type == "job_prune"


# --- the scheduler's advance --------------------------------------------------------------------

async def test_advance_enqueues_one_job_and_moves_the_slot(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service, payload={"failed_retention_hours": 9}, max_attempts=4)
    await make_schedule_due(pool, s.id)
    [job] = await advance_due(pool)
    assert (job.schedule_id, job.type, job.payload, job.max_attempts) == (
        s.id, "job_prune", {"failed_retention_hours": 9}, 4)
    after = await service.get_schedule(s.id)
    now = await db_now(pool)
    assert after.next_run_at > now and after.last_run_at is not None and after.last_run_at <= now
    assert await advance_due(pool) == []
    assert await _jobs_of(pool, s.id) == 1


async def test_a_stale_due_read_does_not_advance_again(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service)
    await make_schedule_due(pool, s.id)
    [due] = await queries.due_schedules(pool)
    nxt = cron.next_fire_after(due.cron_expr, due.timezone, due.now)
    assert await fire_one(pool, due, next_run_at=nxt) is not None
    assert await fire_one(pool, due, next_run_at=nxt) is None


async def test_advance_is_refused_when_cron_changed_since_the_read(service: JobService,
                                                                    pool: asyncpg.Pool) -> None:
    s = await _create(service)
    await make_schedule_due(pool, s.id)
    [due] = await queries.due_schedules(pool)
    await service.update_schedule(s.id, cron_expr="0 6 * * *")
    assert await fire_one(pool, due, next_run_at=due.now + timedelta(days=9)) is None
    assert await _jobs_of(pool, s.id) == 0


async def test_disabled_schedules_are_not_advanced(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service)
    await make_schedule_due(pool, s.id)
    [due] = await queries.due_schedules(pool)
    await pool.execute("UPDATE _ayb_job_schedules SET enabled = false WHERE id = $1", s.id)
    assert await queries.due_schedules(pool) == []
    assert await fire_one(pool, due, next_run_at=due.now + timedelta(days=1)) is None
    assert await _jobs_of(pool, s.id) == 0


async def test_advance_sends_the_wake_up_notify(service: JobService, pool: asyncpg.Pool, connect) -> None:
    listener = await connect()
    woke = asyncio.Event()
    await listener.add_listener("ayb_jobs", lambda *_: woke.set())
    s = await _create(service)
    await make_schedule_due(pool, s.id)
    assert len(await advance_due(pool)) == 1
    await asyncio.wait_for(woke.wait(), 5)


async def test_two_daemons_advancing_at_once_enqueue_exactly_one_job(
    service: JobService, pool: asyncpg.Pool, connect
) -> None:
    s = await _create(service, expr="* * * * *")
    a, b = await connect(), await connect()
    for round_ in range(20):
        await make_schedule_due(pool, s.id)
        # Both read the schedule as due, then both try to advance it.
        dues = await asyncio.gather(queries.due_schedules(a), queries.due_schedules(b))
        assert all(len(d) == 1 for d in dues)
        nexts = [cron.next_fire_after(d[0].cron_expr, d[0].timezone, d[0].now) for d in dues]
        got = await asyncio.gather(fire_one(a, dues[0][0], next_run_at=nexts[0]),
                                   fire_one(b, dues[1][0], next_run_at=nexts[1]))
        assert sum(j is not None for j in got) == 1, f"round {round_}"
    assert await _jobs_of(pool, s.id) == 20


async def test_an_update_racing_the_advance_cannot_restore_the_old_slot(
    service: JobService, pool: asyncpg.Pool, connect
) -> None:
    s = await _create(service, expr="* * * * *")
    scheduler = await connect()

    async def ticks(n: int) -> int:
        enqueued = 0
        for _ in range(n):
            enqueued += len(await advance_due(scheduler))
        return enqueued

    for round_ in range(10):
        await make_schedule_due(pool, s.id)
        change = {"payload": {"completed_retention_hours": round_ + 1}} if round_ % 2 else {"max_attempts": 2}
        _, enqueued = await asyncio.gather(service.update_schedule(s.id, **change), ticks(5))
        enqueued += await ticks(1)
        assert enqueued == 1, f"round {round_}"
        assert (await service.get_schedule(s.id)).next_run_at > await db_now(pool)
    assert await _jobs_of(pool, s.id) == 10


# --- update, enable, disable --------------------------------------------------------------------

async def test_disable_clears_next_run_and_keeps_last_run(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service)
    await make_schedule_due(pool, s.id)
    await advance_due(pool)
    ran = (await service.get_schedule(s.id)).last_run_at
    off = await service.set_enabled(s.id, False)
    assert (off.enabled, off.next_run_at, off.last_run_at) == (False, None, ran)
    assert await advance_due(pool) == []
    payload_only = await service.update_schedule(s.id, payload={"failed_retention_hours": 5})
    assert (payload_only.enabled, payload_only.next_run_at) == (False, None)


async def test_enable_computes_the_next_slot_from_now(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service, expr="*/5 * * * *", enabled=False)
    before = await db_now(pool)
    on = await service.set_enabled(s.id, True)
    assert on.enabled and before < on.next_run_at <= before + timedelta(minutes=5, seconds=1)
    assert on.next_run_at.minute % 5 == 0 and on.next_run_at.second == 0


async def test_enable_of_an_enabled_schedule_changes_nothing(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service)
    odd = await _set_next(pool, s.id, "now() + interval '7 minutes 3 seconds'")
    again = await service.set_enabled(s.id, True)
    assert (again.enabled, again.next_run_at) == (True, odd)


async def test_update_without_timing_changes_keeps_next_run(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service)
    odd = await _set_next(pool, s.id, "now() + interval '7 minutes 3 seconds'")
    updated = await service.update_schedule(s.id, payload={"completed_retention_hours": 3}, max_attempts=9)
    assert (updated.payload, updated.max_attempts, updated.next_run_at) == (
        {"completed_retention_hours": 3}, 9, odd)


async def test_update_with_a_new_cron_recomputes_next_run(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service)
    before = await db_now(pool)
    updated = await service.update_schedule(s.id, cron_expr="*/5 * * * *")
    assert updated.cron_expr == "*/5 * * * *"
    assert before < updated.next_run_at <= before + timedelta(minutes=5, seconds=1)


async def test_update_with_a_new_timezone_recomputes_next_run(service: JobService) -> None:
    s = await _create(service, expr="0 12 * * *")
    assert s.next_run_at.hour == 12
    updated = await service.update_schedule(s.id, timezone="Asia/Tokyo")
    assert updated.timezone == "Asia/Tokyo" and updated.next_run_at.hour == 3  # 12:00 JST


async def test_update_disable_clears_next_run(service: JobService) -> None:
    s = await _create(service)
    off = await service.update_schedule(s.id, enabled=False, payload={"failed_retention_hours": 1})
    assert (off.enabled, off.next_run_at, off.payload) == (False, None, {"failed_retention_hours": 1})


# --- start-up fill and manual trigger -----------------------------------------------------------

async def test_fill_missing_next_run(pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE _ayb_job_schedules SET enabled = false WHERE name = 'job_prune_daily'")
    missing = await queries.schedules_missing_next_run(pool)
    assert len(missing) == 4
    nexts = [cron.next_fire_after(expr, tz, now) for _, expr, tz, now in missing]
    assert await queries.set_missing_next_run(pool, [m[0] for m in missing], nexts) == 4
    assert await queries.schedules_missing_next_run(pool) == []
    rows = await pool.fetch("SELECT name, next_run_at FROM _ayb_job_schedules WHERE enabled")
    assert all(r["next_run_at"] > missing[0][3] for r in rows)
    # Never overwrites a slot that is already set, nor fills a disabled schedule.
    assert await queries.set_missing_next_run(pool, [m[0] for m in missing], nexts) == 0
    disabled = await pool.fetchval("SELECT id FROM _ayb_job_schedules WHERE name = 'job_prune_daily'")
    assert await queries.set_missing_next_run(pool, [disabled], [nexts[0]]) == 0


async def test_seconds_until_next_schedule(service: JobService, pool: asyncpg.Pool) -> None:
    assert await queries.seconds_until_next_schedule(pool) is None
    await _create(service, expr="*/5 * * * *")
    seconds = await queries.seconds_until_next_schedule(pool)
    assert 0 < seconds <= 301


async def test_trigger_enqueues_one_run_and_leaves_the_times(service: JobService, pool: asyncpg.Pool) -> None:
    s = await _create(service, payload={"completed_retention_hours": 1}, max_attempts=2)
    job = await service.trigger_schedule(s.id)
    assert (job.schedule_id, job.type, job.payload, job.max_attempts) == (
        s.id, "job_prune", {"completed_retention_hours": 1}, 2)
    assert job.to_api()["scheduleId"] == str(s.id)
    after = await service.get_schedule(s.id)
    assert (after.next_run_at, after.last_run_at, after.updated_at) == (s.next_run_at, None, s.updated_at)
    with pytest.raises(NotFound):
        await service.trigger_schedule(UNKNOWN)


async def test_trigger_sends_the_wake_up_notify(service: JobService, connect) -> None:
    listener = await connect()
    woke = asyncio.Event()
    await listener.add_listener("ayb_jobs", lambda *_: woke.set())
    s = await _create(service)
    await service.trigger_schedule(s.id)
    await asyncio.wait_for(woke.wait(), 5)
