"""The audit log: every mutating admin route writes exactly one row, in the transaction of its change,
naming the token's fingerprint (never the token); failed or rolled-back changes leave none."""

from __future__ import annotations

import hashlib
import json
import uuid

import httpx
import pytest
from tests_api_helpers import AUTH, TOKEN, assert_envelope

from ayb_jobs.api.app import create_app
from ayb_jobs.audit import AuditAction

pytestmark = pytest.mark.asyncio
FINGERPRINT = hashlib.sha256(TOKEN.encode()).hexdigest()[:12]


async def audit_rows(pool) -> list[dict]:
    rows = await pool.fetch("SELECT * FROM _ayb_admin_audit ORDER BY id")
    return [dict(r) for r in rows]


async def one_new_row(pool, before: int, action: str, target: str) -> dict:
    rows = (await audit_rows(pool))[before:]
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["action"], row["target"], row["actor"]) == (action, target, FINGERPRINT)
    assert row["remote_addr"] == "127.0.0.1"  # the ASGI client address httpx's transport gives
    assert TOKEN not in json.dumps({k: str(v) for k, v in row.items()})
    return row


async def enqueue(client, **body) -> dict:
    response = await client.post("/api/admin/jobs", json={"type": "job_prune", **body})
    assert response.status_code == 201, response.text
    return response.json()


async def create_schedule(client, name: str = "nightly") -> dict:
    response = await client.post("/api/admin/schedules",
                                 json={"name": name, "jobType": "job_prune", "cronExpr": "0 3 * * *"})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def lenient_client(service, metrics, readiness):
    """A client that gets the 500 answer instead of the re-raised server error."""
    app = create_app(service, token=TOKEN, jobs_enabled=True, metrics=metrics, readiness=readiness)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as c:
        yield c


async def test_every_mutating_job_route_writes_one_row_with_the_token_fingerprint(client, pool) -> None:
    job = await enqueue(client, idempotencyKey="k1", payload={"completed_retention_hours": 2})
    row = await one_new_row(pool, 0, "job.enqueue", job["id"])
    # No payload: it may hold secrets.
    assert json.loads(row["detail"]) == {"type": "job_prune", "runAt": job["runAt"], "maxAttempts": 3,
                                         "queue": "default", "priority": 0, "idempotencyKey": "k1"}

    assert (await client.post(f"/api/admin/jobs/{job['id']}/cancel")).status_code == 200
    await one_new_row(pool, 1, "job.cancel", job["id"])
    assert (await client.post(f"/api/admin/jobs/{job['id']}/retry")).status_code == 200
    await one_new_row(pool, 2, "job.retry", job["id"])


async def test_every_mutating_schedule_route_writes_one_row(client, pool) -> None:
    schedule = await create_schedule(client)
    sid = schedule["id"]
    await one_new_row(pool, 0, "schedule.create", sid)
    steps = [
        ("PUT", f"/api/admin/schedules/{sid}", {"cronExpr": "0 4 * * *"}, "schedule.update"),
        ("POST", f"/api/admin/schedules/{sid}/disable", None, "schedule.disable"),
        ("POST", f"/api/admin/schedules/{sid}/enable", None, "schedule.enable"),
        ("POST", f"/api/admin/schedules/{sid}/trigger", None, "schedule.trigger"),
        ("DELETE", f"/api/admin/schedules/{sid}", None, "schedule.delete"),
    ]
    for n, (method, path, body, action) in enumerate(steps, start=1):
        response = await client.request(method, path, json=body)
        assert response.status_code < 300, response.text
        row = await one_new_row(pool, n, action, sid)
    assert json.loads(row["detail"]) == {"name": "nightly"}


async def test_failed_changes_leave_no_row(client, pool) -> None:
    job = await enqueue(client, idempotencyKey="dup")
    await create_schedule(client, "taken")
    before = len(await audit_rows(pool))

    assert (await client.post("/api/admin/jobs", json={"type": "job_prune", "idempotencyKey": "dup"})
            ).status_code == 409
    assert (await client.post(f"/api/admin/jobs/{job['id']}/retry")).status_code == 409  # still queued
    await pool.execute("UPDATE _ayb_jobs SET state = 'completed' WHERE id = $1", uuid.UUID(job["id"]))
    assert (await client.post(f"/api/admin/jobs/{job['id']}/cancel")).status_code == 409
    assert (await client.post("/api/admin/schedules",
                              json={"name": "taken", "jobType": "job_prune", "cronExpr": "* * * * *"})
            ).status_code == 409
    missing = uuid.uuid4()
    for method, path in (("DELETE", f"/api/admin/schedules/{missing}"),
                         ("POST", f"/api/admin/schedules/{missing}/trigger"),
                         ("POST", f"/api/admin/schedules/{missing}/enable"),
                         ("POST", f"/api/admin/jobs/{missing}/cancel")):
        assert (await client.request(method, path)).status_code == 404
    assert len(await audit_rows(pool)) == before


async def test_a_change_whose_audit_row_cannot_be_written_is_rolled_back(lenient_client, pool) -> None:
    """Same transaction: when the audit insert fails, the change it records does not happen either."""
    client = lenient_client
    job = await enqueue(client)
    await pool.execute("ALTER TABLE _ayb_admin_audit ADD CONSTRAINT refuse_cancel "
                       "CHECK (action <> 'job.cancel')")
    response = await client.post(f"/api/admin/jobs/{job['id']}/cancel")
    assert response.status_code == 500
    assert await pool.fetchval("SELECT state FROM _ayb_jobs WHERE id = $1", uuid.UUID(job["id"])) == "queued"
    assert [r["action"] for r in await audit_rows(pool)] == ["job.enqueue"]


async def test_audit_lists_newest_first_with_filters_and_paging(client, pool) -> None:
    first = await enqueue(client)
    second = await enqueue(client)
    await client.post(f"/api/admin/jobs/{first['id']}/cancel")

    body = (await client.get("/api/admin/audit")).json()
    assert [(i["action"], i["target"]) for i in body["items"]] == [
        ("job.cancel", first["id"]), ("job.enqueue", second["id"]), ("job.enqueue", first["id"])]
    assert body["count"] == 3 and body["total"] == 3
    item = body["items"][0]
    assert item["actor"] == FINGERPRINT and item["at"].endswith("Z") and item["remoteAddr"] == "127.0.0.1"

    page = (await client.get("/api/admin/audit", params={"action": "job.enqueue", "limit": 1, "offset": 1})
            ).json()
    assert [i["target"] for i in page["items"]] == [first["id"]] and page["total"] == 2

    assert_envelope(await client.get("/api/admin/audit", params={"action": "job.explode"}), 400, "action")
    assert_envelope(await client.get("/api/admin/audit", params={"limit": 0}), 400, "limit")


async def test_every_audit_action_is_a_documented_filter(client) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    [param] = [p for p in schema["paths"]["/api/admin/audit"]["get"]["parameters"] if p["name"] == "action"]
    assert "#/components/schemas/AuditAction" in json.dumps(param)
    assert schema["components"]["schemas"]["AuditAction"]["enum"] == [str(a) for a in AuditAction]


async def test_a_change_made_outside_a_request_is_recorded_without_an_actor(service, pool) -> None:
    job = await service.enqueue("job_prune")
    [row] = await audit_rows(pool)
    assert (row["action"], row["target"], row["actor"], row["remote_addr"]) == (
        "job.enqueue", str(job.id), None, None)
