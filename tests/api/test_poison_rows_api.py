"""A job whose stored payload Python cannot load is listed and shown (with payloadError), not a 500."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio

UNREADABLE = ['{"n": 1e5000}', '{"a": ' * 3000 + "1" + "}" * 3000, '"text"']


@pytest.mark.parametrize("stored", UNREADABLE, ids=["huge_number", "deep", "string"])
async def test_an_unreadable_payload_is_listed_and_shown_with_the_reason(client, pool, stored) -> None:
    job_id = await pool.fetchval("INSERT INTO _ayb_jobs (type, payload) VALUES ('job_prune', $1::jsonb) "
                                 "RETURNING id", stored)
    listed = await client.get("/api/admin/jobs")
    assert listed.status_code == 200, listed.text
    [item] = [i for i in listed.json()["items"] if i["id"] == str(job_id)]
    assert item["payload"] == {} and item["payloadError"].startswith("payload ")
    shown = await client.get(f"/api/admin/jobs/{job_id}")
    assert shown.status_code == 200 and shown.json()["payloadError"] == item["payloadError"]
