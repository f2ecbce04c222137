"""job_prune also prunes the admin audit log: rows older than audit_retention_hours (default 2160)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
import structlog

from ayb_jobs.errors import InvalidPayload
from ayb_jobs.handlers import JobContext
from ayb_jobs.handlers import builtin as b


def _ctx(pool: asyncpg.Pool) -> JobContext:
    return JobContext(job_id=uuid.uuid4(), job_type="job_prune", attempt=1, max_attempts=3, worker_id="w",
                      pool=pool, log=structlog.get_logger())


async def _audit_aged(pool: asyncpg.Pool, hours: int, n: int = 1) -> None:
    await pool.execute("INSERT INTO _ayb_admin_audit (at, action, target) "
                       "SELECT now() - make_interval(hours => $1), 'job.cancel', 'x' "
                       "FROM generate_series(1, $2)", hours, n)


async def test_job_prune_deletes_audit_rows_past_the_retention_in_batches(
        pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(b, "BATCH", 2)
    await _audit_aged(pool, 2161, 5)  # past the 90-day default: gone, over three batches
    await _audit_aged(pool, 2159, 2)  # kept
    assert (await b.job_prune({}, _ctx(pool)))["audit_deleted"] == 5
    assert await pool.fetchval("SELECT count(*) FROM _ayb_admin_audit") == 2
    assert (await b.job_prune({"audit_retention_hours": 1}, _ctx(pool)))["audit_deleted"] == 2


@pytest.mark.parametrize("bad", [0, "24", True, 1.5])
async def test_a_bad_audit_retention_is_an_invalid_payload(pool: asyncpg.Pool, bad: object) -> None:
    with pytest.raises(InvalidPayload, match="audit_retention_hours"):
        await b.job_prune({"audit_retention_hours": bad}, _ctx(pool))
