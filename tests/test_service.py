"""JobService: the domain rules every front relies on (validation before the database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from ayb_jobs.errors import DuplicateJob, InvalidCron, InvalidInput, InvalidTimezone, NotFound, UnknownJobType
from ayb_jobs.handlers import default_registry
from ayb_jobs.service import MAX_ATTEMPTS_LIMIT, MAX_LIST_LIMIT, MAX_PREVIEW_COUNT, JobService

BUILTINS = {"stale_session_cleanup", "webhook_delivery_prune", "expired_oauth_cleanup",
            "expired_auth_cleanup", "job_prune"}


@pytest.fixture
def service(pool: asyncpg.Pool) -> JobService:
    return JobService(pool, default_registry(), default_max_attempts=4)


@pytest.fixture
def offline() -> JobService:
    """No database at all: a validation that let bad input through would fail on the None pool."""
    return JobService(None, default_registry(), default_max_attempts=4)


# --- jobs ---------------------------------------------------------------------------------------

async def test_enqueue_and_get(service: JobService) -> None:
    job = await service.enqueue("job_prune", {"completed_retention_hours": 5}, idempotency_key="k")
    assert (job.type, job.payload, job.max_attempts, job.idempotency_key) == (
        "job_prune", {"completed_retention_hours": 5}, 4, "k")
    assert await service.get_job(job.id) == job


async def test_enqueue_with_a_run_at_in_any_zone(service: JobService) -> None:
    at = datetime(2030, 1, 1, 9, tzinfo=UTC)
    job = await service.enqueue("job_prune", run_at=at.astimezone(ZoneInfo("Asia/Tokyo")))
    assert job.run_at == at


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"payload": [1, 2]}, "payload"),
    ({"payload": "x"}, "payload"),
    ({"max_attempts": 0}, "maxAttempts"),
    ({"max_attempts": MAX_ATTEMPTS_LIMIT + 1}, "maxAttempts"),
    ({"idempotency_key": ""}, "idempotencyKey"),
    ({"idempotency_key": "k" * 256}, "idempotencyKey"),
    ({"run_at": datetime(2030, 1, 1)}, "runAt"),
])
async def test_enqueue_rejects_bad_input_before_the_database(offline: JobService, kwargs: dict,
                                                             field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await offline.enqueue("job_prune", **kwargs)
    assert caught.value.field == field


async def test_enqueue_of_an_unknown_type(offline: JobService) -> None:
    with pytest.raises(UnknownJobType) as caught:
        await offline.enqueue("send_email")
    assert caught.value.field == "type" and set(caught.value.registered) == BUILTINS
    assert "unknown job type 'send_email'; registered: " in caught.value.message


async def test_enqueue_duplicate_key(service: JobService) -> None:
    first = await service.enqueue("job_prune", idempotency_key="once")
    with pytest.raises(DuplicateJob) as caught:
        await service.enqueue("job_prune", idempotency_key="once")
    assert caught.value.existing_job_id == str(first.id)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"state": "done"}, "state"),
    ({"limit": 0}, "limit"),
    ({"limit": MAX_LIST_LIMIT + 1}, "limit"),
    ({"offset": -1}, "offset"),
])
async def test_list_rejects_bad_filters(offline: JobService, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await offline.list_jobs(**kwargs)
    assert caught.value.field == field


async def test_get_of_an_unknown_job(service: JobService) -> None:
    with pytest.raises(NotFound):
        await service.get_job(UUID(int=7))


def test_job_types_lists_the_builtins(offline: JobService) -> None:
    types = offline.job_types()
    assert {t.type for t in types} == BUILTINS
    assert all(t.builtin and t.description for t in types)


async def test_ping(service: JobService) -> None:
    await service.ping()


# --- schedules ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "error"), [
    ({"name": ""}, InvalidInput),
    ({"name": "has space"}, InvalidInput),
    ({"name": "x" * 101}, InvalidInput),
    ({"job_type": "nope"}, UnknownJobType),
    ({"cron_expr": "* * * * * *"}, InvalidCron),
    ({"cron_expr": "@reboot"}, InvalidCron),
    ({"timezone": "Local"}, InvalidTimezone),
    ({"timezone": "Nowhere/City"}, InvalidTimezone),
    ({"payload": [1]}, InvalidInput),
    ({"max_attempts": 0}, InvalidInput),
])
async def test_create_schedule_rejects_bad_input(offline: JobService, kwargs: dict, error: type) -> None:
    args = {"name": "s", "job_type": "job_prune", "cron_expr": "0 * * * *"} | kwargs
    with pytest.raises(error):
        await offline.create_schedule(**args)


async def test_create_schedule_defaults(service: JobService) -> None:
    s = await service.create_schedule(name="s", job_type="job_prune", cron_expr="@hourly", timezone="")
    assert (s.timezone, s.enabled, s.max_attempts, s.payload) == ("UTC", True, 4, {})
    assert s.next_run_at is not None and s.next_run_at.minute == 0


async def test_update_schedule_validates(offline: JobService) -> None:
    with pytest.raises(InvalidInput):
        await offline.update_schedule(UUID(int=9), max_attempts=MAX_ATTEMPTS_LIMIT + 1)
    with pytest.raises(InvalidInput):
        await offline.update_schedule(UUID(int=9), payload=[])  # type: ignore[arg-type]
    with pytest.raises(InvalidCron):
        await offline.update_schedule(UUID(int=9), cron_expr="0 0 30 2 *")


async def test_update_of_an_unknown_schedule(service: JobService) -> None:
    with pytest.raises(NotFound):
        await service.set_enabled(UUID(int=9), True)


async def test_cron_preview(offline: JobService) -> None:
    after = datetime(2026, 3, 7, 12, tzinfo=UTC)
    times = await offline.cron_preview("30 2 * * *", "America/New_York", count=3, after=after)
    # 02:30 does not exist on 2026-03-08 in New York: it fires at 03:00 EDT (07:00 UTC).
    assert times == [datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 3, 9, 6, 30, tzinfo=UTC),
                     datetime(2026, 3, 10, 6, 30, tzinfo=UTC)]


async def test_cron_preview_from_the_database_clock(service: JobService, pool: asyncpg.Pool) -> None:
    now = await pool.fetchval("SELECT now()")
    [first, second] = await service.cron_preview("*/10 * * * *", count=2)
    assert now < first <= now + timedelta(minutes=10) and second - first == timedelta(minutes=10)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"count": 0}, InvalidInput),
    ({"count": MAX_PREVIEW_COUNT + 1}, InvalidInput),
    ({"after": datetime(2026, 1, 1)}, InvalidInput),
    ({"timezone": "Local"}, InvalidTimezone),
    ({"expr": "0 0 31 2 *"}, InvalidCron),
])
async def test_cron_preview_rejects_bad_input(offline: JobService, kwargs: dict, error: type) -> None:
    args = {"expr": "0 * * * *"} | kwargs
    with pytest.raises(error):
        await offline.cron_preview(**args)
