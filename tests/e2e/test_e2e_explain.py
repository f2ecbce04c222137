"""explain against real daemons: a job waiting while the only daemon's slot is busy, a type no live
daemon registers, and a job whose daemon was kill -9ed (worker gone, lease not expired yet)."""

from __future__ import annotations

import signal

import httpx
from e2e_harness import insert_job, poll_until, wait_job_state

TOKEN = "e2e-explain-token-0123456789"


async def explained(http: httpx.AsyncClient, job_id) -> dict[str, str]:
    response = await http.get(f"/api/admin/jobs/{job_id}/explain")
    assert response.status_code == 200, response.text
    return {r["code"]: r["message"] for r in response.json()["reasons"]}


async def test_explain_busy_unknown_type_and_a_killed_daemon(db, start_daemon) -> None:
    api = start_daemon("api", AYB_JOBS_ENABLED="false", AYB_ADMIN_ENABLED="true",
                       AYB_ADMIN_LISTEN="127.0.0.1:0", AYB_ADMIN_TOKEN=TOKEN)
    worker = start_daemon("worker", AYB_JOBS_WORKER_CONCURRENCY="1")
    worker_id = (await worker.event("daemon_started"))["worker_id"]
    url = (await api.event("daemon_started"))["admin_url"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=5) as http:
        long_job = await insert_job(db, "sleep", {"seconds": 120})
        await wait_job_state(db, long_job, "running")
        waiting = await insert_job(db, "record", {})
        # The presence row says in_flight 1 of 1 at the daemon's next beat.
        busy = await poll_until(lambda: _has(http, waiting, "all_workers_busy"), timeout=15,
                                what="all_workers_busy")
        assert "all 1 slots of the 1 live daemon(s)" in busy["all_workers_busy"]
        assert f"on worker {worker_id} (alive" in (await explained(http, long_job))["running"]

        # Inserted by hand: the API would refuse an unregistered type.
        unknown = await db.fetchval("INSERT INTO _ayb_jobs (type) VALUES ('nobody.handles') RETURNING id")
        assert "type 'nobody.handles'" in (await explained(http, unknown))["no_live_worker_with_handler"]

        worker.signal(signal.SIGKILL)
        await worker.exit()
        # A killed daemon never beats again: age its row past the 30 s window instead of waiting.
        await db.execute("UPDATE _ayb_job_workers SET last_seen_at = now() - interval '31 seconds'")
        gone = await explained(http, long_job)
        assert f"running on worker {worker_id}, which is gone (last seen 31s ago)" in gone["running"]
        assert "no_live_worker_for_queue" in await explained(http, waiting)


async def _has(http: httpx.AsyncClient, job_id, code: str) -> dict[str, str] | None:
    reasons = await explained(http, job_id)
    return reasons if code in reasons else None
