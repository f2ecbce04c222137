"""Admin API job routes: success shapes and every listed error, over a real database."""

from __future__ import annotations

import uuid

import pytest
from tests_api_helpers import assert_envelope

pytestmark = pytest.mark.asyncio


async def enqueue(client, **body) -> dict:
    response = await client.post("/api/admin/jobs", json={"type": "job_prune", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def test_enqueue_returns_201_job_in_camel_case(client) -> None:
    job = await enqueue(
        client,
        payload={"completed_retention_hours": 1},
        runAt="2030-01-01T01:00:00+01:00",
        maxAttempts=7,
        idempotencyKey="key-1",
    )
    assert job["type"] == "job_prune" and job["state"] == "queued" and job["attempts"] == 0
    assert job["runAt"] == "2030-01-01T00:00:00Z" and job["maxAttempts"] == 7
    assert job["idempotencyKey"] == "key-1" and job["payload"] == {"completed_retention_hours": 1}
    assert job["createdAt"].endswith("Z") and "leaseUntil" not in job and job["errors"] == []


async def test_enqueue_unknown_type_lists_registered_types(client) -> None:
    response = await client.post("/api/admin/jobs", json={"type": "nope"})
    assert_envelope(response, 400, "unknown job type 'nope'; registered: expired_auth_cleanup")
    assert "job_prune" in response.json()["message"]


async def test_duplicate_idempotency_key_is_409_with_existing_id(client) -> None:
    first = await enqueue(client, idempotencyKey="same")
    response = await client.post("/api/admin/jobs", json={"type": "job_prune", "idempotencyKey": "same"})
    assert_envelope(response, 409, "already exists")
    assert response.json()["existingJobId"] == first["id"]


BAD_BODIES = [
    ({"type": "job_prune", "colour": "red"}, "unknown field 'colour'"),
    ({"type": "job_prune", "maxAttempts": False}, "field 'maxAttempts'"),
    ({"type": "job_prune", "maxAttempts": "3"}, "field 'maxAttempts'"),
    ({"type": "job_prune", "maxAttempts": 0}, "field 'maxAttempts'"),
    ({"type": "job_prune", "payload": [1]}, "field 'payload'"),
    ({"type": "job_prune", "payload": {"a": "x\u0000y"}}, "NUL"),
    ({"type": "job_prune", "runAt": "2030-01-01T00:00:00"}, "timezone"),
    ({"type": "job_prune", "runAt": "soon"}, "field 'runAt'"),
    ({"type": 5}, "field 'type'"),
    ({}, "field 'type' is required"),
]
NOT_OBJECTS = [
    (b"[1, 2]", "request body must be a JSON object"),
    (b'"text"', "request body must be a JSON object"),
    (b"{not json", "request body is not valid JSON"),
    (b"", "request body is required"),
]


async def test_enqueue_bad_body_is_400_naming_the_field(client) -> None:
    for body, expected in BAD_BODIES:
        assert_envelope(await client.post("/api/admin/jobs", json=body), 400, expected)
    for content, expected in NOT_OBJECTS:
        response = await client.post(
            "/api/admin/jobs", content=content, headers={"content-type": "application/json"}
        )
        assert_envelope(response, 400, expected)
    assert (await client.get("/api/admin/jobs")).json()["total"] == 0


async def test_body_over_1_mib_is_413(client) -> None:
    big = {"type": "job_prune", "payload": {"blob": "x" * (1024 * 1024)}}
    assert_envelope(await client.post("/api/admin/jobs", json=big), 413, "1 MiB")


async def test_streamed_body_over_1_mib_is_413_without_content_length(client) -> None:
    async def chunks():
        for _ in range(20):
            yield b"x" * 65536

    response = await client.post("/api/admin/jobs", content=chunks())
    assert_envelope(response, 413, "1 MiB")


async def test_get_job_200_404_400(client) -> None:
    job = await enqueue(client)
    response = await client.get(f"/api/admin/jobs/{job['id']}")
    assert response.status_code == 200 and response.json() == job
    assert_envelope(await client.get(f"/api/admin/jobs/{uuid.uuid4()}"), 404, "not found")
    assert_envelope(await client.get("/api/admin/jobs/12345"), 400, "invalid job id '12345': must be a UUID")


async def test_list_newest_first_with_filters_and_paging(client) -> None:
    ids = [(await enqueue(client))["id"] for _ in range(3)]
    await client.post("/api/admin/jobs", json={"type": "stale_session_cleanup"})
    page = (await client.get("/api/admin/jobs", params={"type": "job_prune", "limit": 2})).json()
    assert page["count"] == 2 and page["total"] == 3
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    rest = (await client.get("/api/admin/jobs", params={"type": "job_prune", "limit": 2, "offset": 2})).json()
    assert [j["id"] for j in rest["items"]] == [ids[0]]
    queued = (await client.get("/api/admin/jobs", params={"state": "queued"})).json()
    assert queued["total"] == 4


BAD_QUERIES = [
    ({"state": "sleeping"}, "state must be one of queued, running, completed, failed, canceled, due, "
                            "scheduled; got 'sleeping'"),
    ({"limit": 0}, "limit must be a whole number from 1 to 500; got '0'"),
    ({"limit": 501}, "limit must be a whole number from 1 to 500"),
    ({"limit": "false"}, "limit must be a whole number from 1 to 500; got 'false'"),
    ({"offset": -1}, "offset must be a whole number from 0 to"),
    ({"type": "t" * 101}, "type is limited to 100 characters; got 101"),
    ({"q": "x" * 201}, "q is limited to 200 characters"),
    ({"scheduleId": "nope"}, "invalid schedule id 'nope': must be a UUID"),
    ({"view": "tiny"}, "view must be 'full' or 'summary'; got 'tiny'"),
]


async def test_list_bad_query_is_400(client) -> None:
    for params, expected in BAD_QUERIES:
        assert_envelope(await client.get("/api/admin/jobs", params=params), 400, expected)


async def test_cancel_then_retry_and_their_conflicts(client) -> None:
    job = await enqueue(client)
    assert_envelope(await client.post(f"/api/admin/jobs/{job['id']}/retry"), 409, "")
    canceled = await client.post(f"/api/admin/jobs/{job['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    assert "canceledAt" in canceled.json()
    assert_envelope(await client.post(f"/api/admin/jobs/{job['id']}/cancel"), 409, "")
    retried = await client.post(f"/api/admin/jobs/{job['id']}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    for action in ("cancel", "retry"):
        assert_envelope(await client.post(f"/api/admin/jobs/{uuid.uuid4()}/{action}"), 404, "not found")
        assert_envelope(await client.post(f"/api/admin/jobs/bad/{action}"), 400, "must be a UUID")


async def test_stats_counts_states_and_scheduled(client) -> None:
    await enqueue(client)
    await enqueue(client, runAt="2099-01-01T00:00:00Z")
    canceled = await enqueue(client)
    await client.post(f"/api/admin/jobs/{canceled['id']}/cancel")
    stats = (await client.get("/api/admin/jobs/stats")).json()
    assert stats == {**stats, "queued": 2, "scheduled": 1, "canceled": 1, "running": 0, "failed": 0}
    assert stats["oldestQueuedAgeSec"] >= 0


async def test_job_types_lists_the_registry(client) -> None:
    items = (await client.get("/api/admin/job-types")).json()["items"]
    names = [i["type"] for i in items]
    assert "job_prune" in names and names == sorted(names)
    assert all(i["builtin"] is True and isinstance(i["description"], str) for i in items)


async def test_unknown_query_parameter_is_400_naming_it_and_the_accepted_ones(client) -> None:
    r = await client.get("/api/admin/jobs", params={"stat": "failed"})
    message = assert_envelope(r, 400, "'stat'")["message"]
    assert "state" in message and "limit" in message


async def test_explain_gives_every_reason_with_a_code_and_a_message(client) -> None:
    body = {"type": "job_prune", "runAt": "2099-01-01T00:00:00Z"}
    enqueued = await client.post("/api/admin/jobs", json=body)
    job = enqueued.json()
    response = await client.get(f"/api/admin/jobs/{job['id']}/explain")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["state"]) == (job["id"], "queued")
    assert [r["code"] for r in body["reasons"]] == ["scheduled_in_future", "no_live_worker_for_queue"]
    assert all(r["message"] for r in body["reasons"])
    missing = await client.get("/api/admin/jobs/00000000-0000-0000-0000-000000000009/explain")
    assert missing.status_code == 404 and "not found" in missing.json()["message"]
    assert (await client.get("/api/admin/jobs/nope/explain")).status_code == 400
