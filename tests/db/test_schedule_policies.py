"""Schedule overlap and misfire policies and the fire history, through the real Scheduler on the real
database. The scheduler's clock is injected, so minutes pass at once and every slot is exact; "two
daemons" are two Schedulers with their own pools racing on the same rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest
from db_helpers import claim_one, fence

from ayb_jobs.db import queries
from ayb_jobs.errors import InvalidInput, NotFound
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.scheduler import Scheduler
from ayb_jobs.service import JobService

T0 = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)  # a minute slot; the tests' clock starts here
MINUTE = timedelta(minutes=1)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def scheduler(pool: asyncpg.Pool, clock: Clock) -> Scheduler:
    return Scheduler(pool=pool, metrics=Metrics(), tick_s=15, clock=clock)


async def minutely(service: JobService, pool: asyncpg.Pool, name: str = "every-minute", **policy) -> UUID:
    """A `* * * * *` schedule whose next slot is T0 (the clock then decides when it is due)."""
    s = await service.create_schedule(name=name, job_type="job_prune", cron_expr="* * * * *", **policy)
    await pool.execute("UPDATE _ayb_job_schedules SET next_run_at = $2 WHERE id = $1", s.id, T0)
    return s.id


async def history(service: JobService, schedule_id: UUID) -> list[tuple[datetime, str]]:
    return [(f.slot_at, f.outcome) for f in reversed(await service.schedule_history(schedule_id))]


async def jobs_of(pool: asyncpg.Pool, schedule_id: UUID) -> int:
    return await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE schedule_id = $1", schedule_id)


async def next_run(pool: asyncpg.Pool, schedule_id: UUID) -> datetime:
    return await pool.fetchval("SELECT next_run_at FROM _ayb_job_schedules WHERE id = $1", schedule_id)


@pytest.fixture(autouse=True)
async def no_default_schedules(pool: asyncpg.Pool) -> None:
    """The built-in schedules would be years overdue at the tests' clock: leave them out."""
    await pool.execute("DELETE FROM _ayb_job_schedules")


@pytest.fixture
async def other_pool(db_url: str):
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    yield p
    await p.close()


# --- overlap ---------------------------------------------------------------------------------------

async def test_overlap_skip_skips_a_slot_while_the_job_runs_then_fires_again(
    service: JobService, pool: asyncpg.Pool
) -> None:
    sid = await minutely(service, pool, overlap="skip")
    clock = Clock(T0 + timedelta(seconds=0.2))
    sched = scheduler(pool, clock)
    assert await sched.run_once() == 1
    job = await claim_one(pool, worker="slow-worker")  # the job runs (and outlives the next minute)
    assert job.schedule_id == sid
    clock.at = T0 + MINUTE + timedelta(seconds=0.2)
    assert await sched.run_once() == 0
    await queries.complete_jobs(pool, [fence(job)], worker_id="slow-worker")
    clock.at = T0 + 2 * MINUTE + timedelta(seconds=0.2)
    assert await sched.run_once() == 1
    assert await history(service, sid) == [
        (T0, "enqueued"), (T0 + MINUTE, "skipped_overlap"), (T0 + 2 * MINUTE, "enqueued")]
    assert await jobs_of(pool, sid) == 2
    assert await next_run(pool, sid) == T0 + 3 * MINUTE


async def test_overlap_allow_enqueues_while_the_previous_job_is_still_queued(
    service: JobService, pool: asyncpg.Pool
) -> None:
    sid = await minutely(service, pool)
    clock = Clock(T0)
    sched = scheduler(pool, clock)
    assert await sched.run_once() == 1
    clock.at = T0 + MINUTE
    assert await sched.run_once() == 1
    assert [o for _, o in await history(service, sid)] == ["enqueued", "enqueued"]


async def test_a_queued_job_counts_as_overlapping_too(
    service: JobService, pool: asyncpg.Pool
) -> None:
    sid = await minutely(service, pool, overlap="skip")
    await service.trigger_schedule(sid)  # queued, never claimed
    assert await scheduler(pool, Clock(T0)).run_once() == 0
    assert await history(service, sid) == [(T0, "skipped_overlap")]


# --- misfire ---------------------------------------------------------------------------------------

# The daemons were stopped from just before T0 until 2 min 30 s after it: slots T0, T0+1, T0+2 missed.
RESTART = T0 + 2 * MINUTE + timedelta(seconds=30)
MISSED = [T0, T0 + MINUTE, T0 + 2 * MINUTE]


