"""A real `ayb-jobs run` process for the dashboard tests, on its own database copied from the
migrated template, with the test handlers of support/dash_handlers.py; and a signed-in Chromium page
that fails its test on any console error (a CSP violation shows as one).

`start_daemon(template_db, **env)` is the async context manager; each test module makes its module
fixture from it (starting a daemon is the slow part), with its own settings when it needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from dash_helpers import TOKEN
from playwright.async_api import Browser, Page

ADMIN_URL = os.environ.get("AYB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SUPPORT = Path(__file__).parent / "support"
SHOTS = Path(__file__).resolve().parents[2] / "screenshots" / "dashboard"  # git-ignored
DEADLINE_S = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, base: str, proc: asyncio.subprocess.Process, db_url: str) -> None:
        self.base, self.proc, self.db_url = base, proc, db_url
        self.api = httpx.AsyncClient(base_url=base + "/api/admin",
                                     headers={"Authorization": f"Bearer {TOKEN}"})

    async def enqueue(self, job_type: str, **body) -> dict:
        r = await self.api.post("/jobs", json={"type": job_type, **body})
        assert r.status_code == 201, r.text
        return r.json()

    async def wait_state(self, job_id: str, *states: str) -> dict:
        """Poll the API until the job is in one of `states` (the daemon is another process)."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            job = (await self.api.get(f"/jobs/{job_id}")).json()
            if job["state"] in states:
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['state']}, wanted {states}"
            await asyncio.sleep(0.05)


async def _wait_ready(base: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + DEADLINE_S
    async with httpx.AsyncClient() as c:
        while True:
            assert proc.returncode is None, "the daemon exited at start"
            try:
                if (await c.get(base + "/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the daemon did not become ready"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def start_daemon(template_db: str, **settings: str) -> AsyncIterator[Daemon]:
    """`python -m ayb_jobs run` on a fresh database; `settings` are extra AYB_* variables."""
    name = f"ayb_t_dash_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AYB_") and k != "NOTIFY_SOCKET"}
    db_url = urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + name))
    env.update({
        "AYB_DATABASE_URL": db_url,
        "AYB_JOBS_ENABLED": "true", "AYB_ADMIN_ENABLED": "true", "AYB_ADMIN_LISTEN": f"127.0.0.1:{port}",
        "AYB_ADMIN_TOKEN": TOKEN, "AYB_JOBS_HANDLERS": '["dash_handlers:register"]',
        "AYB_JOBS_POLL_INTERVAL_MS": "200", "AYB_JOBS_SHUTDOWN_TIMEOUT_S": "0", "AYB_LOG_FORMAT": "json",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")])),
        **settings,
    })
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ayb_jobs", "run", env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = Daemon(f"http://127.0.0.1:{port}", proc, db_url)
    try:
        await _wait_ready(d.base, proc)
        yield d
    finally:
        await d.api.aclose()
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def signed_in_page(browser: Browser) -> AsyncIterator[Page]:
    """A 1280x800 page with the token in sessionStorage; on leaving, asserts no console error."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    await context.add_init_script(f"sessionStorage.setItem('ayb-jobs.admin-token', {TOKEN!r})")
    p = await context.new_page()
    p.set_default_timeout(10_000)
    # A CSP violation (an inline style or script, a request elsewhere) shows as a console error.
    errors: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield p
    finally:
        await context.close()
    assert errors == []


async def goto(page: Page, daemon: Daemon, view: str) -> None:
    await page.goto(f"{daemon.base}/admin/#/{view}")
    await page.locator("#view-title").wait_for()
