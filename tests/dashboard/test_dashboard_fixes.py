"""Dashboard defects found in headless Chromium, one test each (each failed on the old app.js)."""

from __future__ import annotations

import json
import re

import httpx
from dash_helpers import TOKEN, focused_key, insert_job, insert_schedule
from playwright.async_api import expect


async def test_every_module_is_served_as_javascript_under_the_strict_csp(base_url) -> None:
    """app.js imports the other modules: each must come with a JavaScript type (browsers refuse
    module scripts of any other type) and the same headers as the page."""
    async with httpx.AsyncClient(base_url=base_url) as c:
        page = await c.get("/admin/")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert '<script type="module" src="/admin/static/app.js">' in page.text
        seen, todo = set(), ["app.js"]
        while todo:
            name = todo.pop()
            seen.add(name)
            r = await c.get(f"/admin/static/{name}")
            assert r.status_code == 200, name
            assert r.headers["content-type"].startswith("text/javascript"), name
            assert r.headers["content-security-policy"] == csp
            todo += [m for m in re.findall(r'from "\./([\w-]+\.js)"', r.text) if m not in seen]
    assert {"api.js", "ui.js", "router.js", "view.js", "jobs.js", "job.js", "chart.js", "schedules.js",
            "schedule-form.js", "workers.js", "audit.js", "health.js", "lifecycle.js"} <= seen


LONG_TYPE = "integration.partner_sync." + "x" * 75  # 100 characters: the column's limit
LONG_NAME = "nightly." + "n" * 92


async def open_schedules(dash) -> None:
    await dash.open("schedules")
    await expect(dash.page.locator("#schedules-body tr").first).to_be_visible()


async def new_schedule_form(dash, name: str = "nightly_prune") -> None:
    page = dash.page
    await dash.open("schedules/new")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Job type").select_option("job_prune")
    await page.get_by_label("Cron expression").fill("*/5 * * * *")
    await expect(page.locator("#cron-times li")).to_have_count(5)


# --- create / edit form ---------------------------------------------------------------------------


async def test_fixing_the_cron_clears_the_not_saved_error(dash) -> None:
    page = dash.page
    await open_schedules(dash)
    await page.get_by_role("link", name="Edit job_prune_daily").click()
    cron = page.get_by_label("Cron expression")
    await cron.fill("61 * * * *")
    await expect(page.locator("#cron-error")).to_be_visible()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator("#form-error")).to_contain_text("Not saved:")
    await cron.fill("15 3 * * *")
    await expect(page.locator("#cron-times li")).to_have_count(5)
    await expect(page.locator("#form-error")).to_be_empty()
    await expect(page.locator("#form-error")).to_be_hidden()


async def test_the_first_click_on_create_counts_when_leaving_the_payload_shows_its_error(dash, pool) -> None:
    """Leaving the payload field (mousedown on Create) shows its error; the button must not move
    away under the pointer before mouseup, or the click is lost."""
    page = dash.page
    await new_schedule_form(dash)
    await page.get_by_label("Payload (JSON object)").fill("[1, 2]")  # focus stays in the payload
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.locator("#payload-error")).to_contain_text("must be a JSON object")
    await expect(page.locator("#form-error")).to_contain_text("must be a JSON object")  # the submit ran
    await expect(page.get_by_label("Payload (JSON object)")).to_be_focused()


async def test_errors_are_said_in_words_not_in_validator_language(dash, pool) -> None:
    page = dash.page
    await new_schedule_form(dash, name="nightly prune")
    await page.get_by_role("button", name="Create schedule").click()
    form_error = page.locator("#form-error")
    await expect(form_error).to_contain_text("Name may use only letters, digits and _ . : - (no spaces)")
    await page.get_by_label("Name").fill("nightly_prune")
    await page.get_by_label("Timezone").fill("Europe/" + "X" * 50)
    await expect(page.locator("#cron-error")).to_have_text("Timezone is too long (at most 50 characters).")
    await page.get_by_role("button", name="Create schedule").click()
    await expect(form_error).to_have_text("Not saved: Timezone is too long (at most 50 characters).")
    shown = await page.locator("main").inner_text()
    assert "String should" not in shown and "pattern" not in shown
    assert await pool.fetchval("SELECT count(*) FROM _ayb_job_schedules WHERE name = 'nightly_prune'") == 0


# --- layout -----------------------------------------------------------------------------------------


