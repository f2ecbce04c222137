"""The admin dashboard end to end: headless Chromium against the real app and database."""

from __future__ import annotations

import asyncio
import json
import re
from uuid import UUID

import httpx
from playwright.async_api import Route, expect

from ayb_jobs.api.app import create_app
from ayb_jobs.metrics import Metrics

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


async def _ready() -> str | None:
    return None


async def seed_job(pool, *, state: str = "queued", job_type: str = "job_prune", payload: dict | None = None,
                   attempts: int = 0, last_error: str | None = None, errors: list | None = None) -> UUID:
    return await pool.fetchval(
        """INSERT INTO _ayb_jobs (type, payload, state, attempts, max_attempts, last_error, errors, run_at)
           VALUES ($1, $2::jsonb, $3, $4, 3, $5, $6::jsonb, now() + interval '1 hour') RETURNING id""",
        job_type, json.dumps(payload or {}), state, attempts, last_error, json.dumps(errors or []))


async def schedule_row(pool, name: str):
    return await pool.fetchrow("SELECT * FROM _ayb_job_schedules WHERE name = $1", name)


# --- serving ----------------------------------------------------------------------------------------


async def test_assets_are_served_with_types_and_revalidation() -> None:
    app = create_app(None, token="t", jobs_enabled=False, metrics=Metrics(), readiness=_ready)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        for path in ("/admin", "/admin/"):
            r = await c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert "/admin/static/app.js" in r.text
        js = await c.get("/admin/static/app.js")
        assert js.headers["content-type"].startswith("text/javascript")
        assert js.headers["cache-control"] == "no-cache"
        again = await c.get("/admin/static/app.js", headers={"If-None-Match": js.headers["etag"]})
        assert again.status_code == 304
        css = await c.get("/admin/static/app.css")
        assert css.headers["content-type"].startswith("text/css")
        missing = await c.get("/admin/static/nope.js")
        assert missing.status_code == 404 and missing.json()["code"] == 404
        schema = (await c.get("/api/openapi.json")).json()
        assert not any(p.startswith("/admin") for p in schema["paths"])


# --- login and session ------------------------------------------------------------------------------


async def test_login_by_keyboard_rejects_a_wrong_token_and_accepts_the_right_one(dash) -> None:
    page = dash.page
    await page.goto(dash.base + "/admin/")
    await expect(page.get_by_label("Admin token")).to_be_focused()
    await page.keyboard.type("not-the-token")
    await page.keyboard.press("Enter")
    await expect(page.locator("#login-error")).to_have_text("Sign-in failed: admin authentication required")
    await page.keyboard.type(dash.token)  # the rejected token is selected, so typing replaces it
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_focused()
    await expect(page.locator('[data-stat="due"]')).to_have_text("0")
    assert await page.evaluate("sessionStorage.getItem('ayb-jobs.admin-token')") == dash.token
    await page.get_by_role("link", name="Schedules").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Schedules")).to_be_focused()



async def test_a_401_mid_session_returns_to_login_with_a_message(dash) -> None:
    page = dash.page
    await dash.open()
    await page.evaluate("sessionStorage.setItem('ayb-jobs.admin-token', 'rotated-away')")
    await page.get_by_role("link", name="Schedules").click()
    await expect(page.get_by_label("Admin token")).to_be_visible()
    await expect(page.locator("#login-error")).to_contain_text("admin authentication required")
    assert await page.evaluate("sessionStorage.getItem('ayb-jobs.admin-token')") is None


# --- jobs -------------------------------------------------------------------------------------------


async def test_filters_apply_on_submit(dash, pool) -> None:
    await seed_job(pool, state="queued", job_type="job_prune")
    await seed_job(pool, state="failed", job_type="stale_session_cleanup", attempts=3, last_error="x" * 200)
    page = dash.page
    await dash.open()
    rows = page.locator("#jobs-body tr")
    await expect(rows).to_have_count(2)
    await page.get_by_label("State").select_option("failed")
    await expect(rows).to_have_count(2)  # nothing happens before submit
    await page.get_by_role("button", name="Apply filters").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-state", "failed")
    await expect(rows.first).to_contain_text("3 / 3")
    await expect(rows.first.locator(".error-text")).to_have_text("x" * 90 + "…")
    await page.get_by_label("State").select_option("")
    await page.get_by_label("Type").fill("job_prune")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-state", "queued")


