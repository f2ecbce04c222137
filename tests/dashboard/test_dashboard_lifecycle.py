"""Dashboard: delete finished jobs, bulk actions with the dry-run count in the confirmation, the
stored result in the job detail, Cancel offered on running rows."""

from __future__ import annotations

import json

from dash_helpers import focused_key, insert_job
from playwright.async_api import expect


def row_of(page, job_id):
    return page.locator(f'tr[data-job-id="{job_id}"]')


async def states(pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT state, count(*) AS n FROM _ayb_jobs GROUP BY state")
    return {r["state"]: r["n"] for r in rows}


async def test_a_finished_row_offers_delete_with_a_confirmation_and_a_queued_one_does_not(dash, pool) -> None:
    failed = await insert_job(pool, state="failed", attempts=3, last_error="boom")
    queued = await insert_job(pool, state="queued")
    page = dash.page
    await dash.open("jobs")
    row = page.locator(f'tr[data-job-id="{failed}"]')
    await expect(row.get_by_role("button", name=f"Delete job {str(failed)[-8:]}")).to_be_visible()
    await expect(row_of(page, queued).get_by_role("button", name="Delete")).to_have_count(0)
    dialog = page.locator("#confirm-dialog")
    await row.get_by_role("button", name="Delete").click()
    await expect(dialog).to_contain_text("Delete failed job")
    await dialog.get_by_role("button", name="Cancel").click()
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE id = $1", failed) == 1
    await row.get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Delete").click()
    await expect(page.locator(".toast-ok", has_text="Deleted job")).to_be_visible()
    await expect(row).to_have_count(0)
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE id = $1", failed) == 0


async def test_bulk_retry_shows_the_dry_run_count_and_retries_exactly_the_filtered_jobs(dash, pool) -> None:
    chosen = {await insert_job(pool, state="failed", job_type="job_prune", attempts=3, last_error="x")
              for _ in range(3)}
    other = await insert_job(pool, state="failed", job_type="stale_session_cleanup", attempts=3,
                             last_error="x")
    page = dash.page
    await dash.open("jobs")
    retry_all = page.get_by_role("button", name="Retry all matching")
    await expect(retry_all).to_be_disabled()
    await expect(page.locator("#bulk-note")).to_have_text(
        "Filter by state or type to act on many jobs at once.")
    await page.locator("#filter-state").select_option("failed")
    await page.locator("#filter-type").fill("job_prune")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(retry_all).to_be_enabled()
    await expect(page.locator("#bulk-note")).to_have_text(
        "Acts on every job matching state failed and type job_prune (up to 10,000), not only this page.")
    dialog = page.locator("#confirm-dialog")

    await retry_all.click()  # the dry run: counted, shown, nothing changed; dismissed
    await expect(dialog.locator("#confirm-title")).to_have_text("Retry 3 jobs?")
    await expect(dialog).to_contain_text("3 jobs match state failed and type job_prune; 3 of them are failed "
                                         "or canceled and will be retried.")
    assert await states(pool) == {"failed": 4}
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(retry_all).to_be_focused()
    assert await states(pool) == {"failed": 4}

    await retry_all.click()
    await dialog.get_by_role("button", name="Retry 3 jobs").click()
    await expect(page.locator(".toast-ok", has_text="3 jobs retried (3 matched).")).to_be_visible()
    queued = {r["id"] for r in await pool.fetch("SELECT id FROM _ayb_jobs WHERE state = 'queued'")}
    assert queued == chosen
    assert await pool.fetchval("SELECT state FROM _ayb_jobs WHERE id = $1", other) == "failed"
    await expect(page.locator("#jobs-empty")).to_be_visible()  # the failed job_prune list refreshed
    assert await focused_key(page) == "bulk-retry"  # not dropped to <body> by the disabled button


async def test_a_bulk_action_over_ten_thousand_jobs_says_so_in_words_and_changes_nothing(dash, pool) -> None:
    await pool.execute("""INSERT INTO _ayb_jobs (type, state, attempts, max_attempts, last_error)
                          SELECT 'job_prune', 'failed', 3, 3, 'x' FROM generate_series(1, 10001)""")
    page = dash.page
    await dash.open("jobs?state=failed")
    await page.get_by_role("button", name="Delete all matching").click()
    error = page.locator(".toast-error")
    await expect(error).to_contain_text(
        "Delete all matching failed: more than 10,000 jobs match state failed, and one bulk action "
        "changes at most 10,000. Narrow the filter (choose a state and a type) and try again; nothing "
        "was changed.")
    await expect(error).not_to_contain_text("errorContains")  # the API's field names are not the user's
    await expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert await states(pool) == {"failed": 10001}
    # The focus comes back once the refresh after the action is done: wait for it, do not sample it.
    await expect(page.locator('[data-key="bulk-delete"]')).to_be_focused()


async def test_bulk_is_off_with_a_search_or_a_due_filter_and_says_why(dash, pool) -> None:
    page = dash.page
    await dash.open("jobs?state=due")
    await expect(page.get_by_role("button", name="Delete all matching")).to_be_disabled()
    await expect(page.locator("#bulk-note")).to_contain_text("choose 'queued' instead")
    await dash.page.goto(f"{dash.base}/admin/#/jobs?state=failed&q=boom")
    await expect(page.locator("#bulk-note")).to_contain_text("clear the search")


async def test_job_detail_shows_the_result_or_the_truncation_note(dash, pool) -> None:
    done = await insert_job(pool, state="completed", attempts=1)
    await pool.execute("UPDATE _ayb_jobs SET result = $2::jsonb, completed_at = now() WHERE id = $1", done,
                       json.dumps({"sent": 3, "to": ["a@example.com"]}))
    big = await insert_job(pool, state="completed", attempts=1)
    await pool.execute("UPDATE _ayb_jobs SET result = $2::jsonb WHERE id = $1", big,
                       json.dumps({"truncated": True, "bytes": 71680}))
    page = dash.page
    await dash.open(f"jobs/{done}")
    await expect(page.locator("#job-result")).to_contain_text('"sent": 3')
    await expect(page.get_by_role("button", name=f"Delete job {str(done)[-8:]}")).to_be_visible()
    await page.goto(f"{dash.base}/admin/#/jobs/{big}")
    await expect(page.locator("#job-result-truncated")).to_contain_text("71680 bytes")


async def test_a_running_row_offers_cancel_unless_a_cancel_was_already_requested(dash, pool) -> None:
    running = await insert_job(pool, state="running", attempts=1)
    requested = await insert_job(pool, state="running", attempts=1)
    await pool.execute("UPDATE _ayb_jobs SET worker_id = 'w1', lease_until = now() + interval '1 minute'")
    await pool.execute("UPDATE _ayb_jobs SET cancel_requested_at = now() WHERE id = $1", requested)
    page = dash.page
    await dash.open("running")
    await expect(row_of(page, running).get_by_role("button", name="Cancel")).to_be_visible()
    await expect(row_of(page, requested).get_by_role("button", name="Cancel")).to_have_count(0)
    await expect(row_of(page, requested).locator(".cancel-requested")).to_have_text("cancel requested")
    await expect(row_of(page, running).locator(".cancel-requested")).to_have_count(0)
    await page.goto(f"{dash.base}/admin/#/jobs/{requested}")
    await expect(page.locator("#job-detail")).to_contain_text("Cancel requested")
    await expect(page.locator(".detail-actions .cancel-requested")).to_have_text("cancel requested")


async def test_deleting_a_finished_job_from_its_detail_returns_to_the_list(dash, pool) -> None:
    done = await insert_job(pool, state="completed", attempts=1)
    page = dash.page
    await dash.open(f"jobs/{done}")
    delete = page.get_by_role("button", name=f"Delete job {str(done)[-8:]}")
    await delete.click()
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_contain_text(
        f"Delete completed job {str(done)[-8:]} (job_prune)? This cannot be undone.")
    await dialog.get_by_role("button", name="Delete").click()
    await expect(page.locator(".toast-ok", has_text=f"Deleted job {str(done)[-8:]}.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_focused()
    assert page.url.endswith("#/jobs")
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE id = $1", done) == 0


async def test_a_409_on_deleting_a_job_that_started_running_is_shown_and_the_job_stays(dash, pool) -> None:
    """The detail offered Delete for a failed job; before the confirmation it was retried and
    claimed: the API refuses (409), the dashboard says why and then offers Cancel instead."""
    job = await insert_job(pool, state="failed", attempts=3, last_error="boom")
    page = dash.page
    await dash.open(f"jobs/{job}")
    await page.get_by_role("button", name=f"Delete job {str(job)[-8:]}").click()
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await pool.execute("""UPDATE _ayb_jobs SET state = 'running', attempts = 1, worker_id = 'w1',
                          last_run_at = now(), lease_until = now() + interval '1 minute'
                          WHERE id = $1""", job)
    await dialog.get_by_role("button", name="Delete").click()
    await expect(page.locator(".toast-error")).to_contain_text(
        f"Delete failed: job {job} is running: only completed, failed or canceled jobs can be deleted; "
        "cancel it first")
    assert await pool.fetchval("SELECT state FROM _ayb_jobs WHERE id = $1", job) == "running"
    cancel = page.get_by_role("button", name=f"Cancel job {str(job)[-8:]}")
    await expect(cancel).to_be_visible()
    await expect(cancel).to_be_focused()


async def test_job_detail_explains_a_result_json_could_not_hold(dash, pool) -> None:
    job = await insert_job(pool, state="completed", attempts=1)
    await pool.execute("UPDATE _ayb_jobs SET result = $2::jsonb WHERE id = $1", job,
                       json.dumps({"unserializable": True, "type": "socket"}))
    await dash.open(f"jobs/{job}")
    await expect(dash.page.locator("#job-result-unserializable")).to_have_text(
        "The handler returned a value JSON cannot hold (a Python socket), so only its type was kept.")