async def test_long_type_and_schedule_names_are_cut_with_the_full_text_as_tooltip(dash, pool) -> None:
    job_id = await insert_job(pool, state="failed", job_type=LONG_TYPE, attempts=3, last_error="boom")
    await insert_schedule(pool, LONG_NAME)
    page = dash.page
    await dash.open()
    retry = page.get_by_role("button", name=f"Retry job {str(job_id)[-8:]}")
    box = await retry.bounding_box()
    assert box["x"] + box["width"] <= 1280, box
    type_text = page.locator(f'tr[data-job-id="{job_id}"] [title="{LONG_TYPE}"]')
    await expect(type_text).to_have_text(LONG_TYPE)
    assert (await type_text.bounding_box())["width"] < 300

    await page.get_by_role("link", name="Schedules").click()
    delete = page.get_by_role("button", name=f"Delete {LONG_NAME}")
    box = await delete.bounding_box()
    assert box["x"] + box["width"] <= 1280, box
    name = page.locator(f'tr[data-name="{LONG_NAME}"] [title="{LONG_NAME}"]')
    await expect(name).to_have_text(LONG_NAME)
    assert (await name.bounding_box())["width"] < 400


# --- auto-refresh and focus ---------------------------------------------------------------------------


# Counts the page's calls of fetch() for the jobs list and its stats as they are made: a refresh
# calls fetch synchronously from its timer, so the count is final once the fake clock has run.
COUNT_JOB_FETCHES = """
    window.jobFetches = 0;
    const realFetch = window.fetch;
    window.fetch = (url, init) => {
        if (String(url).includes("/api/admin/jobs")) window.jobFetches += 1;
        return realFetch(url, init);
    };
"""


async def test_auto_refresh_waits_while_text_is_selected(dash, pool) -> None:
    page = dash.page
    await page.clock.install()
    await page.add_init_script(COUNT_JOB_FETCHES)
    await dash.login()
    await insert_job(pool, payload={})
    await page.clock.run_for(5_000)
    rows = page.locator("#jobs-body tr")
    await expect(rows).to_have_count(1)
    await page.evaluate("""() => {
        const range = document.createRange();
        range.selectNodeContents(document.querySelector('#jobs-body tr td[data-label="Type"]'));
        getSelection().removeAllRanges();
        getSelection().addRange(range);
    }""")
    before = await page.evaluate("window.jobFetches")
    await insert_job(pool)
    await page.clock.run_for(10_000)
    # Two refresh periods passed while the text was selected: none of them reloaded the list.
    assert await page.evaluate("window.jobFetches") == before
    await expect(rows).to_have_count(1)
    assert await page.evaluate("getSelection().toString()") == "job_prune"
    await page.evaluate("getSelection().removeAllRanges()")
    await page.clock.run_for(5_000)
    await expect(rows).to_have_count(2)


async def test_focus_stays_in_place_after_retry_cancel_toggle_and_delete(dash, pool) -> None:
    job_id = await insert_job(pool, state="failed", attempts=3, last_error="boom")
    page = dash.page
    await dash.open()
    await page.get_by_role("button", name=f"Retry job {str(job_id)[-8:]}").click()
    await expect(page.locator(".toast-ok")).to_contain_text("Retried job")
    cancel = page.get_by_role("button", name=f"Cancel job {str(job_id)[-8:]}")
    await expect(cancel).to_be_focused()  # the row's next action took the place of Retry
    await cancel.click()
    await expect(page.locator(".toast-ok", has_text="Canceled job")).to_be_visible()
    await expect(page.get_by_role("button", name=f"Retry job {str(job_id)[-8:]}")).to_be_focused()

    await page.get_by_role("link", name="Schedules").click()
    switch = page.get_by_role("switch", name="Enabled: job_prune_daily")
    await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "false")
    await expect(switch).to_be_focused()
    await page.get_by_role("button", name="Delete job_prune_daily").click()
    await page.locator("#confirm-dialog").get_by_role("button", name="Delete schedule").click()
    await expect(page.locator('tr[data-name="job_prune_daily"]')).to_have_count(0)
    # The next row (alphabetically) took the deleted one's place, and its Delete has the focus.
    await expect(page.get_by_role("button", name="Delete session_cleanup_hourly")).to_be_focused()
    assert await focused_key(page) != "<body>"


# --- filters ------------------------------------------------------------------------------------------


async def test_jobs_of_an_unregistered_type_can_be_found(dash, pool) -> None:
    """During a rolling deploy an older daemon sees jobs of types it does not know."""
    await insert_job(pool, job_type="from_the_next_release")
    await insert_job(pool)
    page = dash.page
    await dash.open()
    await expect(page.locator('#type-suggestions option[value="from_the_next_release"]')).to_have_count(1)
    await page.get_by_label("Type").fill("from_the_next_release")
    await page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("#jobs-body tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("from_the_next_release")


async def test_due_and_scheduled_jobs_are_told_apart(dash, pool) -> None:
    due = await insert_job(pool, run_in_s=-60)
    later = await insert_job(pool, run_in_s=7200)
    page = dash.page
    await dash.open()
    await expect(page.locator('[data-stat="due"]')).to_have_text("1")
    await expect(page.locator('[data-stat="scheduled"]')).to_have_text("1")
    await expect(page.locator(f'tr[data-job-id="{later}"] .badge')).to_have_text("scheduled")
    await expect(page.locator(f'tr[data-job-id="{due}"] .badge')).to_have_text("queued")
    run_at = page.locator(f'tr[data-job-id="{later}"] td[data-label="Run at"]')
    await expect(run_at).to_contain_text("in 1h 59m")
    await page.get_by_label("State").select_option("scheduled")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("#jobs-body tr")).to_have_count(1)
    await expect(page.locator(f'tr[data-job-id="{later}"]')).to_be_visible()
    await page.get_by_label("State").select_option("due")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator(f'tr[data-job-id="{due}"]')).to_be_visible()
    await expect(page.locator("#jobs-body tr")).to_have_count(1)