async def test_retry_a_failed_job_disables_the_button_while_in_flight(dash, pool) -> None:
    job_id = await seed_job(pool, state="failed", attempts=3, last_error="boom")
    page = dash.page
    gate = asyncio.Event()

    async def hold(route: Route) -> None:
        await gate.wait()
        await route.continue_()

    await page.route("**/retry", hold)
    await dash.open()
    button = page.get_by_role("button", name=f"Retry job {str(job_id)[-8:]}")
    await button.click()
    await expect(button).to_be_disabled()
    gate.set()
    await expect(page.locator(".toast-ok")).to_contain_text("Retried job")
    await expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_have_attribute("data-state", "queued")
    assert await pool.fetchval("SELECT state FROM _ayb_jobs WHERE id = $1", job_id) == "queued"


async def test_cancel_a_queued_job_and_show_the_servers_refusal(dash, pool) -> None:
    job_id = await seed_job(pool, state="queued")
    done_id = await seed_job(pool, state="queued")
    page = dash.page
    await dash.open()
    await page.get_by_role("button", name=f"Cancel job {str(job_id)[-8:]}").click()
    await expect(page.locator(".toast-ok")).to_contain_text("Canceled job")
    await expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_have_attribute("data-state", "canceled")
    assert await pool.fetchval("SELECT state FROM _ayb_jobs WHERE id = $1", job_id) == "canceled"

    # The other job finishes behind the UI's back: the cancel it still offers gets the server's 409.
    await pool.execute("UPDATE _ayb_jobs SET state = 'completed' WHERE id = $1", done_id)
    await page.get_by_role("button", name=f"Cancel job {str(done_id)[-8:]}").click()
    async with httpx.AsyncClient(base_url=dash.base, headers={"Authorization": f"Bearer {dash.token}"}) as c:
        refusal = (await c.post(f"/api/admin/jobs/{done_id}/cancel")).json()["message"]
    await expect(page.locator(".toast-error .toast-text")).to_have_text(f"Cancel failed: {refusal}")



async def test_job_detail_shows_payload_and_error_history(dash, pool) -> None:
    errors = [{"attempt": 1, "at": "2026-01-01T00:00:00Z", "error": "first failure", "worker_id": "w-1"},
              {"attempt": 2, "at": "2026-01-01T00:01:00Z", "error": "second failure", "worker_id": "w-2"}]
    job_id = await seed_job(pool, state="failed", attempts=2, payload={"retention_hours": 168},
                            last_error="second failure", errors=errors)
    page = dash.page
    await dash.open()
    await page.get_by_role("link", name=f"Job {job_id}").click()
    await expect(page.get_by_role("heading", name=f"Job {str(job_id)[-8:]}")).to_be_visible()
    await expect(page.locator("#job-payload")).to_have_text(json.dumps({"retention_hours": 168}, indent=2))
    history = page.locator(".errors-table tbody tr")
    await expect(history).to_have_count(2)
    await expect(history.nth(1)).to_contain_text("second failure")
    await expect(page.locator(".fields")).to_contain_text(str(job_id))


async def test_pagination_uses_total(dash, pool) -> None:
    await pool.execute("INSERT INTO _ayb_jobs (type, run_at) SELECT 'job_prune', now() + interval '1 hour' "
                       "FROM generate_series(1, 120)")
    page = dash.page
    await dash.open()
    await expect(page.locator("#pager-status")).to_have_text("1–50 of 120")
    await page.get_by_role("button", name="Next").click()
    await expect(page.locator("#pager-status")).to_have_text("51–100 of 120")
    await page.get_by_role("button", name="Next").click()
    await expect(page.locator("#pager-status")).to_have_text("101–120 of 120")
    await expect(page.locator("#jobs-body tr")).to_have_count(20)
    await expect(page.get_by_role("button", name="Next")).to_be_disabled()


