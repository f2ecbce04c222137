"""Admin API: unique keys on enqueue, DELETE /jobs/{id}, POST /jobs/bulk (with dry run and its bound)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tests_api_helpers import assert_envelope

pytestmark = pytest.mark.asyncio
JOBS = "/api/admin/jobs"


async def enqueue(client, **body) -> dict:
    response = await client.post(JOBS, json={"type": "job_prune", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def add_rows(
    pool, n: int, *, state: str, job_type: str = "job_prune", error: str | None = None
) -> None:
    """n jobs written directly in a state (thousands at once, as an operator's backlog would be)."""
    await pool.execute(
        "INSERT INTO _ayb_jobs (type, state, last_error, attempts)"
        " SELECT $1, $2, $3, 1 FROM generate_series(1, $4)",
        job_type,
        state,
        error,
        n,
    )


async def states(pool) -> dict[tuple[str, str], int]:
    rows = await pool.fetch("SELECT type, state, count(*) AS n FROM _ayb_jobs GROUP BY 1, 2")
    return {(r["type"], r["state"]): r["n"] for r in rows}


# --- unique keys -------------------------------------------------------------------------------------


async def test_twenty_concurrent_enqueues_with_one_unique_key_give_one_201_and_the_same_job(client) -> None:
    responses = await asyncio.gather(
        *(client.post(JOBS, json={"type": "job_prune", "uniqueKey": "u1"}) for _ in range(20))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 19 + [201]
    bodies = [r.json() for r in responses]
    assert len({b["id"] for b in bodies}) == 1 and all(b["uniqueKey"] == "u1" for b in bodies)
    assert all(
        b["deduplicated"] is True for r, b in zip(responses, bodies, strict=True) if r.status_code == 200
    )
    assert all(
        "deduplicated" not in b for r, b in zip(responses, bodies, strict=True) if r.status_code == 201
    )


async def test_after_its_job_completed_the_unique_key_enqueues_a_new_job(client, pool) -> None:
    first = await enqueue(client, uniqueKey="nightly")
    await pool.execute(
        "UPDATE _ayb_jobs SET state = 'completed', completed_at = now() WHERE id = $1", uuid.UUID(first["id"])
    )
    second = await enqueue(client, uniqueKey="nightly")
    assert second["id"] != first["id"]


async def test_twenty_concurrent_enqueues_with_one_idempotency_key_still_give_one_201_and_409s(
    client,
) -> None:
    responses = await asyncio.gather(
        *(client.post(JOBS, json={"type": "job_prune", "idempotencyKey": "i1"}) for _ in range(20))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    created = next(r.json() for r in responses if r.status_code == 201)
    assert {r.json()["existingJobId"] for r in responses if r.status_code == 409} == {created["id"]}


async def test_a_unique_key_longer_than_255_characters_is_400(client) -> None:
    assert_envelope(
        await client.post(JOBS, json={"type": "job_prune", "uniqueKey": "k" * 256}), 400, "uniqueKey"
    )


# --- delete -------------------------------------------------------------------------------------------


async def test_delete_a_finished_job_is_204_and_it_is_gone(client, pool) -> None:
    job = await enqueue(client)
    await pool.execute("UPDATE _ayb_jobs SET state = 'failed' WHERE id = $1", uuid.UUID(job["id"]))
    response = await client.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 204 and response.content == b""
    assert_envelope(await client.get(f"{JOBS}/{job['id']}"), 404, "not found")
    audit = await pool.fetchrow(
        "SELECT action, target, detail FROM _ayb_admin_audit WHERE action = 'job.delete'"
    )
    assert audit["target"] == job["id"] and '"failed"' in audit["detail"]


async def test_delete_of_a_queued_or_running_job_is_409_and_of_an_unknown_one_404(client, pool) -> None:
    job = await enqueue(client)
    assert_envelope(
        await client.delete(f"{JOBS}/{job['id']}"),
        409,
        "is queued: only completed, failed or canceled jobs can be deleted; cancel it first",
    )
    await pool.execute(
        "UPDATE _ayb_jobs SET state = 'running', worker_id = 'w' WHERE id = $1", uuid.UUID(job["id"])
    )
    assert_envelope(await client.delete(f"{JOBS}/{job['id']}"), 409, "is running")
    assert_envelope(await client.delete(f"{JOBS}/{uuid.uuid4()}"), 404, "not found")
    assert_envelope(await client.delete(f"{JOBS}/nope"), 400, "must be a UUID")
    assert await pool.fetchval("SELECT count(*) FROM _ayb_admin_audit WHERE action = 'job.delete'") == 0


# --- bulk ---------------------------------------------------------------------------------------------


async def bulk(client, action: str, dry_run: bool = False, **filter_) -> dict:
    response = await client.post(
        f"{JOBS}/bulk", json={"action": action, "filter": filter_, "dryRun": dry_run}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_bulk_retry_dry_run_counts_and_changes_nothing_then_the_real_run_changes_exactly_those(
    client,
    pool,
) -> None:
    await add_rows(pool, 3, state="failed", job_type="job_prune")
    await add_rows(pool, 2, state="failed", job_type="stale_session_cleanup")
    await add_rows(pool, 1, state="completed", job_type="job_prune")
    before = await states(pool)
    assert await bulk(client, "retry", True, state="failed", type="job_prune") == {
        "matched": 3,
        "changed": 3,
        "dryRun": True,
    }
    assert await states(pool) == before
    assert await pool.fetchval("SELECT count(*) FROM _ayb_admin_audit") == 0
    assert await bulk(client, "retry", state="failed", type="job_prune") == {
        "matched": 3,
        "changed": 3,
        "dryRun": False,
    }
    assert await states(pool) == {
        ("job_prune", "queued"): 3,
        ("stale_session_cleanup", "failed"): 2,
        ("job_prune", "completed"): 1,
    }
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE state = 'queued' AND attempts = 0") == 3
    audit = await pool.fetchrow("SELECT action, detail FROM _ayb_admin_audit")
    assert audit["action"] == "job.bulk_retry" and '"changed": 3' in audit["detail"]


async def test_bulk_counts_rows_that_do_not_qualify_as_matched_but_not_changed(client, pool) -> None:
    await add_rows(pool, 2, state="failed", error="smtp timeout")
    await add_rows(pool, 1, state="queued", error="smtp timeout")
    await add_rows(pool, 1, state="failed", error="disk full")
    assert await bulk(client, "delete", errorContains="SMTP") == {"matched": 3, "changed": 2, "dryRun": False}
    assert await states(pool) == {("job_prune", "queued"): 1, ("job_prune", "failed"): 1}
    assert await bulk(client, "cancel", errorContains="smtp") == {"matched": 1, "changed": 1, "dryRun": False}


async def test_bulk_by_ids_and_created_before(client, pool) -> None:
    a, b, c = [await enqueue(client) for _ in range(3)]
    assert await bulk(client, "cancel", ids=[a["id"], b["id"]]) == {
        "matched": 2,
        "changed": 2,
        "dryRun": False,
    }
    future = "2999-01-01T00:00:00Z"
    assert await bulk(client, "cancel", True, createdBefore=future) == {
        "matched": 3,
        "changed": 1,
        "dryRun": True,
    }
    assert (await client.get(f"{JOBS}/{c['id']}")).json()["state"] == "queued"


async def test_bulk_over_ten_thousand_matches_is_400_and_changes_nothing(client, pool) -> None:
    await add_rows(pool, 10_001, state="failed")
    response = await client.post(f"{JOBS}/bulk", json={"action": "delete", "filter": {"state": "failed"}})
    assert_envelope(response, 400, "matches more than 10,000 jobs; narrow it")
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs") == 10_001
    await pool.execute("DELETE FROM _ayb_jobs WHERE id = (SELECT id FROM _ayb_jobs LIMIT 1)")
    assert await bulk(client, "delete", state="failed") == {
        "matched": 10_000,
        "changed": 10_000,
        "dryRun": False,
    }


BAD_BULK = [
    ({"action": "explode", "filter": {"state": "failed"}}, "action must be one of retry, cancel, delete"),
    ({"action": "retry", "filter": {}}, "filter must set at least one of"),
    ({"action": "retry"}, "field 'filter' is required"),
    ({"action": "retry", "filter": {"state": "broken"}}, "filter.state must be one of"),
    ({"action": "retry", "filter": {"ids": ["x"]}}, "must be a UUID"),
    ({"action": "retry", "filter": {"colour": "red"}}, "colour"),
    ({"action": "retry", "filter": {"state": "failed"}, "dryRun": "yes"}, "dryRun"),
]


async def test_bulk_bad_bodies_are_400_naming_the_problem(client) -> None:
    for body, expected in BAD_BULK:
        assert_envelope(await client.post(f"{JOBS}/bulk", json=body), 400, expected)


async def test_openapi_documents_the_new_routes_and_fields(client) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    assert {"200", "201", "409"} <= set(schema["paths"]["/api/admin/jobs"]["post"]["responses"])
    assert {"204", "404", "409"} <= set(schema["paths"]["/api/admin/jobs/{job_id}"]["delete"]["responses"])
    assert "/api/admin/jobs/bulk" in schema["paths"]
    components = schema["components"]["schemas"]
    assert "uniqueKey" in components["EnqueueJob"]["properties"]
    assert {"result", "snoozes", "uniqueKey", "cancelRequestedAt"} <= set(components["JobOut"]["properties"])
    assert components["BulkAction"]["properties"]["action"]["enum"] == ["retry", "cancel", "delete"]


# --- cancel of a running job ----------------------------------------------------------------------------


async def test_cancel_of_a_running_job_is_202_with_the_request_time_and_a_finished_one_409(
    client, pool
) -> None:
    job = await enqueue(client)
    await pool.execute(
        "UPDATE _ayb_jobs SET state = 'running', worker_id = 'w', attempts = 1 WHERE id = $1",
        uuid.UUID(job["id"]),
    )
    response = await client.post(f"{JOBS}/{job['id']}/cancel")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "running" and body["cancelRequestedAt"].endswith("Z")
    await pool.execute("UPDATE _ayb_jobs SET state = 'completed' WHERE id = $1", uuid.UUID(job["id"]))
    assert_envelope(
        await client.post(f"{JOBS}/{job['id']}/cancel"),
        409,
        "is completed: only queued or running jobs can be canceled",
    )


async def test_bulk_cancel_cancels_queued_jobs_and_requests_running_ones(client, pool) -> None:
    await add_rows(pool, 2, state="queued")
    await add_rows(pool, 1, state="running")
    await add_rows(pool, 1, state="completed")
    assert await bulk(client, "cancel", type="job_prune") == {"matched": 4, "changed": 3, "dryRun": False}
    assert await states(pool) == {
        ("job_prune", "canceled"): 2,
        ("job_prune", "running"): 1,
        ("job_prune", "completed"): 1,
    }
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE cancel_requested_at IS NOT NULL") == 1
