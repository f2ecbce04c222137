"""How jobs reach the daemon: polling (plain SQL), NOTIFY (the Python client), transactions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from e2e_harness import insert_job, wait_job_state

from ayb_jobs import Client
from ayb_jobs.errors import DuplicateJob

NOTIFY_LATENCY = timedelta(milliseconds=50)
NO_POLLING_MS = "60000"  # the poller's timer never fires during a test: only NOTIFY can wake it


async def start_listening(start_daemon, **env):
    d = start_daemon(AYB_JOBS_POLL_INTERVAL_MS=NO_POLLING_MS, **env)
    await d.event("daemon_started")
    await d.event("listener_ready")
    return d


async def test_job_inserted_by_plain_sql_is_found_by_polling(db, start_daemon):
    d = start_daemon(AYB_JOBS_POLL_INTERVAL_MS="200")
    await d.event("daemon_started")
    job_id = await insert_job(db, "record", {"marker": "sql"})  # no NOTIFY

    row = await wait_job_state(db, job_id, "completed", timeout=5)
    assert row["attempts"] == 1
    assert await db.fetchval("SELECT marker FROM e2e_runs WHERE job_id = $1", job_id) == "sql"


async def test_client_enqueue_starts_within_50ms_by_notify(db, db_url, start_daemon):
    await start_listening(start_daemon)
    async with Client(dsn=db_url) as client:
        job = await client.enqueue("record", {"marker": "notify"})

    row = await wait_job_state(db, job.id, "completed", timeout=5)
    # Both times come from the database clock: insert's now() and the claim's now().
    assert row["last_run_at"] - row["created_at"] < NOTIFY_LATENCY


async def test_enqueue_in_rolled_back_transaction_never_exists(db, db_url, start_daemon):
    d = await start_listening(start_daemon)
    async with Client(dsn=db_url) as client, db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        job = await client.enqueue("record", {"marker": "rolled back"}, conn=conn)
        await tx.rollback()
        # A committed job after it proves the daemon was listening and would have run the first.
        later = await client.enqueue("record", {"marker": "committed"})

    await wait_job_state(db, later.id, "completed", timeout=5)
    assert await db.fetchval("SELECT count(*) FROM _ayb_jobs WHERE id = $1", job.id) == 0
    assert await db.fetchval("SELECT count(*) FROM e2e_runs WHERE marker = 'rolled back'") == 0
    assert not d.events("job_claimed", lambda r: r["job_id"] == str(job.id))


async def test_enqueue_in_transaction_runs_after_commit_woken_at_commit(db, db_url, start_daemon):
    await start_listening(start_daemon)
    async with Client(dsn=db_url) as client, db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        job = await client.enqueue("record", {"marker": "tx"}, conn=conn)
        await asyncio.sleep(1)  # the scenario: the application's transaction stays open a while
        committed_at = await conn.fetchval("SELECT clock_timestamp()")
        await tx.commit()

    row = await wait_job_state(db, job.id, "completed", timeout=5)
    assert row["last_run_at"] >= committed_at  # not claimed (not even visible) before the commit
    # ...and woken by the NOTIFY delivered at commit, since polling is off.
    assert row["last_run_at"] - committed_at < timedelta(seconds=1)


async def test_duplicate_idempotency_key_names_the_existing_job(db, db_url):
    async with Client(dsn=db_url) as client:
        first = await client.enqueue("record", idempotency_key="order-42")
        with pytest.raises(DuplicateJob) as caught:
            await client.enqueue("record", idempotency_key="order-42")
    assert str(caught.value.existing_job_id) == str(first.id)
    assert await db.fetchval("SELECT count(*) FROM _ayb_jobs WHERE idempotency_key = 'order-42'") == 1



async def test_sync_enqueue_on_a_psycopg_connection_starts_within_50ms_of_commit(db, db_url, start_daemon):
    import psycopg

    from ayb_jobs import sync

    d = await start_listening(start_daemon)
    with psycopg.connect(db_url) as conn:
        rolled_back = sync.enqueue(conn, "record", {"marker": "sync rolled back"})
        conn.rollback()
        job_id = sync.enqueue(conn, "record", {"marker": "sync"})
        conn.commit()

    row = await wait_job_state(db, job_id, "completed", timeout=5)
    assert row["last_run_at"] - row["created_at"] < NOTIFY_LATENCY
    assert await db.fetchval("SELECT count(*) FROM _ayb_jobs WHERE id = $1", rolled_back) == 0
    assert not d.events("job_claimed", lambda r: r["job_id"] == str(rolled_back))
