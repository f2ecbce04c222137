"""Misfire policies across real daemons: the schedules' three slots passed while no daemon ran; two
daemons then start at once and decide each slot exactly once, as the policy says.

The cron lists three minutes 4, 3 and 2 minutes ago (its next slot is then an hour away), and
next_run_at is the first of them: exactly what the table holds after every daemon was stopped for
those three slots, without waiting three real minutes.
"""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from e2e_harness import poll_until

EXPECTED_JOBS = {"all": 3, "skip": 0, "coalesce": 1}


async def add_missed(db, name: str, misfire: str):
    now = await db.fetchval("SELECT date_trunc('minute', now())")
    slots = [now - timedelta(minutes=m) for m in (4, 3, 2)]
    expr = ",".join(str(s.minute) for s in sorted(slots, key=lambda s: s.minute)) + " * * * *"
    sid = await db.fetchval(
        "INSERT INTO _ayb_job_schedules (name, job_type, cron_expr, next_run_at, misfire) "
        "VALUES ($1, 'record', $2, $3, $4) RETURNING id", name, expr, slots[0], misfire)
    return sid, slots


@pytest.mark.parametrize("misfire", sorted(EXPECTED_JOBS))
async def test_two_restarted_daemons_decide_three_missed_slots_once(db, start_daemon, misfire):
    sid, slots = await add_missed(db, f"missed-{misfire}", misfire)
    a, b = start_daemon(name="a"), start_daemon(name="b")

    await poll_until(lambda: db.fetchval(
        "SELECT count(*) = 3 FROM _ayb_job_schedule_fires WHERE schedule_id = $1", sid),
        timeout=20, what="three decisions")
    await a.event("daemon_started")
    await b.event("daemon_started")
    for d in (a, b):
        d.signal(signal.SIGTERM)
    for d in (a, b):
        await d.expect_exit(0)

    fires = await db.fetch("SELECT slot_at, outcome, job_id FROM _ayb_job_schedule_fires "
                           "WHERE schedule_id = $1 ORDER BY slot_at", sid)
    assert [f["slot_at"] for f in fires] == slots
    enqueued = [f for f in fires if f["outcome"] == "enqueued"]
    assert len(enqueued) == EXPECTED_JOBS[misfire]
    assert all(f["outcome"] in ("enqueued", "skipped_misfire") for f in fires)
    jobs = await db.fetch("SELECT id FROM _ayb_jobs WHERE schedule_id = $1", sid)
    assert {j["id"] for j in jobs} == {f["job_id"] for f in enqueued}
    fired = a.events("schedule_fired") + b.events("schedule_fired")
    assert len(fired) == EXPECTED_JOBS[misfire]
    assert await db.fetchval("SELECT next_run_at > now() + interval '50 minutes' FROM _ayb_job_schedules "
                             "WHERE id = $1", sid)
