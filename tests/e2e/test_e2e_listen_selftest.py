"""The LISTEN self-test of a real daemon whose database.listen_url goes through a stand-in pooler
that never delivers notifications: it logs `listen_not_delivering` once, /metrics says
`ayb_jobs_listen_ok 0` (and passes promtool), and jobs still run, found by polling."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import httpx
from e2e_harness import insert_job, poll_until, wait_job_state
from pg_notify_swallower import NotifySwallower

TOKEN = "e2e-listen-token-0123456789"


async def test_a_listen_url_that_never_delivers_is_reported_and_jobs_still_run(db, db_url, start_daemon):
    proxy, listen_url = await NotifySwallower.start_for(db_url)
    try:
        d = start_daemon("swallowed", AYB_DATABASE_LISTEN_URL=listen_url, AYB_ADMIN_ENABLED="true",
                         AYB_ADMIN_LISTEN="127.0.0.1:0", AYB_ADMIN_TOKEN=TOKEN,
                         AYB_JOBS_POLL_INTERVAL_MS="300")
        url = (await d.event("daemon_started"))["admin_url"]
        warned = await d.event("listen_not_delivering", timeout=15)
        assert "database.listen_url" in warned["message"]
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            text = (await http.get("/metrics")).text
            assert "\nayb_jobs_listen_ok 0\n" in text
            promtool = shutil.which("promtool")
            assert promtool, "promtool not found: apt-get install -y --no-install-recommends prometheus"
            check = await asyncio.to_thread(subprocess.run, [promtool, "check", "metrics"], input=text,
                                            capture_output=True, text=True, timeout=30)
            assert check.returncode == 0, check.stdout + check.stderr
        swallowed = proxy.swallowed
        for _ in range(3):  # each enqueue's NOTIFY is swallowed; polling finds the jobs anyway
            job_id = await insert_job(db, "record", {})
            await db.execute("SELECT pg_notify('ayb_jobs', '')")
            await wait_job_state(db, job_id, "completed", timeout=15)
        await poll_until(lambda: _swallowed_more(proxy, swallowed + 3), what="the wake-ups swallowed")
        assert len(d.events("listen_not_delivering")) == 1
    finally:
        await proxy.close()


async def _swallowed_more(proxy: NotifySwallower, n: int) -> bool:
    return proxy.swallowed >= n
