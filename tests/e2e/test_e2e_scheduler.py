"""Schedules across daemons, cron timing, the built-in cleanup jobs, and the legacy pruner."""

from __future__ import annotations

import signal
from datetime import timedelta

import asyncpg
import pytest
from e2e_harness import insert_job, poll_until, wait_job_state


async def add_schedule(db, name: str, cron_expr: str, *, due_now: bool) -> object:
    return await db.fetchval(
        "INSERT INTO _ayb_job_schedules (name, job_type, cron_expr, next_run_at) "
        "VALUES ($1, 'record', $2, CASE WHEN $3 THEN now() - interval '1 second' END) RETURNING id",
        name, cron_expr, due_now)


async def stop(*daemons) -> None:
    for d in daemons:
        d.signal(signal.SIGTERM)
    for d in daemons:
        await d.expect_exit(0)


async def test_due_schedule_fires_once_with_two_daemons(db, start_daemon):
    # A yearly cron: its next slot is months away, so only the slot made due here can fire.
    schedule_id = await add_schedule(db, "race", "0 0 1 1 *", due_now=True)
    a, b = start_daemon(name="a"), start_daemon(name="b")  # both tick at start, racing for the slot

    job_id = await poll_until(lambda: db.fetchval(
        "SELECT id FROM _ayb_jobs WHERE schedule_id = $1", schedule_id), timeout=10, what="the fired job")
    await wait_job_state(db, job_id, "completed")
    await a.event("daemon_started")
    await b.event("daemon_started")
    # Stopping cleanly means each scheduler finished its start-up pass: both had their chance.
    await stop(a, b)

    assert await db.fetchval("SELECT count(*) FROM _ayb_jobs WHERE schedule_id = $1", schedule_id) == 1
    assert len(a.events("schedule_fired") + b.events("schedule_fired")) == 1
    row = await db.fetchrow("SELECT next_run_at > now() AS future, last_run_at FROM _ayb_job_schedules "
                            "WHERE id = $1", schedule_id)
    assert row["future"] and row["last_run_at"] is not None


@pytest.mark.slow
async def test_every_minute_schedule_fires_within_2s_of_the_minute(minutely):
    """The daemon (see the `minutely` fixture) started with a `* * * * *` schedule and no next_run_at;
    it must fire at the next minute boundary, not up to a tick later."""
    d = minutely.daemon
    fired = await d.event("schedule_fired", lambda r: r["schedule_id"] == str(minutely.schedule_id),
                          timeout=75)
    conn = await asyncpg.connect(minutely.url)
    try:
        late = await conn.fetchval(
            "SELECT created_at - date_trunc('minute', created_at) FROM _ayb_jobs WHERE id = $1::uuid",
            fired["job_id"])
    finally:
        await conn.close()
    assert late < timedelta(seconds=2)
    await stop(d)


# --- built-in cleanup jobs ---------------------------------------------------------------------------

AYB_TABLES = """
CREATE TABLE _ayb_sessions (label text, expires_at timestamptz);
CREATE TABLE _ayb_webhook_deliveries (label text, delivered_at timestamptz);
CREATE TABLE _ayb_oauth_tokens (label text, expires_at timestamptz, revoked_at timestamptz);
CREATE TABLE _ayb_oauth_authorization_codes (label text, expires_at timestamptz, used_at timestamptz);
CREATE TABLE _ayb_magic_links (label text, expires_at timestamptz);
CREATE TABLE _ayb_password_resets (label text, expires_at timestamptz);
"""
# Rows labelled 'gone*' must be deleted, 'keep*' must stay.
AYB_ROWS = """
INSERT INTO _ayb_sessions VALUES ('gone', now() - interval '1 hour'), ('keep', now() + interval '1 hour');
INSERT INTO _ayb_webhook_deliveries VALUES
    ('gone', now() - interval '8 days'), ('keep', now() - interval '1 day');
INSERT INTO _ayb_oauth_tokens VALUES
    ('gone-expired', now() - interval '2 days', NULL),
    ('keep-expired-recently', now() - interval '1 hour', NULL),
    ('gone-revoked', now() + interval '1 day', now() - interval '31 days'),
    ('keep-revoked-recently', now() + interval '1 day', now() - interval '1 day'),
    ('keep', now() + interval '1 day', NULL);
INSERT INTO _ayb_oauth_authorization_codes VALUES
    ('gone-expired', now() - interval '1 minute', NULL),
    ('gone-used', now() + interval '1 day', now() - interval '2 days'),
    ('keep-used-recently', now() + interval '1 day', now() - interval '1 hour'),
    ('keep', now() + interval '1 day', NULL);
INSERT INTO _ayb_magic_links VALUES
    ('gone', now() - interval '1 minute'), ('keep', now() + interval '1 hour');
INSERT INTO _ayb_password_resets VALUES
    ('gone', now() - interval '1 minute'), ('keep', now() + interval '1 hour');
INSERT INTO _ayb_jobs (type, state, payload, completed_at, canceled_at, updated_at) VALUES
    ('record', 'completed', '{"label": "gone"}', now() - interval '8 days', NULL, now() - interval '8 days'),
    ('record', 'completed', '{"label": "keep"}', now() - interval '1 day', NULL, now() - interval '1 day'),
    ('record', 'canceled', '{"label": "gone"}', NULL, now() - interval '8 days', now() - interval '8 days'),
    ('record', 'failed', '{"label": "gone"}', NULL, NULL, now() - interval '31 days'),
    ('record', 'failed', '{"label": "keep"}', NULL, NULL, now() - interval '8 days');
"""
TABLES = ["_ayb_sessions", "_ayb_webhook_deliveries", "_ayb_oauth_tokens", "_ayb_oauth_authorization_codes",
          "_ayb_magic_links", "_ayb_password_resets"]
