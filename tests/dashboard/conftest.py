"""The real daemon HTTP app (API + dashboard) over a fresh database, and a headless Chromium page.

One browser per run (launching it is the slow part); one server, database and browser context per
test, so tests never see each other's jobs, schedules or sessionStorage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from dash_helpers import TOKEN
from playwright.async_api import Browser, Page, async_playwright

from ayb_jobs.api.app import create_app
from ayb_jobs.handlers import default_registry
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.http import HttpServer, bind
from ayb_jobs.service import JobService

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


async def _ready() -> str | None:
    return None


@dataclass
class Dashboard:
    """A running app: its base URL, the page, and every URL the page requested."""

    base: str
    page: Page
    requests: list[str] = field(default_factory=list)
    token: str = TOKEN

    async def login(self, token: str = TOKEN) -> None:
        await self.page.goto(self.base + "/admin/")
        await self.page.get_by_label("Admin token").fill(token)
        await self.page.get_by_role("button", name="Sign in").click()
        if token == TOKEN:
            await self.page.get_by_role("heading", name="Jobs", exact=True).wait_for()

    async def open(self, view: str = "jobs") -> None:
        """Open a view already signed in (the token put in sessionStorage, as the login form does)."""
        await self.page.add_init_script(f"sessionStorage.setItem('ayb-jobs.admin-token', {TOKEN!r})")
        await self.page.goto(f"{self.base}/admin/#/{view}")
        await self.page.locator("#view-title").wait_for()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def base_url(pool) -> AsyncIterator[str]:
    app = create_app(JobService(pool, default_registry()), token=TOKEN, jobs_enabled=True, metrics=Metrics(),
                     readiness=_ready)
    server = HttpServer(app, bind("127.0.0.1", 0))
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


@pytest.fixture
async def dash(browser: Browser, base_url: str) -> AsyncIterator[Dashboard]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    d = Dashboard(base_url, page)
    page.on("request", lambda req: d.requests.append(req.url))
    try:
        yield d
    finally:
        await context.close()
