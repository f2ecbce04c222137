"""A row whose payload Python cannot load (written by plain SQL) fails alone, with the reason as its
last error; the jobs claimed in the same statement run normally."""

from __future__ import annotations

from typing import Any

from harness import insert, runtime

from ayb_jobs.handlers import Registry

HUGE_NUMBER = '{"n": 1e5000}'
DEEP = '{"a": ' * 3000 + "1" + "}" * 3000


async def test_an_undecodable_payload_fails_alone_and_its_batch_runs(db_url: str, pool) -> None:
    ran: list[Any] = []

    async def record(payload: dict[str, Any], _ctx: Any) -> None:
        ran.append(payload)

    registry = Registry()
    registry.add("work", record)
    good = [await insert(pool, "work", payload=f'{{"i": {i}}}', max_attempts=3) for i in range(2)]
    poison = {name: await insert(pool, "work", payload=text, max_attempts=3)
              for name, text in [("huge", HUGE_NUMBER), ("deep", DEEP), ("array", "[1, 2]")]}
    async with runtime(db_url, pool, registry) as rt:
        claimed = await rt.claim(limit=10)
        assert len(claimed) == 5  # one claim statement held all of them
        for job_id in good:
            assert (await rt.settled(job_id, "completed", "failed", "queued"))["state"] == "completed"
        rows = {name: await rt.settled(job_id, "failed", "queued") for name, job_id in poison.items()}
    assert sorted(p["i"] for p in ran) == [0, 1]
    for name, row in rows.items():
        assert (row["state"], row["attempts"]) == ("failed", 1), (name, dict(row))
    assert rows["huge"]["last_error"].startswith("payload cannot be decoded: ValueError: Exceeds the limit")
    assert rows["deep"]["last_error"].startswith("payload cannot be decoded: RecursionError")
    assert rows["array"]["last_error"] == "payload is a JSON array, not an object; the job cannot run"
