"""Live workers with real daemon processes: each daemon's row appears alive with the jobs it runs; a
SIGTERM removes it; after kill -9 it stays, and counts as gone once not seen for 30 s."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
from e2e_harness import DaemonProcess, insert_job, poll_until, wait_job_state

TOKEN = "e2e-workers-token-0123456789"


async def workers(http: httpx.AsyncClient) -> dict[str, dict]:
    response = await http.get("/api/admin/workers")
    assert response.status_code == 200, response.text
    return {w["workerId"]: w for w in response.json()["items"]}


async def test_worker_rows_follow_the_daemons_lives(db, start_daemon: Callable[..., DaemonProcess]) -> None:
    """1. two job daemons and one API-only daemon (jobs disabled, so it has no worker row) start;
    2. both job daemons are listed alive, with their pid, types and concurrency;
    3. a long job runs on one of them (X): X lists its id and, at its next beat, in_flight 1;
    4. SIGTERM to the other (Y): it exits 0 and its row is gone;
    5. kill -9 of X: its row stays, alive, until its last_seen_at is 30 s old (moved back here, since
       a killed daemon never writes again): then alive is false and it still names its job, whose
       lease has not expired yet."""
    api = start_daemon("api", AYB_JOBS_ENABLED="false", AYB_ADMIN_ENABLED="true",
                       AYB_ADMIN_LISTEN="127.0.0.1:0", AYB_ADMIN_TOKEN=TOKEN)
    one = start_daemon("one", AYB_JOBS_WORKER_CONCURRENCY="3")
    two = start_daemon("two", AYB_JOBS_WORKER_CONCURRENCY="3")
    ids = {(await d.event("daemon_started"))["worker_id"]: d for d in (one, two)}
    url = (await api.event("daemon_started"))["admin_url"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=5) as http:
        listed = await poll_until(lambda: _with_all(http, set(ids)), what="both workers listed")
        assert set(listed) == set(ids)  # the API-only daemon runs no workers
        for worker_id, d in ids.items():
            w = listed[worker_id]
            assert w["alive"] and w["pid"] == d.pid and w["concurrency"] == 3 and w["jobIds"] == []
            assert {"sleep", "job_prune"} <= set(w["types"]) and w["startedAt"].endswith("Z")

        job_id = await insert_job(db, "sleep", {"seconds": 120})
        running = await wait_job_state(db, job_id, "running")
        x_id = running["worker_id"]
        [y_id] = set(ids) - {x_id}
        ran = await poll_until(lambda: _field(http, x_id, "inFlight", 1), timeout=15, what="in_flight 1")
        assert ran["jobIds"] == [str(job_id)] and ran["jobs"][0]["type"] == "sleep"
        assert (await workers(http))[y_id]["jobIds"] == []

        ids[y_id].signal(signal.SIGTERM)
        await ids[y_id].expect_exit(0)
        assert y_id not in await workers(http)

        ids[x_id].signal(signal.SIGKILL)
        await ids[x_id].exit()
        assert (await workers(http))[x_id]["alive"]  # seen a moment ago
        await db.execute("UPDATE _ayb_job_workers SET last_seen_at = now() - interval '31 seconds' "
                         "WHERE worker_id = $1", x_id)
        gone = (await workers(http))[x_id]
        assert gone["alive"] is False and gone["jobIds"] == [str(job_id)]


async def _with_all(http: httpx.AsyncClient, wanted: set[str]) -> dict[str, dict] | None:
    listed = await workers(http)
    return listed if wanted <= set(listed) else None


async def _field(http: httpx.AsyncClient, worker_id: str, name: str, value: object) -> dict | None:
    w = (await workers(http)).get(worker_id)
    return w if w is not None and w[name] == value else None
