"""Migrations: applied once each, under a lock, with the schema's indexes and constraints."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from ayb_jobs.db.migrate import available, check_current, migrate, migrate_dsn, pending
from ayb_jobs.errors import SchemaBehind

ALL = [m.name for m in available()]
DEFAULT_SCHEDULES = {
    "session_cleanup_hourly": ("stale_session_cleanup", "0 * * * *", {}),
    "webhook_delivery_prune_daily": ("webhook_delivery_prune", "0 3 * * *", {"retention_hours": 168}),
    "expired_oauth_cleanup_daily": ("expired_oauth_cleanup", "0 4 * * *", {}),
    "expired_auth_cleanup_daily": ("expired_auth_cleanup", "0 5 * * *", {}),
    "job_prune_daily": ("job_prune", "30 2 * * *", {}),
}


def test_migration_files_are_numbered_from_023() -> None:
    assert ALL[:2] == ["023_ayb_jobs.sql", "024_ayb_job_schedules.sql"]
    assert ALL == sorted(ALL)


async def test_migrated_database_is_current_and_migrate_again_is_a_noop(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await pending(conn) == []
        await check_current(conn)
        assert await migrate(conn) == []
        names = [r["name"] for r in await conn.fetch("SELECT name FROM _ayb_migrations ORDER BY id")]
    assert names == ALL


async def test_check_current_refuses_a_database_that_is_behind(empty_db_url: str) -> None:
    conn = await asyncpg.connect(empty_db_url)
    try:
        assert await pending(conn) == ALL
        with pytest.raises(SchemaBehind, match="run `ayb-jobs migrate`"):
            await check_current(conn)
    finally:
        await conn.close()


async def test_three_concurrent_migrates_on_an_empty_database_apply_each_file_once(
    empty_db_url: str,
) -> None:
    conns = [await asyncpg.connect(empty_db_url) for _ in range(2)]
    try:
        results = await asyncio.gather(migrate(conns[0]), migrate(conns[1]), migrate_dsn(empty_db_url))
        applied = [name for result in results for name in result]
        assert sorted(applied) == ALL
        rows = await conns[0].fetch("SELECT name, count(*) AS n FROM _ayb_migrations GROUP BY name")
        assert {r["name"]: r["n"] for r in rows} == dict.fromkeys(ALL, 1)
        assert await migrate(conns[0]) == []
        assert await conns[0].fetchval("SELECT count(*) FROM _ayb_job_schedules") == len(DEFAULT_SCHEDULES)
    finally:
        for conn in conns:
            await conn.close()


async def test_default_schedules_are_inserted_by_the_migration(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch("SELECT * FROM _ayb_job_schedules")
    found = {r["name"]: (r["job_type"], r["cron_expr"], r["payload"]) for r in rows}
    assert found.keys() == DEFAULT_SCHEDULES.keys()
    for name, (job_type, expr, payload) in DEFAULT_SCHEDULES.items():
        got_type, got_expr, got_payload = found[name]
        assert (got_type, got_expr) == (job_type, expr)
        assert json.loads(got_payload) == payload
    assert all(r["timezone"] == "UTC" and r["enabled"] and r["max_attempts"] == 3 for r in rows)
    # The daemon computes the first slot at start (fill-missing).
    assert all(r["next_run_at"] is None for r in rows)


async def test_a_deleted_default_schedule_stays_deleted_after_migrate(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM _ayb_job_schedules WHERE name = 'job_prune_daily'")
    async with pool.acquire() as conn:
        assert await migrate(conn) == []
    names = {r["name"] for r in await pool.fetch("SELECT name FROM _ayb_job_schedules")}
    assert names == DEFAULT_SCHEDULES.keys() - {"job_prune_daily"}


# --- the catalogs ------------------------------------------------------------------------------

async def _indexdef(pool: asyncpg.Pool, name: str) -> str:
    found = await pool.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", name)
    assert found is not None, f"index {name} missing"
    return found


async def test_next_due_index_is_partial_on_queued_in_run_at_order(pool: asyncpg.Pool) -> None:
    d = await _indexdef(pool, "idx_ayb_jobs_next_due")
    assert "ON public._ayb_jobs" in d and "(run_at, id)" in d
    assert "WHERE (((state)::text = 'queued'::text) AND (attempts >= 0))" in d


async def test_lease_index_is_partial_on_running(pool: asyncpg.Pool) -> None:
    d = await _indexdef(pool, "idx_ayb_jobs_lease")
    assert "(state, lease_until)" in d and "WHERE ((state)::text = 'running'::text)" in d


async def test_idempotency_key_index_is_unique_and_partial(pool: asyncpg.Pool) -> None:
    d = await _indexdef(pool, "idx_ayb_jobs_idempotency_key")
    assert d.startswith("CREATE UNIQUE INDEX")
    assert "(idempotency_key) WHERE (idempotency_key IS NOT NULL)" in d


async def test_listing_and_pruning_indexes_exist(pool: asyncpg.Pool) -> None:
    assert "created_at DESC" in await _indexdef(pool, "idx_ayb_jobs_created_at")
    for name in ("idx_ayb_jobs_completed_at", "idx_ayb_jobs_canceled_at", "idx_ayb_jobs_failed_updated",
                 "idx_ayb_jobs_schedule_id"):
        await _indexdef(pool, name)


async def _checks(pool: asyncpg.Pool, table: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint WHERE conrelid = $1::regclass "
        "AND contype = 'c'", table,
    )
    return [r["d"] for r in rows]


async def test_state_and_max_attempts_checks(pool: asyncpg.Pool) -> None:
    checks = await _checks(pool, "_ayb_jobs")
    [state_check] = [c for c in checks if "state" in c]
    for state in ("queued", "running", "completed", "failed", "canceled"):
        assert f"'{state}'" in state_check
    assert any("max_attempts >= 1" in c for c in checks)
    assert any("max_attempts >= 1" in c for c in await _checks(pool, "_ayb_job_schedules"))
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("INSERT INTO _ayb_jobs (type, state) VALUES ('x', 'done')")
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("INSERT INTO _ayb_jobs (type, max_attempts) VALUES ('x', 0)")


async def test_schedule_fk_sets_null_on_delete(pool: asyncpg.Pool) -> None:
    fk = await pool.fetchrow(
        "SELECT c.contype::text AS contype, c.confdeltype::text AS confdeltype, "
        "c.confrelid::regclass::text AS target, n.nspname "
        "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE c.conname = 'fk_ayb_jobs_schedule_id'"
    )
    assert fk is not None
    assert (fk["contype"], fk["confdeltype"], fk["target"], fk["nspname"]) == (
        "f", "n", "_ayb_job_schedules", "public")


async def test_schedule_name_is_unique(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint "
        "WHERE conrelid = '_ayb_job_schedules'::regclass AND contype = 'u'"
    )
    assert [r["d"] for r in rows] == ["UNIQUE (name)"]
