"""Per-type policies applied by the executor that runs the job: timeout_s instead of
jobs.job_timeout_s, backoff(attempt) instead of the default delay (a broken one falls back)."""

from __future__ import annotations

import asyncio
from typing import Any

from harness import insert, runtime

from ayb_jobs.handlers import Registry


async def boom(payload: dict[str, Any], _ctx: Any) -> None:
    raise RuntimeError("try later")


async def hang(payload: dict[str, Any], _ctx: Any) -> None:
    await asyncio.sleep(60)


async def test_a_type_timeout_cuts_its_run_while_other_types_keep_the_daemon_default(db_url, pool) -> None:
    registry = Registry()
    registry.add("quick", hang, timeout_s=0.2)
    registry.add("patient", hang)
    quick = await insert(pool, "quick")
    patient = await insert(pool, "patient")
    async with runtime(db_url, pool, registry, job_timeout_s=30) as rt:
        await rt.claim()
        row = await rt.settled(quick, "failed", timeout=10)
        assert row["last_error"] == "timed out after 0.2s"
        assert (await rt.row(patient))["state"] == "running"


async def test_a_type_backoff_sets_the_retry_delay_and_a_broken_one_falls_back(db_url, pool) -> None:
    registry = Registry()
    registry.add("own", boom, backoff=lambda attempt: 3600.0 * attempt)
    registry.add("broken", boom, backoff=lambda attempt: 1 / 0)
    registry.add("plain", boom)
    ids = {name: await insert(pool, name, max_attempts=3) for name in ("own", "broken", "plain")}
    async with runtime(db_url, pool, registry) as rt:
        await rt.claim()
        rows = {name: await rt.settled(job_id, "queued") for name, job_id in ids.items()}
    delays = {name: (r["run_at"] - r["updated_at"]).total_seconds() for name, r in rows.items()}
    assert 3599 < delays["own"] <= 3600.5
    assert 4.5 < delays["broken"] <= 5.5 and 4.5 < delays["plain"] <= 5.5  # 5 s x 2^0, no jitter
