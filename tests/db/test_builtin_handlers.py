"""Built-in cleanup handlers against AYB-shaped tables: exactly the expired rows go."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
import structlog
from db_helpers import add_job, claim_one, fence

from ayb_jobs.db import queries
from ayb_jobs.db.queries import Failure
from ayb_jobs.errors import InvalidPayload
from ayb_jobs.handlers import JobContext
from ayb_jobs.handlers import builtin as b

AYB_TABLES = """
CREATE TABLE _ayb_sessions (id serial PRIMARY KEY, expires_at timestamptz NOT NULL);
CREATE TABLE _ayb_webhook_deliveries (id serial PRIMARY KEY, delivered_at timestamptz NOT NULL);
CREATE TABLE _ayb_oauth_tokens (id serial PRIMARY KEY, expires_at timestamptz NOT NULL,
                                revoked_at timestamptz);
CREATE TABLE _ayb_oauth_authorization_codes (id serial PRIMARY KEY, expires_at timestamptz NOT NULL,
                                              used_at timestamptz);
CREATE TABLE _ayb_magic_links (id serial PRIMARY KEY, expires_at timestamptz NOT NULL);
CREATE TABLE _ayb_password_resets (id serial PRIMARY KEY, expires_at timestamptz NOT NULL);
"""


def _ctx(pool: asyncpg.Pool | None) -> JobContext:
    return JobContext(job_id=uuid.uuid4(), job_type="builtin", attempt=1, max_attempts=3, worker_id="w",
                      pool=pool, log=structlog.get_logger())


@pytest.fixture
def ctx(pool: asyncpg.Pool) -> JobContext:
    return _ctx(pool)


@pytest.fixture
def offline_ctx() -> JobContext:
    """No database: payload checks come first, so a bad payload never reaches it."""
    return _ctx(None)


@pytest.fixture
async def ayb(pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> asyncpg.Pool:
    """The AYB tables, and a small batch size so that a cleanup takes several delete statements."""
    monkeypatch.setattr(b, "BATCH", 7)
    await pool.execute(AYB_TABLES)
    return pool


async def _seed(pool: asyncpg.Pool, table: str, column: str, n: int, age: str, extra: str = "") -> None:
    cols = f"{column}{', ' + extra.split('=')[0] if extra else ''}"
    vals = f"now() - interval '{age}'{', ' + extra.split('=')[1] if extra else ''}"
    await pool.execute(f"INSERT INTO {table} ({cols}) SELECT {vals} FROM generate_series(1, {n})")


async def _left(pool: asyncpg.Pool, table: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table}")


async def test_stale_session_cleanup_deletes_in_batches(ayb: asyncpg.Pool, ctx: JobContext) -> None:
    await _seed(ayb, "_ayb_sessions", "expires_at", 23, "1 second")  # 3 full batches and a short one
    await _seed(ayb, "_ayb_sessions", "expires_at", 4, "-1 hour")  # still valid
    assert await b.stale_session_cleanup({}, ctx) == {"deleted": 23}
    assert await _left(ayb, "_ayb_sessions") == 4
    assert await b.stale_session_cleanup({}, ctx) == {"deleted": 0}


async def test_stale_session_cleanup_of_an_exact_multiple_of_the_batch(ayb: asyncpg.Pool,
                                                                        ctx: JobContext) -> None:
    await _seed(ayb, "_ayb_sessions", "expires_at", 14, "1 second")
    assert await b.stale_session_cleanup({}, ctx) == {"deleted": 14}
    assert await _left(ayb, "_ayb_sessions") == 0


async def test_webhook_delivery_prune_honours_retention(ayb: asyncpg.Pool, ctx: JobContext) -> None:
    await _seed(ayb, "_ayb_webhook_deliveries", "delivered_at", 9, "169 hours")
    await _seed(ayb, "_ayb_webhook_deliveries", "delivered_at", 3, "167 hours")
    await _seed(ayb, "_ayb_webhook_deliveries", "delivered_at", 2, "1 hour")
    assert await b.webhook_delivery_prune({}, ctx) == {"deleted": 9}
    assert await _left(ayb, "_ayb_webhook_deliveries") == 5
    assert await b.webhook_delivery_prune({"retention_hours": 2}, ctx) == {"deleted": 3}
    assert await _left(ayb, "_ayb_webhook_deliveries") == 2


@pytest.mark.parametrize("bad", ["x", 0, -1, 1.5, True, None])
async def test_webhook_delivery_prune_rejects_a_bad_retention(offline_ctx: JobContext, bad: Any) -> None:
    with pytest.raises(InvalidPayload, match="retention_hours"):
        await b.webhook_delivery_prune({"retention_hours": bad}, offline_ctx)


@pytest.mark.parametrize(("handler", "payload"), [
    (b.stale_session_cleanup, {"oops": 1}),
    (b.expired_oauth_cleanup, {"revoked_retention_hours": "720"}),
    (b.job_prune, {"failed_retention_hours": 0}),
])
async def test_bad_payloads_are_invalid(offline_ctx: JobContext, handler: Any, payload: dict) -> None:
    with pytest.raises(InvalidPayload):
        await handler(payload, offline_ctx)


async def test_expired_oauth_cleanup(ayb: asyncpg.Pool, ctx: JobContext) -> None:
    tokens, codes = "_ayb_oauth_tokens", "_ayb_oauth_authorization_codes"
    await _seed(ayb, tokens, "expires_at", 8, "25 hours")  # expired over a day ago: gone
    await _seed(ayb, tokens, "expires_at", 2, "23 hours")  # expired recently: kept
    await _seed(ayb, tokens, "expires_at", 3, "-1 hour", "revoked_at=now() - interval '721 hours'")  # gone
    await _seed(ayb, tokens, "expires_at", 1, "-1 hour", "revoked_at=now() - interval '30 minutes'")  # kept
    await _seed(ayb, codes, "expires_at", 5, "1 minute")  # expired: gone
    await _seed(ayb, codes, "expires_at", 2, "-1 hour", "used_at=now() - interval '25 hours'")  # gone
    await _seed(ayb, codes, "expires_at", 1, "-1 hour", "used_at=now() - interval '1 hour'")  # kept
    assert await b.expired_oauth_cleanup({}, ctx) == {"tokens_deleted": 11, "codes_deleted": 7}
    assert (await _left(ayb, tokens), await _left(ayb, codes)) == (3, 1)
    assert await b.expired_oauth_cleanup({"revoked_retention_hours": 1}, ctx) == {
        "tokens_deleted": 0, "codes_deleted": 0}
    await ayb.execute(f"UPDATE {tokens} SET revoked_at = now() - interval '2 hours' "
                      "WHERE revoked_at IS NOT NULL")
    assert (await b.expired_oauth_cleanup({"revoked_retention_hours": 1}, ctx))["tokens_deleted"] == 1


async def test_expired_auth_cleanup(ayb: asyncpg.Pool, ctx: JobContext) -> None:
    await _seed(ayb, "_ayb_magic_links", "expires_at", 10, "1 second")
    await _seed(ayb, "_ayb_magic_links", "expires_at", 1, "-10 minutes")
    await _seed(ayb, "_ayb_password_resets", "expires_at", 2, "1 day")
    await _seed(ayb, "_ayb_password_resets", "expires_at", 3, "-1 day")
    assert await b.expired_auth_cleanup({}, ctx) == {"magic_links_deleted": 10, "password_resets_deleted": 2}
    assert (await _left(ayb, "_ayb_magic_links"), await _left(ayb, "_ayb_password_resets")) == (1, 3)


async def test_on_a_bare_database_each_handler_skips(ctx: JobContext) -> None:
    for handler, table in [
        (b.stale_session_cleanup, "_ayb_sessions"),
        (b.webhook_delivery_prune, "_ayb_webhook_deliveries"),
        (b.expired_oauth_cleanup, "_ayb_oauth_tokens"),
        (b.expired_auth_cleanup, "_ayb_magic_links"),
    ]:
        assert await handler({}, ctx) == {"skipped": f"{table} not found"}, handler.__name__


async def test_a_missing_second_table_is_reported(pool: asyncpg.Pool, ctx: JobContext) -> None:
    await pool.execute("CREATE TABLE _ayb_magic_links (id serial, expires_at timestamptz)")
    assert await b.expired_auth_cleanup({}, ctx) == {"skipped": "_ayb_password_resets not found"}


async def _job_in(pool: asyncpg.Pool, state: str, age_h: int) -> uuid.UUID:
    job = await add_job(pool, max_attempts=1)
    if state == "completed":
        claimed = await claim_one(pool)
        await queries.complete_jobs(pool, [fence(claimed)], worker_id="w1")
    elif state == "failed":
        claimed = await claim_one(pool)
        await queries.fail_jobs(pool, [Failure(fence(claimed), "e", 1.0)], worker_id="w1")
    elif state == "canceled":
        await queries.cancel_job(pool, job.id)
    await pool.execute(
        "UPDATE _ayb_jobs SET completed_at = completed_at - make_interval(hours => $2), "
        "canceled_at = canceled_at - make_interval(hours => $2), "
        "updated_at = updated_at - make_interval(hours => $2), "
        "created_at = created_at - make_interval(hours => $2) WHERE id = $1", job.id, age_h)
    return job.id


async def test_job_prune_deletes_only_finished_jobs_past_their_retention(
    pool: asyncpg.Pool, ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(b, "BATCH", 2)
    gone = [await _job_in(pool, "completed", 169), await _job_in(pool, "canceled", 169),
            await _job_in(pool, "completed", 200), await _job_in(pool, "failed", 721)]
    kept = [await _job_in(pool, "completed", 167), await _job_in(pool, "canceled", 1),
            await _job_in(pool, "failed", 719), await _job_in(pool, "failed", 169),
            await _job_in(pool, "queued", 1000)]
    assert await b.job_prune({}, ctx) == {"deleted": len(gone), "audit_deleted": 0}
    left = {r["id"] for r in await pool.fetch("SELECT id FROM _ayb_jobs")}
    assert left == set(kept)
    assert await b.job_prune({"completed_retention_hours": 1, "failed_retention_hours": 1}, ctx) == {
        "deleted": 4, "audit_deleted": 0}
