"""Admin API schedule and cron-preview routes: success shapes and every listed error."""

from __future__ import annotations

import uuid

import pytest
from tests_api_helpers import assert_envelope

pytestmark = pytest.mark.asyncio


async def create(client, **body) -> dict:
    fields = {"name": f"s_{uuid.uuid4().hex[:8]}", "jobType": "job_prune", "cronExpr": "*/10 * * * *", **body}
    response = await client.post("/api/admin/schedules", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_defaults_and_shape(client) -> None:
    s = await create(client, payload={"failed_retention_hours": 2}, timezone="")
    assert s["timezone"] == "UTC" and s["enabled"] is True and s["maxAttempts"] == 3
    assert s["payload"] == {"failed_retention_hours": 2} and s["nextRunAt"].endswith("Z")
    assert "lastRunAt" not in s
    disabled = await create(client, enabled=False, timezone="Asia/Tokyo", maxAttempts=5)
    assert disabled["enabled"] is False and "nextRunAt" not in disabled and disabled["maxAttempts"] == 5


async def test_duplicate_name_is_409_with_message(client) -> None:
    s = await create(client)
    response = await client.post(
        "/api/admin/schedules", json={"name": s["name"], "jobType": "job_prune", "cronExpr": "@daily"}
    )
    assert_envelope(response, 409, "a schedule with this name already exists")


BAD_CREATES = [
    ({"cronExpr": "0 0 31 2 *"}, "it can never fire"),
    ({"cronExpr": "* * * * * *"}, "cron"),
    ({"cronExpr": "@reboot"}, "@reboot"),
    ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
    ({"jobType": "nope"}, "unknown job type 'nope'; registered:"),
    ({"name": "has space"}, "name"),
    ({"enabled": "yes"}, "field 'enabled'"),
    ({"enabled": 1}, "field 'enabled'"),
    ({"maxAttempts": True}, "field 'maxAttempts'"),
    ({"extra": 1}, "unknown field 'extra'"),
]


async def test_create_invalid_is_400_with_field_and_reason(client) -> None:
    before = (await client.get("/api/admin/schedules")).json()["count"]
    for body, expected in BAD_CREATES:
        fields = {"name": f"s_{uuid.uuid4().hex[:8]}", "jobType": "job_prune", "cronExpr": "@daily", **body}
        assert_envelope(await client.post("/api/admin/schedules", json=fields), 400, expected)
    assert (await client.get("/api/admin/schedules")).json()["count"] == before


async def test_get_and_list(client) -> None:
    s = await create(client)
    assert (await client.get(f"/api/admin/schedules/{s['id']}")).json() == s
    listed = (await client.get("/api/admin/schedules")).json()
    assert s["id"] in [i["id"] for i in listed["items"]] and listed["count"] == len(listed["items"])
    assert_envelope(await client.get(f"/api/admin/schedules/{uuid.uuid4()}"), 404, "not found")
    assert_envelope(await client.get("/api/admin/schedules/x"), 400, "invalid schedule id 'x'")


async def test_update_writes_only_given_fields(client) -> None:
    s = await create(client, payload={"a": 1})
    response = await client.put(
        f"/api/admin/schedules/{s['id']}", json={"cronExpr": "@hourly", "maxAttempts": 9}
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (
        updated["cronExpr"] == "0 * * * *" and updated["maxAttempts"] == 9 and updated["payload"] == {"a": 1}
    )
    paused = (await client.put(f"/api/admin/schedules/{s['id']}", json={"enabled": False})).json()
    assert paused["enabled"] is False and "nextRunAt" not in paused


async def test_update_errors(client) -> None:
    s = await create(client)
    assert_envelope(
        await client.put(f"/api/admin/schedules/{s['id']}", json={"cronExpr": "61 * * * *"}), 400, "minute"
    )
    assert_envelope(
        await client.put(f"/api/admin/schedules/{s['id']}", json={"name": "rename"}),
        400,
        "unknown field 'name'",
    )
    assert_envelope(await client.put(f"/api/admin/schedules/{uuid.uuid4()}", json={"enabled": True}), 404, "")
    assert_envelope(await client.put("/api/admin/schedules/zzz", json={}), 400, "must be a UUID")


async def test_enable_disable(client) -> None:
    s = await create(client, enabled=False)
    enabled = (await client.post(f"/api/admin/schedules/{s['id']}/enable")).json()
    assert enabled["enabled"] is True and "nextRunAt" in enabled
    disabled = await client.post(f"/api/admin/schedules/{s['id']}/disable")
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    for action in ("enable", "disable", "trigger"):
        assert_envelope(await client.post(f"/api/admin/schedules/{uuid.uuid4()}/{action}"), 404, "")
        assert_envelope(await client.post(f"/api/admin/schedules/nope/{action}"), 400, "must be a UUID")


async def test_trigger_enqueues_one_job_and_leaves_schedule_times(client) -> None:
    s = await create(client, payload={"completed_retention_hours": 3}, maxAttempts=2)
    response = await client.post(f"/api/admin/schedules/{s['id']}/trigger")
    assert response.status_code == 201
    job = response.json()
    assert job["scheduleId"] == s["id"] and job["type"] == "job_prune" and job["maxAttempts"] == 2
    assert job["payload"] == {"completed_retention_hours": 3}
    after = (await client.get(f"/api/admin/schedules/{s['id']}")).json()
    assert after.get("nextRunAt") == s.get("nextRunAt") and "lastRunAt" not in after


async def test_delete_204_then_404(client) -> None:
    s = await create(client)
    response = await client.delete(f"/api/admin/schedules/{s['id']}")
    assert response.status_code == 204 and response.content == b""
    assert_envelope(await client.delete(f"/api/admin/schedules/{s['id']}"), 404, "")
    assert_envelope(await client.delete("/api/admin/schedules/1"), 400, "must be a UUID")


async def test_cron_preview(client) -> None:
    params = {
        "expr": "30 2 * * *",
        "timezone": "America/New_York",
        "count": 2,
        "after": "2026-03-07T12:00:00Z",
    }
    response = await client.get("/api/admin/cron/preview", params=params)
    assert response.status_code == 200, response.text
    # 02:30 does not exist on 2026-03-08: the run happens at 03:00 EDT (07:00Z), once.
    assert response.json() == {"times": ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]}
    default = (await client.get("/api/admin/cron/preview", params={"expr": "@hourly"})).json()
    assert len(default["times"]) == 5


BAD_PREVIEWS = [
    ({"expr": "0 0 31 2 *"}, "it can never fire"),
    ({"expr": "@daily", "timezone": "Local"}, "Local"),
    ({"expr": "@daily", "count": 51}, "query parameter 'count'"),
    ({"expr": "@daily", "after": "yesterday"}, "query parameter 'after'"),
    ({"expr": "@daily", "after": "2026-01-01T00:00:00"}, "timezone"),
    ({}, "query parameter 'expr' is required"),
]


async def test_cron_preview_errors(client) -> None:
    for params, expected in BAD_PREVIEWS:
        assert_envelope(await client.get("/api/admin/cron/preview", params=params), 400, expected)


async def test_policies_round_trip_and_are_validated(client) -> None:
    s = await create(client)
    assert (s["overlap"], s["misfire"], s["misfireMax"]) == ("allow", "coalesce", 10)
    s = await create(client, overlap="skip", misfire="all", misfireMax=4)
    assert (s["overlap"], s["misfire"], s["misfireMax"]) == ("skip", "all", 4)
    response = await client.put(f"/api/admin/schedules/{s['id']}", json={"misfire": "skip"})
    assert response.status_code == 200 and response.json()["misfire"] == "skip"
    assert response.json()["misfireMax"] == 4
    for body, expected in (({"overlap": "never"}, "field 'overlap'"), ({"misfire": 3}, "field 'misfire'"),
                           ({"misfireMax": 0}, "field 'misfireMax'"),
                           ({"misfireMax": 101}, "field 'misfireMax'")):
        assert_envelope(await client.put(f"/api/admin/schedules/{s['id']}", json=body), 400, expected)


async def test_history_lists_decisions_newest_first_with_job_state(client, pool) -> None:
    s = await create(client)
    job = (await client.post(f"/api/admin/schedules/{s['id']}/trigger")).json()
    await pool.execute(
        "INSERT INTO _ayb_job_schedule_fires (schedule_id, slot_at, decided_at, job_id, outcome) VALUES "
        "($1, '2030-01-01T00:00Z', '2030-01-01T00:00:01Z', $2, 'enqueued'), "
        "($1, '2030-01-01T00:10Z', '2030-01-01T00:10:01Z', NULL, 'skipped_overlap')",
        uuid.UUID(s["id"]), uuid.UUID(job["id"]))
    response = await client.get(f"/api/admin/schedules/{s['id']}/history")
    assert response.status_code == 200
    assert response.json()["items"] == [
        {"slotAt": "2030-01-01T00:10:00Z", "decidedAt": "2030-01-01T00:10:01Z", "outcome": "skipped_overlap",
         "jobId": None, "jobState": None},
        {"slotAt": "2030-01-01T00:00:00Z", "decidedAt": "2030-01-01T00:00:01Z", "outcome": "enqueued",
         "jobId": job["id"], "jobState": "queued"},
    ]
    assert (await client.get(f"/api/admin/schedules/{s['id']}/history?limit=1")).json()["items"][0][
        "outcome"] == "skipped_overlap"
    assert_envelope(await client.get(f"/api/admin/schedules/{uuid.uuid4()}/history"), 404, "not found")
    assert_envelope(await client.get(f"/api/admin/schedules/{s['id']}/history?limit=0"), 400, "limit")
