"""Clock skew (docs/reliability.md): the daemon runs under Debian's libfaketime, its clock hours off
the database's, and every time decision must still follow the database clock (`now()`):

- cron: a due `* * * * *` slot fires exactly once, and the next slot is the next database minute
  (a daemon clock 3 h ahead would put it 3 h out; 3 h behind would make it due again at once and
  fire every pass); a new schedule's first slot at start is the next database minute too;
- leases: a claim's lease runs `lease` seconds from the database's now; recovery takes the job whose
  lease expired by the database clock and leaves the one whose lease is still good;
- backoff: a failed attempt's retry is due at database now + backoff, and is not run before it.

The package is `faketime` (libfaketime); without it the test is skipped locally and fails in CI.
"""

from __future__ import annotations

import glob
import json
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from chaos_scenarios import HANDLERS
from e2e_harness import insert_job, poll_until

LEASE_S = 30
SKEWS = {"+3h": timedelta(hours=3), "-3h": timedelta(hours=-3)}


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        message = "libfaketime not found: install the Debian package faketime (scripts/test.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found[0]


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def insert_schedule(db: asyncpg.Pool, name: str, next_run_at_sql: str) -> Any:
    return await db.fetchval(
        "INSERT INTO _ayb_job_schedules (name, job_type, cron_expr, next_run_at) "
        f"VALUES ($1, 'record', '* * * * *', {next_run_at_sql}) RETURNING id", name)


async def insert_ghost_running(db: asyncpg.Pool, lease_sql: str) -> Any:
    """A job claimed by a daemon that no longer exists, its lease ending at `lease_sql`."""
    return await db.fetchval(
        "INSERT INTO _ayb_jobs (type, state, attempts, max_attempts, worker_id, lease_until, last_run_at) "
        f"VALUES ('record', 'running', 1, 3, 'ghost', {lease_sql}, now()) RETURNING id")


async def jobs_of(db: asyncpg.Pool, schedule_id: Any) -> int:
    return int(await db.fetchval("SELECT count(*) FROM _ayb_jobs WHERE schedule_id = $1", schedule_id))


@pytest.mark.parametrize("skew", sorted(SKEWS))
async def test_time_decisions_follow_the_database_clock(db: asyncpg.Pool, start_daemon: Callable[..., Any],
                                                        skew: str) -> None:
    at_start = await insert_schedule(db, "at_start", "NULL")
    expired = await insert_ghost_running(db, "now() - interval '1 second'")
    live = await insert_ghost_running(db, "now() + interval '60 seconds'")
    daemon = start_daemon(name=f"skewed{skew}", LD_PRELOAD=libfaketime(), FAKETIME=skew,
                          AYB_JOBS_HANDLERS=HANDLERS, AYB_JOBS_LEASE_DURATION_S=str(LEASE_S),
                          AYB_LOG_LEVEL="info")
    started = await daemon.event("daemon_started", timeout=30)

    # The daemon really lives in another time: its own log stamps are `skew` off.
    off = parse_ts(started["timestamp"]) - datetime.now(UTC)
    assert abs(off - SKEWS[skew]) < timedelta(minutes=5), f"faketime not in effect: log clock off by {off}"

    # A new schedule's first slot: the next database minute.
    row = await db.fetchrow("SELECT next_run_at, now() AS now FROM _ayb_job_schedules WHERE id = $1",
                            at_start)
    assert row["next_run_at"] is not None
    assert timedelta(0) < row["next_run_at"] - row["now"] <= timedelta(minutes=1), dict(row)

    # Recovery at start judged the leases by the database clock.
    recovered = await poll_until(lambda: db.fetchrow(
        "SELECT errors->0->>'error' AS error FROM _ayb_jobs WHERE id = $1 "
        "AND (state <> 'running' OR worker_id <> 'ghost')", expired), 15, what="expired lease recovered")
    assert (recovered["error"] or "").startswith("lease expired"), dict(recovered)
    still = await db.fetchrow("SELECT state, worker_id FROM _ayb_jobs WHERE id = $1", live)
    assert (still["state"], still["worker_id"]) == ("running", "ghost"), "a lease still good was taken"

    # A claim's lease: database now + lease.
    blocked = await insert_job(db, "block_until", {"key": "release-clock-job"})
    claim = await poll_until(lambda: db.fetchrow(
        "SELECT lease_until - last_run_at AS lease, lease_until - now() AS left FROM _ayb_jobs "
        "WHERE id = $1 AND state = 'running'", blocked), 10, what="block_until job claimed")
    assert claim["lease"] >= timedelta(seconds=LEASE_S), dict(claim)
    assert timedelta(seconds=LEASE_S - 5) < claim["left"] <= timedelta(seconds=LEASE_S), dict(claim)

    # Backoff: the retry is due at database now + 5 s (+ jitter < 1 s), and not run before it.
    boom = await insert_job(db, "boom", {"message": "clock"}, max_attempts=3)
    first = await poll_until(lambda: db.fetchrow(
        "SELECT run_at, (errors->0->>'at')::timestamptz AS failed_at, now() AS now FROM _ayb_jobs "
        "WHERE id = $1 AND attempts = 1 AND state = 'queued'", boom), 15, what="first attempt failed")
    assert timedelta(seconds=5) <= first["run_at"] - first["failed_at"] < timedelta(seconds=6), dict(first)
    assert first["run_at"] - first["now"] < timedelta(seconds=6), dict(first)

    # Cron: the current database minute's slot is due; it fires once, and the next slot is the
    # next database minute.
    due = await insert_schedule(db, "due_now", "date_trunc('minute', now())")
    await poll_until(lambda: jobs_of(db, due), 15, what="due slot fired")
    fired = await db.fetchrow("SELECT last_run_at, next_run_at FROM _ayb_job_schedules WHERE id = $1", due)
    next_minute = fired["last_run_at"].replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert fired["next_run_at"] == next_minute, dict(fired)
    # A later scheduler pass (proved by a second schedule firing) must not fire the slot again. (If
    # the test crosses a minute boundary meanwhile, the next minute's slot fires, rightly.)
    sentinel = await insert_schedule(db, "sentinel", "now() + interval '1 second'")
    await poll_until(lambda: jobs_of(db, sentinel), 15, what="sentinel slot fired")
    per_minute = await db.fetch("SELECT date_trunc('minute', created_at) AS minute, count(*) FROM _ayb_jobs "
                                "WHERE schedule_id = $1 GROUP BY 1 ORDER BY 1", due)
    assert [r["count"] for r in per_minute] in ([1], [1, 1]), f"not one job per database minute: {per_minute}"

    # The retry ran only once it was due by the database clock.
    second_claim = await poll_until(lambda: db.fetchval(
        "SELECT last_run_at FROM _ayb_jobs WHERE id = $1 AND attempts >= 2", boom), 15,
        what="second attempt ran")
    assert second_claim >= first["run_at"]

    await db.execute("INSERT INTO e2e_signals VALUES ('release-clock-job')")
    await poll_until(lambda: db.fetchval("SELECT state = 'completed' FROM _ayb_jobs WHERE id = $1", blocked),
                     10, what="block_until job completed")
    assert json.dumps(daemon.events("core_task_died")) == "[]"
    daemon.signal(signal.SIGTERM)
    await daemon.expect_exit(0, timeout=45)