async def test_auto_refresh_runs_every_5s_and_can_be_paused(dash, pool) -> None:
    page = dash.page
    await page.clock.install()
    await dash.login()
    rows = page.locator("#jobs-body tr")
    await expect(page.locator("#jobs-empty")).to_be_visible()
    await seed_job(pool)
    await page.clock.run_for(5_000)
    await expect(rows).to_have_count(1)
    await page.get_by_role("button", name="Pause auto-refresh").click()
    await seed_job(pool)
    before = len(dash.requests)
    await page.clock.run_for(15_000)
    assert [u for u in dash.requests[before:] if "/api/admin/jobs" in u] == []
    await page.get_by_role("button", name="Resume auto-refresh").click()
    await expect(rows).to_have_count(2)


# --- schedules --------------------------------------------------------------------------------------


async def open_schedules(dash) -> None:
    await dash.open("schedules")
    await expect(dash.page.locator("#schedules-body tr").first).to_be_visible()


async def test_create_a_schedule_with_live_cron_preview(dash, pool) -> None:
    page = dash.page
    await open_schedules(dash)
    await page.get_by_role("link", name="New schedule").click()
    await page.get_by_label("Name").fill("nightly_prune")
    await page.get_by_label("Job type").select_option("job_prune")
    await page.get_by_label("Cron expression").fill("*/5 * * * *")
    await expect(page.locator("#cron-times li")).to_have_count(5)
    await page.get_by_label("Timezone").fill("Europe/Berlin")
    await page.get_by_label("Payload (JSON object)").fill("[1, 2]")
    await page.get_by_label("Max attempts").fill("4")
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.locator("#payload-error")).to_contain_text("must be a JSON object")
    assert await schedule_row(pool, "nightly_prune") is None
    await page.get_by_label("Payload (JSON object)").fill('{"retention_days": 7}')
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.locator(".toast-ok")).to_contain_text("Created schedule nightly_prune")
    await expect(page.locator('tr[data-name="nightly_prune"]')).to_contain_text("Europe/Berlin")
    row = await schedule_row(pool, "nightly_prune")
    assert (row["job_type"], row["cron_expr"], row["timezone"], row["max_attempts"]) == (
        "job_prune", "*/5 * * * *", "Europe/Berlin", 4)
    assert json.loads(row["payload"]) == {"retention_days": 7}


async def test_edit_with_invalid_cron_shows_the_server_error_and_saves_nothing(dash, pool) -> None:
    page = dash.page
    before = await schedule_row(pool, "job_prune_daily")
    await open_schedules(dash)
    await page.get_by_role("link", name="Edit job_prune_daily").click()
    cron = page.get_by_label("Cron expression")
    await expect(cron).to_have_value("30 2 * * *")
    await cron.fill("61 * * * *")
    await expect(page.locator("#cron-error")).to_be_visible()
    message = await page.locator("#cron-error").text_content()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator("#form-error")).to_have_text(f"Not saved: {message}")
    after = await schedule_row(pool, "job_prune_daily")
    assert (after["cron_expr"], after["updated_at"]) == (before["cron_expr"], before["updated_at"])

    bodies: list[dict] = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.method == "PUT" else None)
    await cron.fill("15 3 * * *")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator(".toast-ok")).to_contain_text("Saved schedule job_prune_daily")
    assert set(bodies[0]) == {"cronExpr", "timezone", "payload", "enabled", "maxAttempts", "overlap",
                              "misfire"}
    assert (await schedule_row(pool, "job_prune_daily"))["cron_expr"] == "15 3 * * *"


async def test_toggle_enabled(dash, pool) -> None:
    page = dash.page
    await open_schedules(dash)
    switch = page.get_by_role("switch", name="Enabled: job_prune_daily")
    await expect(switch).to_have_attribute("aria-checked", "true")
    await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "false")
    assert (await schedule_row(pool, "job_prune_daily"))["enabled"] is False
    await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "true")
    assert (await schedule_row(pool, "job_prune_daily"))["enabled"] is True


