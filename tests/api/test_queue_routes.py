"""Admin API for queues: list with depth, get, pause/resume, set and clear the limit (audited), and
queue/priority on jobs: enqueue, the list filter, stats per queue and type, bulk by queue."""

from __future__ import annotations

import json

import pytest
from tests_api_helpers import assert_envelope

pytestmark = pytest.mark.asyncio
A = "/api/admin"


async def enqueue(client, **body) -> dict:
    response = await client.post(f"{A}/jobs", json={"type": "job_prune", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def test_queues_list_every_queue_with_settings_or_live_jobs_and_its_depth(client) -> None:
    await enqueue(client, queue="mail")
    await enqueue(client, queue="mail", runAt="2999-01-01T00:00:00Z")
    await enqueue(client)
    assert (await client.put(f"{A}/queues/idle", json={"concurrency": 4})).status_code == 200
    items = {q["name"]: q for q in (await client.get(f"{A}/queues")).json()["items"]}
    assert set(items) == {"default", "idle", "mail"}
    assert items["mail"] == {"name": "mail", "paused": False, "concurrency": None, "queued": 2, "running": 0,
                             "scheduled": 1, "oldestDueAgeSec": items["mail"]["oldestDueAgeSec"]}
    assert items["idle"]["concurrency"] == 4 and items["idle"]["queued"] == 0
    assert (await client.get(f"{A}/queues/mail")).json()["queued"] == 2
    assert_envelope(await client.get(f"{A}/queues/nothing-here"), 404, "no settings and no queued")


async def test_pause_resume_and_the_limit_are_audited_changes(client, pool) -> None:
    paused = (await client.post(f"{A}/queues/bulk/pause")).json()
    assert (paused["name"], paused["paused"]) == ("bulk", True)
    limited = (await client.put(f"{A}/queues/bulk", json={"concurrency": 2})).json()
    assert (limited["paused"], limited["concurrency"]) == (True, 2)  # absent fields stay
    cleared = (await client.put(f"{A}/queues/bulk", json={"concurrency": None, "paused": False})).json()
    assert (cleared["paused"], cleared["concurrency"]) == (False, None)
    assert (await client.post(f"{A}/queues/bulk/resume")).json()["paused"] is False
    rows = await pool.fetch("SELECT action, target, detail FROM _ayb_admin_audit ORDER BY id")
    assert [(r["action"], r["target"], json.loads(r["detail"])) for r in rows] == [
        ("queue.pause", "bulk", {"paused": True}),
        ("queue.update", "bulk", {"concurrency": 2}),
        ("queue.update", "bulk", {"paused": False, "concurrency": None}),
        ("queue.resume", "bulk", {"paused": False}),
    ]


@pytest.mark.parametrize(("method", "path", "body", "words"), [
    ("PUT", "/queues/q", {"concurrency": 0}, "concurrency"),
    ("PUT", "/queues/q", {"concurrency": "2"}, "concurrency"),
    ("PUT", "/queues/q", {"paused": "yes"}, "paused"),
    ("PUT", "/queues/q", {"limit": 2}, "limit"),
    ("PUT", "/queues/bad%20name", {"paused": True}, "name must be 1-100"),
    ("POST", "/queues/bad%20name/pause", None, "name must be 1-100"),
    ("POST", "/jobs", {"type": "job_prune", "priority": 101}, "priority"),
    ("POST", "/jobs", {"type": "job_prune", "priority": 1.5}, "priority"),
    ("POST", "/jobs", {"type": "job_prune", "queue": ""}, "queue"),
    ("POST", "/jobs", {"type": "job_prune", "queue": "a/b"}, "queue"),
])
async def test_bad_queue_input_is_a_400_naming_the_field(client, method, path, body, words) -> None:
    response = await client.request(method, f"{A}{path}", json=body)
    assert_envelope(response, 400, words)


async def test_jobs_carry_queue_and_priority_and_filter_and_count_by_queue(client) -> None:
    mail = await enqueue(client, queue="mail", priority=-5)
    plain = await enqueue(client)
    assert (mail["queue"], mail["priority"], plain["queue"], plain["priority"]) == ("mail", -5, "default", 0)
    page = (await client.get(f"{A}/jobs", params={"queue": "mail", "view": "summary"})).json()
    assert [j["id"] for j in page["items"]] == [mail["id"]] and page["total"] == 1
    assert page["items"][0]["priority"] == -5
    stats = (await client.get(f"{A}/jobs/stats")).json()
    assert stats["byQueue"] == {"default": {"queued": 1, "scheduled": 0, "running": 0},
                                "mail": {"queued": 1, "scheduled": 0, "running": 0}}
    assert stats["byType"] == {"job_prune": {"queued": 2, "scheduled": 0, "running": 0}}
    types = {t["type"]: t for t in (await client.get(f"{A}/job-types")).json()["items"]}
    assert types["job_prune"]["queue"] is None and types["job_prune"]["customBackoff"] is False


async def test_bulk_actions_filter_by_queue(client) -> None:
    await enqueue(client, queue="mail")
    await enqueue(client, queue="mail")
    keep = await enqueue(client)
    body = {"action": "cancel", "filter": {"queue": "mail"}}
    assert (await client.post(f"{A}/jobs/bulk", json=body)).json() == {"matched": 2, "changed": 2,
                                                                     "dryRun": False}
    assert (await client.get(f"{A}/jobs/{keep['id']}")).json()["state"] == "queued"


async def test_schedules_take_and_show_queue_and_priority_and_null_hands_them_back(client) -> None:
    body = {"name": "nightly", "jobType": "job_prune", "cronExpr": "@daily", "queue": "maint", "priority": 3}
    created = (await client.post(f"{A}/schedules", json=body)).json()
    assert (created["queue"], created["priority"]) == ("maint", 3)
    updated = (await client.put(f"{A}/schedules/{created['id']}", json={"queue": None})).json()
    assert (updated["queue"], updated["priority"]) == (None, 3)
    job = (await client.post(f"{A}/schedules/{created['id']}/trigger")).json()
    assert (job["queue"], job["priority"]) == ("default", 3)
