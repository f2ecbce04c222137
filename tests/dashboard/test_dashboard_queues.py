"""The dashboard's Queues view over a real `ayb-jobs run`: depth per queue, pause and resume, and
the global concurrency limit set, refused when invalid, and cleared."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from daemon_harness import Daemon, goto, signed_in_page, start_daemon
from playwright.async_api import Browser, Page, expect


@pytest.fixture(scope="module")
async def daemon(template_db: str) -> AsyncIterator[Daemon]:
    async with start_daemon(template_db) as d:
        yield d


@pytest.fixture
async def page(browser: Browser, daemon: Daemon) -> AsyncIterator[Page]:
    async with signed_in_page(browser) as p:
        yield p


# The view refreshes every 5 s; what the daemon changes on its own shows by the next refresh.
REFRESH_SHOWS_MS = 15_000


def row(page: Page, name: str):
    return page.locator(f'#queues-body tr[data-queue="{name}"]')


async def test_queues_view_shows_depth_and_pauses_and_resumes_a_queue(page, daemon) -> None:
    assert (await daemon.api.post("/queues/mail/pause")).status_code == 200
    held = [await daemon.enqueue("ok", queue="mail", priority=p) for p in (3, -3)]
    await goto(page, daemon, "queues")
    nav = page.get_by_role("link", name="Queues", exact=True)
    await expect(nav).to_have_attribute("aria-current", "page")
    mail = row(page, "mail")
    await expect(mail.locator('td[data-label="Status"]')).to_have_text("paused")
    await expect(mail.locator('td[data-label="Queued"]')).to_have_text("2")
    await expect(mail.locator('td[data-label="Running"]')).to_have_text("0")

    await mail.get_by_role("button", name="Resume queue mail").click()
    await expect(page.locator(".toast.toast-ok").last).to_contain_text("Queue mail resumed")
    await expect(mail.locator('td[data-label="Status"]')).to_have_text("active")
    for job in held:
        await daemon.wait_state(job["id"], "completed")
    # Shown at the next auto-refresh (every 5 s).
    await expect(mail.locator('td[data-label="Queued"]')).to_have_text("0", timeout=REFRESH_SHOWS_MS)

    await mail.get_by_role("button", name="Pause queue mail").click()
    await expect(mail.locator('td[data-label="Status"]')).to_have_text("paused")
    assert (await daemon.api.get("/queues/mail")).json()["paused"] is True
    # Focus stays on the row's toggle, now Resume, for the keyboard user.
    await expect(mail.get_by_role("button", name="Resume queue mail")).to_be_focused()
    await daemon.api.post("/queues/mail/resume")


async def test_queues_view_sets_refuses_and_clears_the_concurrency_limit(page, daemon) -> None:
    job = await daemon.enqueue("hold", queue="bulk", payload={"seconds": 120})
    await daemon.wait_state(job["id"], "running")
    await goto(page, daemon, "queues")
    bulk = row(page, "bulk")
    await expect(bulk.locator('td[data-label="Running"]')).to_have_text("1")
    limit = bulk.get_by_label("Concurrency limit of queue bulk")

    await limit.fill("3")
    await bulk.get_by_role("button", name="Set the limit of queue bulk").click()
    await expect(page.locator(".toast.toast-ok").last).to_contain_text("at most 3 running at once")
    await expect(bulk.locator('td[data-label="Running"]')).to_have_text("1 / 3")
    assert (await daemon.api.get("/queues/bulk")).json()["concurrency"] == 3

    await limit.fill("0")
    await limit.press("Enter")  # the form submits like the Set button
    await expect(page.locator(".toast.toast-error").last).to_contain_text("whole number of 1 or more")
    assert (await daemon.api.get("/queues/bulk")).json()["concurrency"] == 3

    await bulk.get_by_role("button", name="Remove the limit of queue bulk").click()
    await expect(page.locator(".toast.toast-ok").last).to_contain_text("has no limit now")
    await expect(bulk.locator('td[data-label="Running"]')).to_have_text("1")
    await expect(limit).to_have_value("")
    assert (await daemon.api.get("/queues/bulk")).json()["concurrency"] is None
    await daemon.api.post(f"/jobs/{job['id']}/cancel")
