"""The dashboard's operator-intelligence pieces in headless Chromium against the real app: the
"why is it (not) running?" panel of a job, a schedule's overlap/misfire fields and its fire history."""

from __future__ import annotations

from uuid import UUID

from playwright.async_api import expect


async def seed_job(pool, *, state: str = "queued", run_at: str = "now() + interval '1 hour'",
                   last_error: str | None = None, attempts: int = 0) -> UUID:
    return await pool.fetchval(
        f"INSERT INTO _ayb_jobs (type, state, attempts, max_attempts, last_error, run_at) "
        f"VALUES ('job_prune', $1, $2, 3, $3, {run_at}) RETURNING id", state, attempts, last_error)


async def test_job_detail_explains_why_a_job_is_not_running(dash, pool) -> None:
    later = await seed_job(pool)
    page = dash.page
    await dash.open(f"jobs/{later}")
    reasons = page.locator("#explain-reasons li")
    await expect(reasons.first).to_have_attribute("data-code", "scheduled_in_future")
    await expect(reasons.first).to_contain_text("(in 59m")
    # No daemon is alive in this test: that reason is there too, shown as blocking, with the fix.
    blocked = page.locator('#explain-reasons li[data-code="no_live_worker_for_queue"]')
    await expect(blocked).to_have_class("reason reason-blocking")
    await expect(blocked).to_contain_text("ayb-jobs run")

    failed = await seed_job(pool, state="failed", attempts=3, last_error="SMTP 550 mailbox unavailable",
                            run_at="now()")
    await dash.page.goto(f"{dash.base}/admin/#/jobs/{failed}")
    failure = page.locator('#explain-reasons li[data-code="failed"]')
    await expect(failure).to_contain_text("failed after 3 of 3 attempts: SMTP 550 mailbox unavailable")
    await expect(failure).to_contain_text(f"ayb-jobs jobs retry {failed}")


async def test_schedule_form_sets_overlap_and_misfire(dash, pool) -> None:
    page = dash.page
    await dash.open("schedules/new")
    await page.get_by_label("Name").fill("hourly_report")
    await page.get_by_label("Job type").select_option("job_prune")
    await page.get_by_label("Cron expression").fill("0 * * * *")
    most = page.get_by_label("Most missed runs")
    await expect(most).to_be_disabled()  # only with "All"
    await page.get_by_label("While the previous job still runs").select_option("skip")
    await page.get_by_label("Slots missed while no daemon ran").select_option("all")
    await expect(most).to_be_enabled()
    await most.fill("0")
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.locator("#misfire-max-error")).to_contain_text("from 1 to 100")
    await most.fill("4")
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.locator(".toast-ok")).to_contain_text("Created schedule hourly_report")
    row = await pool.fetchrow("SELECT * FROM _ayb_job_schedules WHERE name = 'hourly_report'")
    assert (row["overlap"], row["misfire"], row["misfire_max"]) == ("skip", "all", 4)

    await page.goto(f"{dash.base}/admin/#/schedules/{row['id']}/edit")
    await expect(page.get_by_label("Slots missed while no daemon ran")).to_have_value("all")
    await expect(page.get_by_label("While the previous job still runs")).to_have_value("skip")
    await page.get_by_label("Slots missed while no daemon ran").select_option("skip")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator(".toast-ok").last).to_contain_text("Saved schedule hourly_report")
    row = await pool.fetchrow("SELECT * FROM _ayb_job_schedules WHERE name = 'hourly_report'")
    assert (row["overlap"], row["misfire"], row["misfire_max"]) == ("skip", "skip", 4)


async def test_schedule_detail_shows_the_fire_history(dash, pool) -> None:
    sid = await pool.fetchval("SELECT id FROM _ayb_job_schedules WHERE name = 'job_prune_daily'")
    job = await pool.fetchval("INSERT INTO _ayb_jobs (type, schedule_id, state, completed_at) "
                              "VALUES ('job_prune', $1, 'completed', now()) RETURNING id", sid)
    await pool.execute(
        "INSERT INTO _ayb_job_schedule_fires (schedule_id, slot_at, decided_at, job_id, outcome) VALUES "
        "($1, '2030-01-01T02:30Z', '2030-01-01T02:30:00.01Z', $2, 'enqueued'), "
        "($1, '2030-01-02T02:30Z', '2030-01-02T02:30:00.01Z', NULL, 'skipped_overlap'), "
        "($1, '2030-01-03T02:30Z', '2030-01-03T02:32:00Z', NULL, 'skipped_misfire')", sid, job)
    page = dash.page
    await dash.open(f"schedules/{sid}")
    rows = page.locator("#fire-history-body tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_have_attribute("data-outcome", "skipped_misfire")
    await expect(rows.nth(0)).to_contain_text("missed while no daemon ran")
    await expect(rows.nth(1)).to_contain_text("previous job still running")
    await expect(rows.nth(2)).to_contain_text("completed")
    await rows.nth(2).get_by_role("link", name=f"Job {job}").click()
    await expect(page.locator("#explain-reasons li").first).to_have_attribute("data-code", "completed")
