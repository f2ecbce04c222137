"""Failing handlers, timeouts, unknown types, and workers that die (kill -9) mid-job."""

from __future__ import annotations

import json
import signal

from e2e_harness import insert_job, wait_job_state


async def make_due(db, job_id) -> None:
    """Skip a retry's or recovery's backoff: the test is about what happens next, not the wait."""
    await db.execute("UPDATE _ayb_jobs SET run_at = now() WHERE id = $1", job_id)


async def expire_lease(db, job_id) -> None:
    """What 30 s (the minimum lease) after a worker's death looks like, without waiting for it."""
    await db.execute("UPDATE _ayb_jobs SET lease_until = now() - interval '1 second' WHERE id = $1", job_id)


def errors_of(row) -> list[dict]:
    raw = row["errors"]
    return json.loads(raw) if isinstance(raw, str) else raw


async def test_raising_handler_is_retried_then_failed(db, start_daemon):
    d = start_daemon()
    await d.event("daemon_started")
    job_id = await insert_job(db, "boom", {"message": "kaput"}, max_attempts=2)

    retry = await d.event("job_retry_scheduled", lambda r: r["job_id"] == str(job_id))
    assert retry["error"] == "RuntimeError: kaput" and retry["retry_in_s"] >= 5
    await make_due(db, job_id)
    await d.event("job_failed", lambda r: r["job_id"] == str(job_id))

    row = await wait_job_state(db, job_id, "failed", timeout=2)
    assert row["attempts"] == 2
    assert row["last_error"] == "RuntimeError: kaput"
    assert [(e["attempt"], e["error"]) for e in errors_of(row)] == [
        (1, "RuntimeError: kaput"), (2, "RuntimeError: kaput")]


async def test_handler_over_job_timeout_fails_with_timed_out(db, start_daemon):
    d = start_daemon(AYB_JOBS_JOB_TIMEOUT_S="1")
    await d.event("daemon_started")
    job_id = await insert_job(db, "hang", max_attempts=1)

    timed_out = await d.event("job_timed_out", lambda r: r["job_id"] == str(job_id), timeout=10)
    assert timed_out["timeout_s"] == 1
    row = await wait_job_state(db, job_id, "failed", timeout=5)
    assert row["last_error"] == "timed out after 1s"


async def test_unknown_type_fails_the_attempt_and_daemon_carries_on(db, start_daemon):
    d = start_daemon()
    await d.event("daemon_started")
    unknown = await insert_job(db, "x", max_attempts=1)
    row = await wait_job_state(db, unknown, "failed", timeout=5)
    assert row["last_error"] == "no handler registered for job type 'x'"

    normal = await insert_job(db, "record")
    await wait_job_state(db, normal, "completed", timeout=5)
    assert d.proc.poll() is None


async def test_job_of_a_killed_daemon_is_recovered_and_completed(db, start_daemon):
    first = start_daemon(name="first")
    await first.event("daemon_started")
    job_id = await insert_job(db, "block_until", {"key": "go", "marker": "recovered"})
    await first.event("e2e_handler_started", lambda r: r["job_id"] == str(job_id))
    first.signal(signal.SIGKILL)
    assert await first.exit() == -signal.SIGKILL
    assert (await db.fetchrow("SELECT state FROM _ayb_jobs WHERE id = $1", job_id))["state"] == "running"

    await expire_lease(db, job_id)
    await db.execute("INSERT INTO e2e_signals VALUES ('go')")  # the next attempt may finish
    second = start_daemon(name="second", AYB_JOBS_RECOVERY_INTERVAL_S="5")
    recovered = await second.event("job_recovered", lambda r: r["job_id"] == str(job_id))
    assert recovered["lost_worker_id"] == first.events("daemon_started")[0]["worker_id"]
    await make_due(db, job_id)

    row = await wait_job_state(db, job_id, "completed", timeout=5)
    assert row["attempts"] == 2
    assert row["last_error"].startswith("lease expired (worker ")
    assert await db.fetchval("SELECT attempt FROM e2e_runs WHERE job_id = $1", job_id) == 2


async def test_job_that_kills_its_worker_every_time_ends_failed(db, start_daemon):
    job_id = await insert_job(db, "suicide", max_attempts=2)
    for attempt in (1, 2):
        d = start_daemon(name=f"victim{attempt}")
        if attempt > 1:
            recovered = await d.event("job_recovered", lambda r: r["job_id"] == str(job_id))
            assert recovered["state"] == "queued"
            await make_due(db, job_id)
        assert await d.exit() == -signal.SIGKILL  # the handler killed the daemon running it
        row = await db.fetchrow("SELECT state, attempts FROM _ayb_jobs WHERE id = $1", job_id)
        assert (row["state"], row["attempts"]) == ("running", attempt)
        await expire_lease(db, job_id)

    survivor = start_daemon(name="survivor")
    recovered = await survivor.event("job_recovered", lambda r: r["job_id"] == str(job_id))
    assert recovered["state"] == "failed"  # attempts used up: not queued for another death
    row = await wait_job_state(db, job_id, "failed", timeout=2)
    assert row["attempts"] == 2
    assert row["last_error"].startswith("lease expired (worker ")
    survivor.signal(signal.SIGTERM)
    await survivor.expect_exit(0)