async def test_filters_and_page_are_in_the_url_and_survive_a_reload(dash, pool) -> None:
    await pool.execute("INSERT INTO _ayb_jobs (type, state, attempts) SELECT 'job_prune', 'failed', 3 "
                       "FROM generate_series(1, 60)")
    await insert_job(pool)
    page = dash.page
    await dash.open()
    await page.get_by_label("State").select_option("failed")
    await page.get_by_label("Type").fill("job_prune")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("#pager-status")).to_have_text("1–50 of 60")
    await page.get_by_role("button", name="Next").click()
    await expect(page.locator("#pager-status")).to_have_text("51–60 of 60")
    assert page.url.endswith("#/jobs?state=failed&type=job_prune&page=2")
    await page.reload()
    await expect(page.locator("#pager-status")).to_have_text("51–60 of 60")
    await expect(page.get_by_label("State")).to_have_value("failed")
    await expect(page.get_by_label("Type")).to_have_value("job_prune")
    await page.go_back()
    await expect(page.locator("#pager-status")).to_have_text("1–50 of 60")


# --- time zones ---------------------------------------------------------------------------------------


async def test_every_time_says_its_zone(browser, base_url, pool) -> None:
    """A browser in New York, a schedule in Berlin: each time shown names the zone it is in."""
    await pool.execute("UPDATE _ayb_job_schedules SET timezone = 'Europe/Berlin', "
                       "next_run_at = '2026-12-24T01:30:00Z' WHERE name = 'job_prune_daily'")
    await insert_job(pool)
    context = await browser.new_context(timezone_id="America/New_York", locale="en-US",
                                        viewport={"width": 1280, "height": 800})
    try:
        page = await context.new_page()
        await page.add_init_script(f"sessionStorage.setItem('ayb-jobs.admin-token', {TOKEN!r})")
        await page.goto(base_url + "/admin/#/jobs")
        await expect(page.locator('#jobs-body td[data-label="Created"]')).to_contain_text("EST")
        await page.goto(base_url + "/admin/#/schedules")
        next_run = page.locator('tr[data-name="job_prune_daily"] td[data-label="Next run"]')
        # 01:30 UTC is 02:30 in Berlin (CET, GMT+1) and 20:30 the evening before in New York.
        await expect(next_run).to_contain_text("Thu, Dec 24, 2026, 02:30 AM GMT+1")
        await expect(next_run).to_contain_text("Wed, Dec 23, 2026, 08:30 PM EST (your time)")
    finally:
        await context.close()


# --- payload size -------------------------------------------------------------------------------------


async def test_the_list_leaves_payloads_to_the_detail_view(dash, pool) -> None:
    history = [{"attempt": i, "at": "2026-01-01T00:00:00Z", "error": "e" * 4000, "worker_id": "w"}
               for i in range(1, 11)]
    job_id = await insert_job(pool, state="failed", attempts=3, payload={"blob": "p" * 100_000},
                              errors=history, last_error="e" * 4000)
    page = dash.page
    async with page.expect_response(lambda r: "/api/admin/jobs?" in r.url) as listed:
        await dash.open()
    body = await (await listed.value).body()
    assert len(body) < 3000, len(body)
    [row] = json.loads(body)["items"]
    assert "payload" not in row and "errors" not in row
    await page.get_by_role("link", name=f"Job {job_id}").click()
    await expect(page.locator("#job-payload")).to_contain_text("p" * 1000)
    await expect(page.locator(".errors-table tbody tr")).to_have_count(10)


async def test_jobs_created_in_the_same_minute_have_distinct_short_ids(dash, pool) -> None:
    """Job ids are time-ordered: their first 8 hex digits are shared by every job created within
    about a minute, so a short id cut from the front named many jobs at once."""
    ids = [await insert_job(pool, state="failed", attempts=3, last_error="x") for _ in range(3)]
    assert len({str(i)[:8] for i in ids}) == 1  # the premise: one shared prefix
    page = dash.page
    await dash.open("jobs")
    links = page.locator('#jobs-body td[data-label="ID"] a')
    await expect(links).to_have_count(3)
    assert sorted(await links.all_inner_texts()) == sorted(str(i)[-8:] for i in ids)
    for job_id in ids:
        retry = page.get_by_role("button", name=f"Retry job {str(job_id)[-8:]}", exact=True)
        await expect(retry).to_have_count(1)