BUILTIN_TYPES = {"stale_session_cleanup", "webhook_delivery_prune", "expired_oauth_cleanup",
                 "expired_auth_cleanup", "job_prune"}


async def run_default_schedules(pool: asyncpg.Pool, start_daemon) -> dict[str, dict]:
    """Make the 5 default schedules due, run a daemon until their jobs complete; results by type."""
    assert await pool.fetchval("SELECT count(*) FROM _ayb_job_schedules") == len(BUILTIN_TYPES)
    await pool.execute("UPDATE _ayb_job_schedules SET next_run_at = now()")
    d = start_daemon()
    await poll_until(lambda: pool.fetchval(
        "SELECT count(*) = 5 FROM _ayb_jobs WHERE schedule_id IS NOT NULL AND state = 'completed'"),
        timeout=15, what="5 completed cleanup jobs")
    await stop(d)
    results = {r["job_type"]: r["result"] for r in d.events("job_completed")}
    assert set(results) == BUILTIN_TYPES
    return results


async def test_builtin_jobs_delete_only_expired_rows(pool, start_daemon):
    await pool.execute(AYB_TABLES + AYB_ROWS)
    results = await run_default_schedules(pool, start_daemon)

    for table in TABLES:
        labels = await pool.fetch(f"SELECT label FROM {table}")
        assert labels and all(r["label"].startswith("keep") for r in labels), (table, labels)
    assert await pool.fetchval("SELECT count(*) FROM _ayb_sessions") == 1
    assert await pool.fetchval("SELECT count(*) FROM _ayb_oauth_tokens") == 3
    assert await pool.fetchval("SELECT count(*) FROM _ayb_oauth_authorization_codes") == 2
    old_jobs = await pool.fetch("SELECT payload->>'label' AS label FROM _ayb_jobs WHERE schedule_id IS NULL")
    assert sorted(r["label"] for r in old_jobs) == ["keep", "keep"]
    assert results["job_prune"] == {"deleted": 3, "audit_deleted": 0}
    assert results["expired_oauth_cleanup"] == {"tokens_deleted": 2, "codes_deleted": 2}


async def test_builtin_jobs_on_a_bare_database_complete_skipped(pool, start_daemon):
    results = await run_default_schedules(pool, start_daemon)
    for job_type in BUILTIN_TYPES - {"job_prune"}:
        assert "not found" in results[job_type]["skipped"], (job_type, results[job_type])
    assert results["job_prune"] == {"deleted": 0, "audit_deleted": 0}


# --- legacy pruner -----------------------------------------------------------------------------------

DELIVERIES = """
CREATE TABLE _ayb_webhook_deliveries (label text, delivered_at timestamptz);
INSERT INTO _ayb_webhook_deliveries VALUES
    ('old', now() - interval '8 days'), ('new', now() - interval '1 day');
"""


async def test_legacy_pruner_runs_when_jobs_are_disabled_and_claims_nothing(db, start_daemon):
    await db.execute(DELIVERIES)
    job_id = await insert_job(db, "record")
    d = start_daemon(AYB_JOBS_ENABLED="false")
    pruned = await d.event("legacy_webhook_prune")
    assert pruned["deleted"] == 1
    await stop(d)  # a poller, had one started, would have claimed the due job by now

    assert [r["label"] for r in await db.fetch("SELECT label FROM _ayb_webhook_deliveries")] == ["new"]
    row = await db.fetchrow("SELECT state, attempts FROM _ayb_jobs WHERE id = $1", job_id)
    assert (row["state"], row["attempts"]) == ("queued", 0)


async def test_legacy_pruner_does_not_run_when_jobs_are_enabled(db, start_daemon):
    await db.execute(DELIVERIES)
    d = start_daemon()
    await d.event("daemon_started")
    job_id = await insert_job(db, "record")
    await wait_job_state(db, job_id, "completed")  # the daemon has been up and working a while
    await stop(d)

    assert sorted(r["label"] for r in await db.fetch("SELECT label FROM _ayb_webhook_deliveries")) == [
        "new", "old"]
    assert not d.events("legacy_webhook_prune") and not d.events("jobs_disabled")
