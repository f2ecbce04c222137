"""The dashboard's operator views against a real `ayb-jobs run` process doing real work: search, the
Running and Scheduled views, the last hour's chart, a schedule's history, dark mode, and screenshots.

One daemon and database for the module (starting a daemon is the slow part); each test works on
its own job types or markers, so the tests do not depend on each other's jobs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from daemon_harness import SHOTS, Daemon, goto, signed_in_page, start_daemon
from playwright.async_api import Browser, Page, expect


@pytest.fixture(scope="module")
async def daemon(template_db: str) -> AsyncIterator[Daemon]:
    async with start_daemon(template_db) as d:
        yield d


@pytest.fixture
async def page(browser: Browser, daemon: Daemon) -> AsyncIterator[Page]:
    async with signed_in_page(browser) as p:
        yield p


async def search(page: Page, text: str) -> None:
    await page.get_by_label("Search").fill(text)
    await page.get_by_role("button", name="Apply filters").click()


async def test_running_view_shows_the_worker_and_the_elapsed_time(page, daemon) -> None:
    job = await daemon.enqueue("hold", payload={"seconds": 120})
    running = await daemon.wait_state(job["id"], "running")
    await goto(page, daemon, "running")
    row = page.locator(f'tr[data-job-id="{job["id"]}"]')
    await expect(row.locator('td[data-label="Worker"]')).to_have_text(running["workerId"])
    await expect(row.locator(".elapsed")).to_have_text(re.compile(r"^\d+s$|^\d+m( \d+s)?$"))
    await expect(row.locator('td[data-label="Attempt"]')).to_have_text("1 / 3")
    nav = page.get_by_role("link", name="Running", exact=True)
    await expect(nav).to_have_attribute("aria-current", "page")


async def test_scheduled_view_lists_jobs_not_yet_due_and_cancels_them(page, daemon) -> None:
    later = await daemon.enqueue("ok", runAt="2099-01-01T00:00:00Z", payload={"marker": "later"})
    await goto(page, daemon, "scheduled")
    row = page.locator(f'tr[data-job-id="{later["id"]}"]')
    await expect(row.locator('td[data-label="Run at"]')).to_contain_text("Jan 01, 2099")
    await expect(row.locator('td[data-label="Run at"]')).to_contain_text("in ")
    await row.get_by_role("button", name=re.compile("^Cancel job")).click()
    await expect(row).to_have_count(0)
    assert (await daemon.api.get(f"/jobs/{later['id']}")).json()["state"] == "canceled"


async def test_the_chart_and_breakdown_count_what_the_daemon_finished(page, daemon) -> None:
    done = [await daemon.enqueue("chart_ok") for _ in range(3)]
    failed = [await daemon.enqueue("chart_fail", maxAttempts=1) for _ in range(2)]
    for j in done:
        await daemon.wait_state(j["id"], "completed")
    for j in failed:
        await daemon.wait_state(j["id"], "failed")
    await goto(page, daemon, "jobs")
    ok_row = page.locator('#breakdown-body [data-type="chart_ok"]')
    fail_row = page.locator('#breakdown-body [data-type="chart_fail"]')
    await expect(ok_row.locator('td[data-label="Completed (1 h)"]')).to_have_text("3")
    await expect(fail_row.locator('td[data-label="Failed (1 h)"]')).to_have_text("2")
    timeline = (await daemon.api.get("/jobs/timeline")).json()
    completed = sum(m["completed"] for m in timeline["minutes"])
    failures = sum(m["failed"] for m in timeline["minutes"])
    assert completed >= 3 and failures >= 2
    chart = page.locator("#timeline-chart")
    summary = f"Last 60 minutes: {completed} completed, {failures} failed."
    await expect(chart).to_have_attribute("aria-label", summary)
    assert await page.locator("#timeline-chart .bar").count() == 60
    assert await page.locator("#timeline-chart .bar-completed").count() >= 1
    assert await page.locator("#timeline-chart .bar-failed").count() >= 1


async def test_search_finds_jobs_by_id_type_error_and_payload(page, daemon) -> None:
    failed = await daemon.enqueue("fail", maxAttempts=1, payload={"message": "card declined ZX81"})
    order = await daemon.enqueue("ok", payload={"order": "ORD-77123"})
    by_type = await daemon.enqueue("chart_fail", maxAttempts=1)
    for job, state in ((failed, "failed"), (order, "completed"), (by_type, "failed")):
        await daemon.wait_state(job["id"], state)
    await goto(page, daemon, "jobs")
    rows = page.locator("#jobs-body tr")
    cases = (("zx81", failed), ("ORD-77123", order), (order["id"][-8:], order), (failed["id"], failed))
    for text, expected in cases:
        await search(page, text)
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-job-id", expected["id"])
    await search(page, "chart_fai")  # by type, part of a name
    await expect(page.locator(f'#jobs-body tr[data-job-id="{by_type["id"]}"]')).to_be_visible()
    for other in (failed, order):
        await expect(page.locator(f'#jobs-body tr[data-job-id="{other["id"]}"]')).to_have_count(0)
    await expect(page.locator("#search-note")).to_be_visible()
    assert "q=chart_fai" in page.url


async def test_a_schedule_shows_its_jobs_and_a_job_links_to_its_schedule(page, daemon) -> None:
    body = {"name": "history_demo", "jobType": "ok", "cronExpr": "0 0 1 1 *"}
    schedule = (await daemon.api.post("/schedules", json=body)).json()
    jobs = [(await daemon.api.post(f"/schedules/{schedule['id']}/trigger")).json() for _ in range(2)]
    for j in jobs:
        await daemon.wait_state(j["id"], "completed")
    await daemon.enqueue("ok")  # not the schedule's
    await goto(page, daemon, "schedules")
    await page.get_by_role("link", name="Schedule history_demo").click()
    history = page.locator("#schedule-jobs-body tr")
    await expect(history).to_have_count(2)
    await expect(page.locator('#schedule-jobs-body tr[data-state="completed"]')).to_have_count(2)
    await page.get_by_role("link", name=f"Job {jobs[0]['id']}").click()
    link = page.locator("#job-schedule-link")
    await expect(link).to_have_text("history_demo")
    await link.click()
    await expect(page.get_by_role("heading", name="Schedule history_demo")).to_be_visible()


async def test_dark_mode_follows_the_system_setting(page, daemon) -> None:
    await goto(page, daemon, "jobs")

    async def background() -> list[int]:
        value = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        return [int(n) for n in re.findall(r"\d+", value)[:3]]

    await page.emulate_media(color_scheme="light")
    assert min(await background()) > 200
    await page.emulate_media(color_scheme="dark")
    assert max(await background()) < 60
    panel = await page.evaluate("getComputedStyle(document.querySelector('.table-wrap')).backgroundColor")
    assert max(int(n) for n in re.findall(r"\d+", panel)[:3]) < 60


async def test_screenshots_at_desktop_and_phone_width(page, daemon) -> None:
    """Every view at 1280x800 and 390x844, light and dark, into screenshots/dashboard (git-ignored)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    failed = await daemon.enqueue("fail", maxAttempts=1, payload={"message": "upstream 503 " * 8, "user": 42})
    await daemon.wait_state(failed["id"], "failed")
    await daemon.wait_state((await daemon.enqueue("hold", payload={"seconds": 120}))["id"], "running")
    await daemon.enqueue("ok", runAt="2099-06-01T12:00:00Z")
    body = {"name": "shots_nightly_report", "jobType": "ok", "cronExpr": "30 2 * * *",
            "timezone": "Europe/Berlin"}
    schedule = (await daemon.api.post("/schedules", json=body)).json()
    fired = (await daemon.api.post(f"/schedules/{schedule['id']}/trigger")).json()
    await daemon.wait_state(fired["id"], "completed")
    # Each view with what shows that it has loaded.
    views = [("jobs", "jobs", "#timeline-chart"), ("running", "running", "#jobs-body tr"),
             ("scheduled", "scheduled", "#jobs-body tr"), ("job", f"jobs/{failed['id']}", "#job-payload"),
             ("schedules", "schedules", "#schedules-body tr"),
             ("schedule", f"schedules/{schedule['id']}", "#schedule-jobs-body tr"),
             ("new", "schedules/new", "#schedule-form"), ("workers", "workers", "#workers-body tr"),
             ("audit", "audit", "#audit-body tr")]
    for width, height in ((1280, 800), (390, 844)):
        await page.set_viewport_size({"width": width, "height": height})
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            for name, view, loaded in views:
                await goto(page, daemon, view)
                await page.locator(loaded).first.wait_for()
                if view in ("jobs", "running", "scheduled"):
                    await expect(page.locator('[data-stat="due"]')).not_to_have_text("–")
                await page.screenshot(path=SHOTS / f"{name}-{width}-{scheme}.png", full_page=True)
    assert len(list(SHOTS.glob("*.png"))) >= 36


async def test_cancel_on_a_running_row_stops_the_job_through_its_daemon(page, daemon) -> None:
    job = await daemon.enqueue("hold", payload={"seconds": 600})
    await daemon.wait_state(job["id"], "running")
    await goto(page, daemon, "running")
    row = page.locator(f'tr[data-job-id="{job["id"]}"]')
    await row.get_by_role("button", name=f"Cancel job {job['id'][-8:]}").click()
    await expect(page.locator(".toast-ok", has_text="Cancel requested for job")).to_be_visible()
    done = await daemon.wait_state(job["id"], "canceled")
    assert done["lastError"] == "canceled by admin"
    await expect(row).to_have_count(0)  # the Running view refreshes after the action
