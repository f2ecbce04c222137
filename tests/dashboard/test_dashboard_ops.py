"""The dashboard's operator views over a real `ayb-jobs run`: Workers (who runs what), the Audit log
(who changed what), and the Postgres health banner shown on every view while a check warns.

The daemon takes a health reading every 5 s and warns about an xmin horizon held for 1 s, so a test
can raise a real warning by holding a transaction open, and clear it by committing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from daemon_harness import SHOTS, Daemon, goto, signed_in_page, start_daemon
from dash_helpers import TOKEN
from playwright.async_api import Browser, Page, expect

HEALTH_SETTINGS = {"AYB_HEALTH_XMIN_HORIZON_WARN_S": "1", "AYB_HEALTH_CHECK_INTERVAL_S": "5"}
# A reading every 5 s, the dashboard's refresh every 5 s: a change shows within about 10 s.
HEALTH_SHOWS_MS = 25_000


@pytest.fixture(scope="module")
async def daemon(template_db: str) -> AsyncIterator[Daemon]:
    async with start_daemon(template_db, **HEALTH_SETTINGS) as d:
        yield d


@pytest.fixture
async def page(browser: Browser, daemon: Daemon) -> AsyncIterator[Page]:
    async with signed_in_page(browser) as p:
        yield p


# --- Workers -------------------------------------------------------------------------------------------


async def test_workers_view_shows_each_daemon_its_load_and_the_jobs_it_runs(page, daemon) -> None:
    job = await daemon.enqueue("hold", payload={"seconds": 120})
    running = await daemon.wait_state(job["id"], "running")
    conn = await asyncpg.connect(daemon.db_url)
    try:  # a daemon that stopped reporting five minutes ago
        await conn.execute(
            "INSERT INTO _ayb_job_workers (worker_id, host, pid, version, started_at, last_seen_at,"
            " concurrency, in_flight) VALUES ('dash-gone', 'old-host', 22, '0.9', now() - interval '1 hour',"
            " now() - interval '5 minutes', 2, 0)")
    finally:
        await conn.close()
    await goto(page, daemon, "workers")
    nav = page.get_by_role("link", name="Workers", exact=True)
    await expect(nav).to_have_attribute("aria-current", "page")
    rows = page.locator("#workers-body tr")
    await expect(rows).to_have_count(2)
    # Alive first, then the gone one.
    await expect(rows.nth(0)).to_have_attribute("data-worker-id", running["workerId"])
    await expect(rows.nth(1)).to_have_attribute("data-worker-id", "dash-gone")
    alive, gone = rows.nth(0), rows.nth(1)
    await expect(alive.locator('td[data-label="Status"]')).to_have_text("alive")
    await expect(gone.locator('td[data-label="Status"]')).to_have_text("gone")
    # The load comes from the daemon's presence beat (every 5 s) and the view refreshes every 5 s.
    await expect(alive.locator('td[data-label="Load"]')).to_have_text(re.compile(r"^[1-9]\d* / \d+$"),
                                                                        timeout=15_000)
    await expect(page.locator("#workers-summary")).to_contain_text("1 alive")
    await expect(page.locator("#workers-summary")).to_contain_text("1 gone")
    await alive.get_by_role("link", name=f"Job {job['id']}").click()
    await expect(page.get_by_role("heading", name=f"Job {job['id'][-8:]}")).to_be_visible()


# --- Audit ---------------------------------------------------------------------------------------------


async def test_audit_view_lists_changes_newest_first_with_actor_and_a_filter_in_the_url(page, daemon) -> None:
    job = await daemon.enqueue("ok", payload={"marker": "audited"})
    doomed = await daemon.enqueue("ok", payload={"marker": "deleted"})
    await daemon.wait_state(doomed["id"], "completed")
    assert (await daemon.api.delete(f"/jobs/{doomed['id']}")).status_code == 204
    body = {"name": "audit_demo", "jobType": "ok", "cronExpr": "0 0 1 1 *"}
    schedule = (await daemon.api.post("/schedules", json=body)).json()
    assert (await daemon.api.post(f"/schedules/{schedule['id']}/disable")).status_code == 200
    await goto(page, daemon, "audit")
    newest = page.locator("#audit-body tr").first
    await expect(newest).to_have_attribute("data-action", "schedule.disable")
    await expect(newest.get_by_role("link", name=f"Schedule {schedule['id']}")).to_be_visible()
    deleted = page.locator('#audit-body tr[data-action="job.delete"]')
    await expect(deleted.locator('td[data-label="Target"]')).to_have_text(doomed["id"][-8:])
    await expect(deleted.get_by_role("link")).to_have_count(0)  # nothing left to open
    fingerprint = hashlib.sha256(TOKEN.encode()).hexdigest()[:12]
    await expect(newest.locator('td[data-label="Actor"]')).to_have_text(fingerprint)
    await expect(newest.locator('td[data-label="From"]')).to_have_text("127.0.0.1")

    await page.get_by_label("Action").select_option("job.enqueue")
    await page.get_by_role("button", name="Apply filter").click()
    rows = page.locator("#audit-body tr")
    await expect(rows.first).to_have_attribute("data-action", "job.enqueue")
    assert all(a == "job.enqueue" for a in await rows.evaluate_all("rs => rs.map(r => r.dataset.action)"))
    assert "action=job.enqueue" in page.url
    await page.reload()
    await expect(page.get_by_label("Action")).to_have_value("job.enqueue")
    await expect(page.locator('#audit-body tr[data-action="schedule.disable"]')).to_have_count(0)
    entry = page.locator(f'#audit-body tr:has(a[href="#/jobs/{job["id"]}"])')
    await entry.get_by_role("link").click()
    await expect(page.get_by_role("heading", name=f"Job {job['id'][-8:]}")).to_be_visible()


# --- Health banner -------------------------------------------------------------------------------------


async def test_health_banner_shows_a_held_xmin_horizon_on_every_view_until_it_ends(page, daemon) -> None:
    await goto(page, daemon, "jobs")
    banner = page.locator("#health-banner")
    await expect(banner).to_be_hidden(timeout=HEALTH_SHOWS_MS)  # no warning left by another test
    conn = await asyncpg.connect(daemon.db_url)
    try:
        holder = conn.transaction()
        await holder.start()
        await conn.fetchval("SELECT txid_current()")  # an xid: vacuum must keep what dies after it
        await expect(banner).to_be_visible(timeout=HEALTH_SHOWS_MS)
        await expect(banner).to_have_attribute("data-status", "warning")
        await expect(banner).to_contain_text("Postgres health: warning")
        await expect(banner.locator('[data-check="xmin_horizon"]')).to_be_visible()
        await page.get_by_role("link", name="Schedules", exact=True).click()
        await page.get_by_role("heading", name="Schedules").wait_for()
        await expect(banner).to_be_visible()
        SHOTS.mkdir(parents=True, exist_ok=True)
        for width, height in ((1280, 800), (390, 844)):
            await page.set_viewport_size({"width": width, "height": height})
            await page.screenshot(path=SHOTS / f"health-banner-{width}.png")
        await holder.commit()
        await expect(banner).to_be_hidden(timeout=HEALTH_SHOWS_MS)
    finally:
        await conn.close()