async def test_delete_asks_for_confirmation(dash, pool) -> None:
    page = dash.page
    await open_schedules(dash)
    dialog = page.locator("#confirm-dialog")
    await page.get_by_role("button", name="Delete job_prune_daily").click()
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    assert await schedule_row(pool, "job_prune_daily") is not None
    await page.get_by_role("button", name="Delete job_prune_daily").click()
    await dialog.get_by_role("button", name="Delete schedule").click()
    await expect(page.locator('tr[data-name="job_prune_daily"]')).to_have_count(0)
    assert await schedule_row(pool, "job_prune_daily") is None


async def test_run_now_enqueues_a_job_of_the_schedule(dash, pool) -> None:
    page = dash.page
    schedule = await schedule_row(pool, "job_prune_daily")
    await open_schedules(dash)
    await page.get_by_role("button", name="Run now: job_prune_daily").click()
    toast = page.locator(".toast-ok", has_text="Started job")
    await expect(toast).to_be_visible()
    job_id = UUID(re.search(UUID_RE, await toast.text_content()).group(0))
    row = await pool.fetchrow("SELECT type, schedule_id FROM _ayb_jobs WHERE id = $1", job_id)
    assert (row["type"], row["schedule_id"]) == ("job_prune", schedule["id"])
    await toast.get_by_role("link", name="View job").click()
    link = page.locator("#job-schedule-link")
    await expect(link).to_have_text("job_prune_daily")
    await expect(link).to_have_attribute("href", f"#/schedules/{schedule['id']}")


# --- layout and network -----------------------------------------------------------------------------


async def test_every_view_renders_at_desktop_and_phone_width_without_leaving_this_origin(dash, pool) -> None:
    page = dash.page
    history = [{"attempt": 3, "at": "2026-01-01T00:00:00Z", "error": "reset", "worker_id": "w"}]
    failed = await seed_job(pool, state="failed", attempts=3, payload={"user": 42}, errors=history,
                            last_error="connection reset by peer while talking to the webhook endpoint " * 3)
    await seed_job(pool, state="queued", job_type="stale_session_cleanup")
    await seed_job(pool, state="canceled", job_type="expired_auth_cleanup")
    for width, height in ((1280, 800), (390, 844)):
        await page.set_viewport_size({"width": width, "height": height})
        shots = f"/tmp/dash-{{}}-{width}.png"
        await page.goto(dash.base + "/admin/#/jobs")
        await page.get_by_label("Admin token").wait_for()
        await page.screenshot(path=shots.format("login"), full_page=True)
        await dash.login()
        await expect(page.locator("#jobs-body tr")).to_have_count(3)
        await page.screenshot(path=shots.format("jobs"), full_page=True)
        await page.get_by_role("link", name=f"Job {failed}").click()
        await expect(page.locator("#job-payload")).to_be_visible()
        await page.screenshot(path=shots.format("job"), full_page=True)
        await page.get_by_role("link", name="Schedules").click()
        await expect(page.locator("#schedules-body tr")).to_have_count(5)
        await page.screenshot(path=shots.format("schedules"), full_page=True)
        await page.get_by_role("link", name="Edit job_prune_daily").click()
        await expect(page.locator("#cron-times li")).to_have_count(5)
        await page.screenshot(path=shots.format("edit"), full_page=True)
        await page.get_by_role("link", name="All schedules").click()
        await page.get_by_role("button", name="Delete job_prune_daily").click()
        await expect(page.locator("#confirm-dialog")).to_be_visible()
        await page.screenshot(path=shots.format("confirm"))
        await page.keyboard.press("Escape")
        await expect(page.locator("#confirm-dialog")).to_be_hidden()
        await page.get_by_role("button", name="Sign out").click()
    assert await schedule_row(pool, "job_prune_daily") is not None  # Escape canceled the delete
    elsewhere = [u for u in dash.requests if not (u.startswith(dash.base + "/") or u.startswith("data:"))]
    assert dash.requests and elsewhere == []