@pytest.mark.parametrize(("misfire", "enqueued"), [("all", MISSED), ("skip", []), ("coalesce", MISSED[-1:])])
async def test_misfire_policy_after_three_missed_slots(
    service: JobService, pool: asyncpg.Pool, other_pool: asyncpg.Pool, misfire: str, enqueued: list
) -> None:
    sid = await minutely(service, pool, misfire=misfire)
    clock = Clock(RESTART)
    # Two daemons restart at once and race for the same slots.
    fired = await asyncio.gather(scheduler(pool, clock).run_once(), scheduler(other_pool, clock).run_once())
    assert sum(fired) == len(enqueued) == await jobs_of(pool, sid)
    expected = [(s, "enqueued" if s in enqueued else "skipped_misfire") for s in MISSED]
    assert await history(service, sid) == expected  # exactly one decision per slot
    assert await next_run(pool, sid) == T0 + 3 * MINUTE


async def test_misfire_all_runs_at_most_misfire_max_missed_slots(
    service: JobService, pool: asyncpg.Pool
) -> None:
    sid = await minutely(service, pool, misfire="all", misfire_max=2)
    assert await scheduler(pool, Clock(RESTART)).run_once() == 2
    assert [o for _, o in await history(service, sid)] == ["skipped_misfire", "enqueued", "enqueued"]


async def test_an_on_time_slot_runs_under_every_misfire_policy(
    service: JobService, pool: asyncpg.Pool
) -> None:
    ids = [await minutely(service, pool, f"on-time-{m}", misfire=m) for m in ("all", "skip", "coalesce")]
    assert await scheduler(pool, Clock(T0 + timedelta(seconds=3))).run_once() == 3
    for sid in ids:
        assert await history(service, sid) == [(T0, "enqueued")]


async def test_a_late_on_time_slot_after_missed_ones_is_the_one_coalesce_runs(
    service: JobService, pool: asyncpg.Pool
) -> None:
    sid = await minutely(service, pool, misfire="skip")
    assert await scheduler(pool, Clock(T0 + 2 * MINUTE + timedelta(seconds=2))).run_once() == 1
    assert [o for _, o in await history(service, sid)] == ["skipped_misfire", "skipped_misfire", "enqueued"]


async def test_two_daemons_racing_pass_after_pass_make_one_decision_per_slot(
    service: JobService, pool: asyncpg.Pool, other_pool: asyncpg.Pool
) -> None:
    ids = [await minutely(service, pool, f"race-{i}", misfire=("all", "coalesce")[i % 2]) for i in range(6)]
    clock = Clock(T0)
    a, b = scheduler(pool, clock), scheduler(other_pool, clock)
    for step in range(12):  # on-time passes mixed with passes after a missed slot or two
        clock.at += MINUTE * (1 + step % 3) + timedelta(seconds=step % 2 * 20)
        await asyncio.gather(a.run_once(), b.run_once())
    per_slot = await pool.fetch(
        "SELECT schedule_id, slot_at, count(*) AS n FROM _ayb_job_schedule_fires GROUP BY 1, 2")
    assert per_slot and all(r["n"] == 1 for r in per_slot)
    for sid in ids:
        slots = [s for s, _ in await history(service, sid)]
        assert slots == [T0 + i * MINUTE for i in range(len(slots))]  # every slot, none twice
        enqueued = await pool.fetchval("SELECT count(*) FROM _ayb_job_schedule_fires "
                                       "WHERE schedule_id = $1 AND outcome = 'enqueued'", sid)
        assert await jobs_of(pool, sid) == enqueued


# --- history, validation, pruning --------------------------------------------------------------------

async def test_history_names_each_job_and_its_current_state(
    service: JobService, pool: asyncpg.Pool
) -> None:
    sid = await minutely(service, pool)
    await scheduler(pool, Clock(T0)).run_once()
    [fire] = await service.schedule_history(sid)
    assert (fire.slot_at, fire.outcome, fire.job_state, fire.decided_at) == (T0, "enqueued", "queued", T0)
    await pool.execute("DELETE FROM _ayb_jobs WHERE id = $1", fire.job_id)  # pruned: the row stays
    [fire] = await service.schedule_history(sid)
    assert (fire.outcome, fire.job_state) == ("enqueued", None)
    with pytest.raises(NotFound):
        await service.schedule_history(UUID(int=7))


