"""Job ids are time-ordered UUIDs (version 7), so live jobs' primary-key entries sit together at the
index's newest end instead of all over an index made mostly of finished jobs. Enqueues send ids
made by the client (ayb_jobs.ids); every other insert takes the column default, _ayb_uuid_v7()."""

from __future__ import annotations

import time
from uuid import UUID

import asyncpg
from db_helpers import add_job, add_jobs


def _millis(job_id: UUID) -> int:
    return int.from_bytes(job_id.bytes[:6], "big")


async def test_an_enqueued_job_id_is_a_version_7_uuid_carrying_its_creation_time(pool: asyncpg.Pool) -> None:
    job = await add_job(pool)
    assert job.id.version == 7 and job.id.variant == "specified in RFC 4122"
    created = await pool.fetchval("SELECT created_at FROM _ayb_jobs WHERE id = $1", job.id)
    # The client's clock, taken just before the statement's now(); here both are this machine's.
    assert abs(_millis(job.id) - int(created.timestamp() * 1000)) < 5_000


async def test_the_column_default_is_a_version_7_uuid_carrying_its_creation_time(pool: asyncpg.Pool) -> None:
    job_id, created = await pool.fetchrow(
        "INSERT INTO _ayb_jobs (type) VALUES ('test.job') RETURNING id, created_at")
    assert job_id.version == 7 and job_id.variant == "specified in RFC 4122"
    # The id takes the clock while the row is written, just after the statement's now().
    lag_ms = _millis(job_id) - int(created.timestamp() * 1000)
    assert 0 <= lag_ms < 5_000


async def test_a_job_enqueued_later_has_a_greater_id(pool: asyncpg.Pool) -> None:
    [first] = await add_jobs(pool, 1)
    # Wait until the clock is past the first id's millisecond (a condition, not a sleep).
    while time.time_ns() // 1_000_000 <= _millis(first.id):
        pass
    later = await add_jobs(pool, 50)
    assert all(job.id > first.id for job in later)
    assert len({job.id for job in later}) == 50
