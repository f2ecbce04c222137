"""Defects found by a hostile-client run: HEAD, `/`, duplicate Authorization, integral floats,
runAt range, cron preview at the calendar's ends, -infinity rows, shared queue counts."""

from __future__ import annotations

import asyncio

import pytest
from tests_api_helpers import AUTH, assert_envelope

pytestmark = pytest.mark.asyncio


# --- HEAD and / ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/api/openapi.json",
                                  "/api/admin/jobs/stats", "/api/admin/schedules"])
async def test_head_on_a_get_route_answers_like_get_without_a_body(client, path) -> None:
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


async def test_head_on_a_post_only_route_is_405_with_allow(client) -> None:
    response = await client.head("/api/admin/jobs/00000000-0000-0000-0000-000000000000/retry")
    assert response.status_code == 405 and "POST" in response.headers["allow"]


async def test_root_redirects_to_the_dashboard(client) -> None:
    response = await client.get("/")
    assert response.status_code == 302 and response.headers["location"] == "/admin/"


# --- Authorization -----------------------------------------------------------------------------------


async def test_two_authorization_headers_are_rejected_as_400(make_client, service) -> None:
    async with make_client(service, auth=False) as client:
        headers = [("authorization", AUTH["Authorization"]), ("authorization", "Bearer other-token-xx")]
        response = await client.get("/api/admin/jobs/stats", headers=headers)
        assert_envelope(response, 400, "more than one Authorization header")
        # ...in either order: neither the first nor the last silently wins.
        response = await client.get("/api/admin/jobs/stats", headers=headers[::-1])
        assert_envelope(response, 400, "more than one Authorization header")
        assert (await client.get("/api/admin/jobs/stats", headers=headers[:1])).status_code == 200


# --- integers ----------------------------------------------------------------------------------------


async def test_an_integral_float_is_an_integer_as_the_schema_says(client) -> None:
    response = await client.post("/api/admin/jobs", json={"type": "job_prune", "maxAttempts": 78.0})
    assert response.status_code == 201, response.text
    assert response.json()["maxAttempts"] == 78
    schema = (await client.get("/api/openapi.json")).json()["components"]["schemas"]["EnqueueJob"]
    assert "3.0 counts as 3" in str(schema["properties"]["maxAttempts"])


@pytest.mark.parametrize("value", [78.5, True, "78", 1e300])
async def test_non_integral_numbers_stay_rejected(client, value) -> None:
    response = await client.post("/api/admin/jobs", json={"type": "job_prune", "maxAttempts": value})
    assert_envelope(response, 400, "field 'maxAttempts'")


# --- runAt range -------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_at", ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-06-01T00:00:00Z",
                                    "9999-12-31T23:59:59.999999Z"])
async def test_run_at_outside_1970_to_9999_is_400_and_nothing_is_written(client, pool, run_at) -> None:
    response = await client.post("/api/admin/jobs", json={"type": "job_prune", "runAt": run_at})
    assert_envelope(response, 400, "field 'runAt': must be between 1970")
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs") == 0


async def test_run_at_at_the_edges_of_the_range_is_stored_and_listed(client) -> None:
    for run_at in ("1970-01-01T00:00:00Z", "9998-12-31T23:59:00Z"):
        response = await client.post("/api/admin/jobs", json={"type": "job_prune", "runAt": run_at})
        assert response.status_code == 201 and response.json()["runAt"] == run_at
    assert (await client.get("/api/admin/jobs")).status_code == 200


# asyncpg returns the infinity sentinels as naive datetime.min / datetime.max; models.iso() reads a
# naive time as UTC (as local time, -infinity overflowed: "year 0 is out of range").
@pytest.mark.parametrize("stored", ["-infinity", "infinity"])
async def test_a_row_holding_infinity_does_not_break_the_job_list(client, pool, stored) -> None:
    await pool.execute(f"INSERT INTO _ayb_jobs (type, run_at) VALUES ('job_prune', '{stored}')")
    response = await client.get("/api/admin/jobs")
    assert response.status_code == 200, response.text


# --- cron preview at the calendar's ends -------------------------------------------------------------


async def test_preview_near_year_9999_returns_the_times_that_exist(client) -> None:
    response = await client.get("/api/admin/cron/preview",
                                params={"expr": "* * * * *", "after": "9999-12-31T23:50:00Z", "count": 50})
    assert response.status_code == 200, response.text
    times = response.json()["times"]
    assert times[0] == "9999-12-31T23:51:00Z" and times[-1] == "9999-12-31T23:59:00Z" and len(times) == 9


async def test_preview_of_feb_29_near_year_9999_lists_the_leap_days_left(client) -> None:
    response = await client.get("/api/admin/cron/preview",
                                params={"expr": "0 0 29 2 *", "after": "9990-01-01T00:00:00Z"})
    assert response.status_code == 200, response.text
    assert response.json()["times"] == ["9992-02-29T00:00:00Z", "9996-02-29T00:00:00Z"]


@pytest.mark.parametrize("params", [
    {"expr": "* * * * *", "after": "0001-01-01T00:00:00Z", "timezone": "America/New_York"},
    {"expr": "0 0 1 1 *", "after": "9999-06-01T00:00:00Z"},
    {"expr": "0 0 1 1 *", "after": "9999-12-31T00:00:00Z", "timezone": "Pacific/Kiritimati"},
])
async def test_preview_with_no_representable_time_is_400_with_the_reason(client, params) -> None:
    response = await client.get("/api/admin/cron/preview", params=params)
    assert_envelope(response, 400, "outside the years 1-9999")


# --- shared queue counts -----------------------------------------------------------------------------


async def test_concurrent_stats_and_scrapes_share_database_reads(client) -> None:
    app = client._transport.app  # the ASGI app behind the test client
    before = app.state.stats.reads
    answers = await asyncio.gather(*(client.get(p) for p in ["/metrics", "/api/admin/jobs/stats"] * 25))
    assert all(a.status_code == 200 for a in answers)
    assert app.state.stats.reads - before <= 3, "50 requests should share a few reads, not make 50"


async def test_scrapes_within_the_max_age_reuse_one_read(client) -> None:
    app = client._transport.app
    for _ in range(5):
        assert (await client.get("/metrics")).status_code == 200
    assert app.state.stats.reads == 1


async def test_stats_after_a_change_are_fresh(client) -> None:
    assert (await client.get("/api/admin/jobs/stats")).json()["queued"] == 0
    assert (await client.post("/api/admin/jobs", json={"type": "job_prune"})).status_code == 201
    assert (await client.get("/api/admin/jobs/stats")).json()["queued"] == 1
