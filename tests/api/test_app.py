"""Auth, jobs-disabled, envelope for unknown routes, probes, metrics, OpenAPI."""

from __future__ import annotations

import itertools

import pytest
from tests_api_helpers import TOKEN, assert_envelope

from ayb_jobs.handlers import default_registry
from ayb_jobs.service import JobService

pytestmark = pytest.mark.asyncio

BAD_AUTH = [None, "Bearer wrong-token", "Basic dGVzdA==", "Bearer ", "wrong", f"Bearer {TOKEN}x"]
ADMIN_ROUTES = [
    ("GET", "/api/admin/jobs"),
    ("GET", "/api/admin/jobs/stats"),
    ("GET", "/api/admin/jobs/00000000-0000-0000-0000-000000000000"),
    ("POST", "/api/admin/jobs"),
    ("POST", "/api/admin/jobs/00000000-0000-0000-0000-000000000000/retry"),
    ("GET", "/api/admin/job-types"),
    ("GET", "/api/admin/schedules"),
    ("POST", "/api/admin/schedules"),
    ("PUT", "/api/admin/schedules/00000000-0000-0000-0000-000000000000"),
    ("DELETE", "/api/admin/schedules/00000000-0000-0000-0000-000000000000"),
    ("POST", "/api/admin/schedules/00000000-0000-0000-0000-000000000000/trigger"),
    ("GET", "/api/admin/cron/preview?expr=@daily"),
    ("GET", "/api/admin/no-such-route"),
]


async def test_admin_routes_need_the_token(make_client, service) -> None:
    async with make_client(service, auth=False) as client:
        for header, (method, path) in itertools.product(BAD_AUTH, ADMIN_ROUTES):
            headers = {"Authorization": header} if header else {}
            response = await client.request(method, path, headers=headers, content=b"{not even json")
            body = assert_envelope(response, 401, "admin authentication required")
            assert body == {"code": 401, "message": "admin authentication required"}, (method, path)
        assert (
            await client.get("/api/admin/jobs", headers={"Authorization": f"bearer {TOKEN}"})
        ).status_code == 200
        assert (await client.get("/api/admin/jobs")).status_code == 401


async def test_token_is_checked_before_body_size(make_client) -> None:
    async with make_client(auth=False) as client:
        response = await client.post("/api/admin/jobs", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 401


@pytest.mark.parametrize("with_service", [True, False])
async def test_jobs_disabled_answers_503_after_auth(make_client, pool, with_service) -> None:
    service = JobService(pool, default_registry()) if with_service else None
    async with make_client(service, jobs_enabled=False) as client:
        for method, path in ADMIN_ROUTES[:-1]:
            response = await client.request(method, path, json={})
            assert_envelope(response, 503, "job queue is not enabled; set jobs.enabled = true")
    async with make_client(jobs_enabled=False, auth=False) as client:
        assert (await client.get("/api/admin/jobs")).status_code == 401


async def test_unknown_routes_and_methods_use_the_envelope(client) -> None:
    assert_envelope(await client.get("/nowhere"), 404, "no such route")
    assert_envelope(await client.get("/api/admin/nowhere"), 404, "no such route")
    assert_envelope(await client.patch("/api/admin/jobs"), 405, "method not allowed")


async def test_database_down_is_503(make_client, service, pool) -> None:
    await pool.close()
    async with make_client(service) as client:
        response = await client.get("/api/admin/jobs/stats")
    assert_envelope(response, 503, "database unavailable")


async def test_healthz_and_readyz(make_client, readiness) -> None:
    async with make_client(auth=False) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        readiness.reason = "draining"
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json() == {"code": 503, "message": "draining"}
        assert (await client.get("/healthz")).status_code == 200


async def test_metrics_move_with_the_recorded_events(make_client, service, metrics) -> None:
    async with make_client(service, auth=False) as client:
        await client.post("/api/admin/jobs", json={"type": "job_prune"}, headers={"Authorization": "x"})
        before = (await client.get("/metrics")).text
        assert 'ayb_jobs_completed_total{type="job_prune"}' not in before
        metrics.claimed("job_prune", 2)
        metrics.completed("job_prune", 0.2)
        metrics.schedule_fired('we"ird')
        metrics.set_in_flight(3)
        response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'ayb_jobs_claimed_total{type="job_prune"} 2' in text
    assert 'ayb_jobs_completed_total{type="job_prune"} 1' in text
    assert 'ayb_jobs_job_duration_seconds_bucket{type="job_prune",le="0.25"} 1' in text
    assert 'ayb_jobs_schedule_fires_total{schedule="we\\"ird"} 1' in text
    assert "ayb_jobs_in_flight 3" in text
    assert 'ayb_jobs_queue_depth{state="queued"}' in text


async def test_metrics_still_render_counters_when_the_database_is_down(
    make_client, service, metrics, pool
) -> None:
    metrics.failed("job_prune", 1.0)
    await pool.close()
    async with make_client(service, auth=False) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert 'ayb_jobs_failed_total{type="job_prune"} 1' in response.text
    assert "ayb_jobs_queue_depth{" not in response.text


async def test_openapi_documents_errors_with_the_envelope(make_client) -> None:
    async with make_client(auth=False) as client:
        spec = (await client.get("/api/openapi.json")).json()
    ops = {(m.upper(), p): op for p, item in spec["paths"].items() for m, op in item.items()}
    for (method, path), op in ops.items():
        codes = set(op["responses"])
        assert "422" not in codes, (method, path)
        if path.startswith("/api/admin"):
            assert {"401", "503"} <= codes, (method, path)
            if "{" in path:
                assert {"400", "404"} <= codes, (method, path)
    assert {"400", "409", "413", "201"} <= set(ops[("POST", "/api/admin/jobs")]["responses"])
    assert "204" in ops[("DELETE", "/api/admin/schedules/{schedule_id}")]["responses"]
    assert spec["components"]["schemas"]["EnqueueJob"]["additionalProperties"] is False