async def test_policies_are_validated_saved_and_updated(
    service: JobService, pool: asyncpg.Pool
) -> None:
    s = await service.create_schedule(name="p", job_type="job_prune", cron_expr="0 * * * *")
    assert (s.overlap, s.misfire, s.misfire_max) == ("allow", "coalesce", 10)
    u = await service.update_schedule(s.id, overlap="skip", misfire="all", misfire_max=3)
    assert (u.overlap, u.misfire, u.misfire_max, u.next_run_at) == ("skip", "all", 3, s.next_run_at)
    assert u.to_api()["misfireMax"] == 3 and u.to_api()["overlap"] == "skip"
    for bad, field in (({"overlap": "never"}, "overlap"), ({"misfire": "some"}, "misfire"),
                       ({"misfire_max": 0}, "misfireMax"), ({"misfire_max": 101}, "misfireMax")):
        with pytest.raises(InvalidInput) as err:
            await service.update_schedule(s.id, **bad)
        assert err.value.field == field


async def test_pruning_keeps_the_newest_decisions_of_each_schedule(
    service: JobService, pool: asyncpg.Pool
) -> None:
    sid = await minutely(service, pool, misfire="skip")
    await scheduler(pool, Clock(T0 + 9 * MINUTE + timedelta(seconds=30))).run_once()  # 10 slots
    assert await queries.prune_schedule_fires(pool, keep=4) == 6
    assert [s for s, _ in await history(service, sid)] == [T0 + i * MINUTE for i in range(6, 10)]
    assert await queries.prune_schedule_fires(pool, keep=4) == 0


async def test_two_daemons_share_a_large_minute_in_batches_with_one_decision_each(
    service: JobService, pool: asyncpg.Pool, other_pool: asyncpg.Pool, monkeypatch
) -> None:
    monkeypatch.setattr("ayb_jobs.runtime.scheduler.FIRE_BATCH", 40)  # many batches, both daemons
    await pool.execute(
        "INSERT INTO _ayb_job_schedules (name, job_type, cron_expr, next_run_at) "
        "SELECT 'bulk-' || i, 'job_prune', '* * * * *', $1 FROM generate_series(1, 1200) i", T0)
    clock = Clock(T0 + timedelta(seconds=0.1))
    fired = await asyncio.gather(scheduler(pool, clock).run_once(), scheduler(other_pool, clock).run_once())
    assert sum(fired) == 1200
    assert await pool.fetchval("SELECT count(*) FROM _ayb_job_schedule_fires WHERE slot_at = $1", T0) == 1200
    assert await pool.fetchval("SELECT count(DISTINCT schedule_id) FROM _ayb_jobs") == 1200
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs") == 1200
    assert await pool.fetchval("SELECT count(*) FROM _ayb_job_schedules WHERE next_run_at = $1",
                               T0 + MINUTE) == 1200


async def test_the_loop_prunes_the_history_only_when_the_next_slot_is_far(
    service: JobService, pool: asyncpg.Pool, monkeypatch
) -> None:
    sid = await minutely(service, pool, misfire="skip")
    clock = Clock(T0 + 9 * MINUTE + timedelta(seconds=30))
    sched = scheduler(pool, clock)
    await sched.run_once()  # 10 decisions; the next slot is 30 s away
    monkeypatch.setattr("ayb_jobs.runtime.scheduler.HISTORY_KEEP", 4)
    monkeypatch.setattr("ayb_jobs.runtime.scheduler.PRUNE_EVERY_S", 0.0)
    clock.at = T0 + 9 * MINUTE + timedelta(seconds=55)  # 5 s before the next slot: not now
    assert await sched._prune_history() is False
    assert len(await history(service, sid)) == 10
    clock.at = T0 + 9 * MINUTE + timedelta(seconds=40)
    assert await sched._prune_history() is True
    assert [s for s, _ in await history(service, sid)] == [T0 + i * MINUTE for i in range(6, 10)]


async def test_scheduled_jobs_get_time_ordered_ids_like_every_other_job(
    service: JobService, pool: asyncpg.Pool
) -> None:
    sid = await minutely(service, pool)
    await scheduler(pool, Clock(T0)).run_once()
    job_id = await pool.fetchval("SELECT id FROM _ayb_jobs WHERE schedule_id = $1", sid)
    assert job_id.version == 7
