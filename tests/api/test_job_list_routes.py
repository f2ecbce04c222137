"""The job list's dashboard filters (search, due/scheduled, schedule, summary rows) and the timeline."""

from __future__ import annotations

import json
import uuid

import pytest
from tests_api_helpers import assert_envelope

pytestmark = pytest.mark.asyncio


async def insert(pool, *, job_type: str = "job_prune", state: str = "queued", payload: dict | None = None,
                 last_error: str | None = None, run_in_s: int = 0, schedule_id=None) -> str:
    return str(await pool.fetchval(
        """INSERT INTO _ayb_jobs (type, payload, state, last_error, run_at, schedule_id, errors)
           VALUES ($1, $2::jsonb, $3, $4, now() + make_interval(secs => $5), $6,
                   '[{"attempt": 1, "error": "e"}]') RETURNING id""",
        job_type, json.dumps(payload or {}), state, last_error, run_in_s, schedule_id))


async def ids(client, **params) -> list[str]:
    response = await client.get("/api/admin/jobs", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == body["count"] == len(body["items"])
    return sorted(j["id"] for j in body["items"])


async def test_search_matches_id_type_error_and_payload_text(client, pool) -> None:
    by_type = await insert(pool, job_type="legacy_mailer")
    by_error = await insert(pool, state="failed", last_error="SMTP 550 mailbox unavailable")
    by_payload = await insert(pool, payload={"customer": "ACME-1234"})
    other = await insert(pool)
    assert await ids(client, q="LEGACY") == [by_type]
    assert await ids(client, q="mailbox") == [by_error]
    assert await ids(client, q="acme-12") == [by_payload]
    assert await ids(client, q=other[-8:]) == [other]  # the short id the dashboard shows (the random tail)
    assert await ids(client, q=other) == [other]
    # LIKE's wildcards are literal text, not patterns.
    assert await ids(client, q="%") == [] and await ids(client, q="acme_1234") == []


async def test_due_and_scheduled_split_the_queued_jobs(client, pool) -> None:
    due = await insert(pool)
    later = await insert(pool, run_in_s=3600)
    await insert(pool, state="running")
    assert await ids(client, state="due") == [due]
    assert await ids(client, state="scheduled") == [later]
    assert await ids(client, state="queued") == sorted([due, later])


async def test_filter_by_schedule_and_by_an_unregistered_type(client, pool) -> None:
    schedule_id = await pool.fetchval("SELECT id FROM _ayb_job_schedules WHERE name = 'job_prune_daily'")
    mine = await insert(pool, schedule_id=schedule_id)
    await insert(pool)
    rolled = await insert(pool, job_type="from_the_next_release")
    assert await ids(client, scheduleId=str(schedule_id)) == [mine]
    assert await ids(client, scheduleId=str(uuid.uuid4())) == []
    assert await ids(client, type="from_the_next_release") == [rolled]


async def test_summary_rows_leave_out_payload_and_history_and_cut_the_error(client, pool) -> None:
    job_id = await insert(pool, state="failed", payload={"blob": "x" * 100_000}, last_error="e" * 5000)
    summary = (await client.get("/api/admin/jobs", params={"view": "summary"})).json()
    [row] = summary["items"]
    assert row["id"] == job_id and "payload" not in row and "errors" not in row
    assert row["lastError"] == "e" * 300 and row["state"] == "failed" and row["attempts"] == 0
    full = (await client.get("/api/admin/jobs")).json()["items"][0]
    assert full["payload"] == {"blob": "x" * 100_000} and full["errors"] and len(full["lastError"]) == 5000
    assert set(row) == set(full) - {"payload", "errors"}


async def test_timeline_counts_per_minute_and_per_type(client, pool) -> None:
    await pool.execute(
        """INSERT INTO _ayb_jobs (type, state, completed_at, updated_at) VALUES
           ('a', 'completed', now(), now()), ('a', 'completed', now() - interval '2 minutes', now()),
           ('a', 'completed', now() - interval '2 hours', now()),
           ('b', 'failed', NULL, now() - interval '2 minutes'), ('b', 'queued', NULL, now()),
           ('b', 'running', NULL, now())""")
    body = (await client.get("/api/admin/jobs/timeline", params={"minutes": 5})).json()
    minutes = body["minutes"]
    assert len(minutes) == 5 and all(m["at"].endswith(":00Z") for m in minutes)
    assert [(m["completed"], m["failed"]) for m in minutes][-3:] in (
        [(1, 1), (0, 0), (1, 0)],  # the usual case
        [(0, 0), (1, 1), (1, 0)],  # the minute turned between the inserts and the query
    )
    assert body["types"] == [
        {"type": "a", "completed": 2, "failed": 0, "queued": 0, "running": 0},
        {"type": "b", "completed": 0, "failed": 1, "queued": 1, "running": 1},
    ]


async def test_timeline_of_an_empty_table_still_has_every_minute(client) -> None:
    body = (await client.get("/api/admin/jobs/timeline")).json()
    assert len(body["minutes"]) == 60 and body["types"] == []
    assert {m["completed"] + m["failed"] for m in body["minutes"]} == {0}


async def test_timeline_rejects_a_bad_window_in_words(client) -> None:
    for value in ("0", "1441", "hour"):
        assert_envelope(await client.get("/api/admin/jobs/timeline", params={"minutes": value}), 400,
                        f"minutes must be a whole number from 1 to 1440; got '{value}'")
