"""Snooze, stored results and cancelling running jobs, against real `ayb-jobs run` processes."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta

import httpx
from e2e_harness import DaemonProcess, poll_until, wait_job_state

TOKEN = "e2e-life-token-0123456789abcdef"
HANDLERS = '["handlers:register", "lifecycle_handlers:register"]'


def start(start_daemon, name: str = "daemon", **env: str) -> DaemonProcess:
    return start_daemon(name, AYB_JOBS_HANDLERS=HANDLERS, AYB_ADMIN_ENABLED="true",
                        AYB_ADMIN_LISTEN="127.0.0.1:0", AYB_ADMIN_TOKEN=TOKEN, **env)


async def api_of(d: DaemonProcess) -> httpx.AsyncClient:
    url = (await d.event("daemon_started"))["admin_url"]
    return httpx.AsyncClient(base_url=f"{url}/api/admin", headers={"Authorization": f"Bearer {TOKEN}"})


async def enqueue(api: httpx.AsyncClient, job_type: str, payload: dict | None = None) -> dict:
    r = await api.post("/jobs", json={"type": job_type, "payload": payload or {}})
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_handler_that_snoozes_twice_then_completes_has_one_attempt_and_two_snoozes(
    db, start_daemon,
) -> None:
    d = start(start_daemon)
    async with await api_of(d) as api:
        job = await enqueue(api, "snooze_then_complete", {"times": 2, "seconds": 1})
        row = await wait_job_state(db, job["id"], "completed", timeout=20)
        shown = (await api.get(f"/jobs/{job['id']}")).json()
    assert (row["attempts"], row["snoozes"]) == (1, 2)
    assert shown["snoozes"] == 2 and shown["result"] == {"snoozed": 2}
    runs = d.events("life_run", lambda r: r["job_id"] == job["id"])
    assert [r["snoozes"] for r in runs] == [0, 1, 2] and {r["attempts"] for r in runs} == {1}
    claims = [datetime.fromisoformat(r["claimed_at"]) for r in runs]  # the database's clock
    assert all(later - earlier >= timedelta(seconds=1) for earlier, later in itertools.pairwise(claims))
    assert len(d.events("job_snoozed", lambda r: r["job_id"] == job["id"])) == 2


async def test_a_70_kib_result_is_stored_as_the_marker_and_a_small_dict_comes_back(db, start_daemon) -> None:
    d = start(start_daemon)
    async with await api_of(d) as api:
        big = await enqueue(api, "returns", {"kib": 70})
        small = await enqueue(api, "returns", {"value": {"sent": 3, "to": ["a@example.com"]}})
        nothing = await enqueue(api, "returns", {})
        for job in (big, small, nothing):
            await wait_job_state(db, job["id"], "completed", timeout=10)
        got = {j["id"]: (await api.get(f"/jobs/{j['id']}")).json() for j in (big, small, nothing)}
    blob_bytes = len('{"blob":""}') + 70 * 1024
    assert got[big["id"]]["result"] == {"truncated": True, "bytes": blob_bytes}
    assert got[small["id"]]["result"] == {"sent": 3, "to": ["a@example.com"]}
    assert "result" not in got[nothing["id"]]


async def cancel_within(api: httpx.AsyncClient, db, job_id: str, seconds: float) -> dict:
    started = time.monotonic()
    r = await api.post(f"/jobs/{job_id}/cancel")
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "running" and r.json()["cancelRequestedAt"]
    row = await wait_job_state(db, job_id, "canceled", timeout=seconds)
    assert time.monotonic() - started < seconds
    return row


async def test_cancelling_a_60_s_sleeper_is_202_and_it_ends_canceled_within_2_s(db, start_daemon) -> None:
    d = start(start_daemon)
    async with await api_of(d) as api:
        job = await enqueue(api, "sleeper", {"seconds": 60})
        await d.event("e2e_handler_started", lambda r: r["job_id"] == job["id"])
        row = await cancel_within(api, db, job["id"], 2.0)
    assert (row["last_error"], row["attempts"]) == ("canceled by admin", 1)
    assert row["canceled_at"] is not None and row["worker_id"] is None
    await d.event("life_handler_cancelled", lambda r: r["job_id"] == job["id"], timeout=2)
    await d.event("job_canceled", lambda r: r["job_id"] == job["id"], timeout=2)


async def test_with_two_daemons_the_one_holding_the_job_cancels_it(db, start_daemon) -> None:
    a = start(start_daemon, "a")
    b = start(start_daemon, "b")
    async with await api_of(a) as api_a, await api_of(b) as api_b:
        job = await enqueue(api_a, "sleeper", {"seconds": 60})
        started = await poll_until(lambda: _started(a, b, job["id"]), timeout=10, what="the sleeper to start")
        holder, other = (a, b) if started is a else (b, a)
        api_other = api_b if other is b else api_a
        await cancel_within(api_other, db, job["id"], 2.0)  # asked through the daemon NOT running it
    assert holder.events("life_handler_cancelled", lambda r: r["job_id"] == job["id"])
    assert not other.events("job_canceled", lambda r: r["job_id"] == job["id"])


async def _started(a: DaemonProcess, b: DaemonProcess, job_id: str) -> DaemonProcess | None:
    for d in (a, b):
        if d.events("e2e_handler_started", lambda r: r["job_id"] == job_id):
            return d
    return None


async def test_a_handler_cannot_veto_a_cancel_by_swallowing_it(db, start_daemon) -> None:
    d = start(start_daemon)
    async with await api_of(d) as api:
        job = await enqueue(api, "stubborn")
        await d.event("e2e_handler_started", lambda r: r["job_id"] == job["id"])
        row = await cancel_within(api, db, job["id"], 2.0)
    assert row["result"] is None and row["completed_at"] is None


async def test_the_heartbeat_cancels_a_job_whose_notification_was_missed(db, start_daemon) -> None:
    # The request is written straight into the row, as if the control notification had been lost:
    # the next heartbeat (every lease/3 = 10 s) reads it.
    d = start(start_daemon, AYB_JOBS_LEASE_DURATION_S="30")
    async with await api_of(d):
        job_id = await db.fetchval("INSERT INTO _ayb_jobs (type) VALUES ('sleeper') RETURNING id")
        await d.event("e2e_handler_started", lambda r: r["job_id"] == str(job_id))
        await db.execute("UPDATE _ayb_jobs SET cancel_requested_at = now() WHERE id = $1", job_id)
        row = await wait_job_state(db, job_id, "canceled", timeout=15)
    assert row["last_error"] == "canceled by admin"
    await d.event("life_handler_cancelled", lambda r: r["job_id"] == str(job_id), timeout=2)


async def test_a_running_job_whose_daemon_died_after_a_cancel_request_is_still_recovered(
    db, start_daemon,
) -> None:
    victim = start(start_daemon, "victim")
    async with await api_of(victim) as api:
        job = await enqueue(api, "sleeper", {"seconds": 60})
        await victim.event("e2e_handler_started", lambda r: r["job_id"] == job["id"])
        victim.kill()
    # The request lands after the holder died (no daemon hears it), and its lease runs out.
    await db.execute("UPDATE _ayb_jobs SET cancel_requested_at = now(), lease_until = now() - interval '1 s' "
                     "WHERE id = $1", job["id"])
    rescuer = start(start_daemon, "rescuer")
    await rescuer.event("job_recovered", lambda e: e["job_id"] == job["id"], timeout=20)
    row = await db.fetchrow("SELECT * FROM _ayb_jobs WHERE id = $1", job["id"])
    assert row["last_error"].startswith("lease expired (worker ")
