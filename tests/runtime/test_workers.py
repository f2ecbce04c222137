"""The presence loop in-process, with its intervals shortened: beats, in_flight, goodbye on a clean
stop, no goodbye when cancelled, long-gone rows forgotten, and `alive` turning false after the window."""

from __future__ import annotations

import asyncio
import time

import pytest

from ayb_jobs.handlers import default_registry
from ayb_jobs.runtime.workers import WorkerPresence
from ayb_jobs.service import JobService


async def poll(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s (last: {value!r})"
        await asyncio.sleep(0.02)


def presence(pool, running: set, **kwargs) -> WorkerPresence:
    return WorkerPresence(pool=pool, worker_id="w-test", types=["job_prune"], concurrency=4,
                          running=lambda: running, queues=["default"], **kwargs)


async def row(pool):
    return await pool.fetchrow("SELECT * FROM _ayb_job_workers WHERE worker_id = 'w-test'")


@pytest.fixture
def running() -> set:
    return set()


async def test_beats_carry_in_flight_and_a_clean_stop_deletes_the_row(pool, running) -> None:
    p = presence(pool, running, beat_s=0.05)
    task = asyncio.create_task(p.run())
    first = await poll(lambda: row(pool), what="first beat")
    assert (first["concurrency"], first["in_flight"], first["types"], first["queues"]) == (
        4, 0, ["job_prune"], ["default"])
    running.update({"job-a", "job-b"})

    async def refreshed():
        r = await row(pool)
        return r if r["in_flight"] == 2 else None

    later = await poll(refreshed, what="in_flight 2")
    assert later["last_seen_at"] > first["last_seen_at"] and later["started_at"] == first["started_at"]
    p.stop.set()
    await asyncio.wait_for(task, 5)
    assert await row(pool) is None


async def test_a_cancelled_loop_leaves_its_row_to_age_out(pool, running) -> None:
    p = presence(pool, running, beat_s=0.05)
    task = asyncio.create_task(p.run())
    await poll(lambda: row(pool), what="first beat")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await row(pool) is not None


async def test_rows_unseen_longer_than_the_forget_window_are_deleted(pool, running) -> None:
    await pool.execute(
        "INSERT INTO _ayb_job_workers (worker_id, host, pid, version, started_at, last_seen_at, concurrency) "
        "VALUES ('old', 'h', 1, 'v', now() - interval '2 hours', now() - interval '61 minutes', 1), "
        "       ('recent', 'h', 2, 'v', now() - interval '2 hours', now() - interval '59 minutes', 1)")
    assert await presence(pool, running).run_once() == 1
    left = {r["worker_id"] for r in await pool.fetch("SELECT worker_id FROM _ayb_job_workers")}
    assert left == {"recent", "w-test"}


async def test_a_worker_that_stops_beating_counts_as_gone_after_the_window(pool, running) -> None:
    service = JobService(pool, default_registry(), worker_gone_after_s=0.5)
    await presence(pool, running).run_once()  # one beat, then silence, as after kill -9
    [listed] = await service.list_workers()
    assert listed.alive

    async def gone():
        [w] = await service.list_workers()
        return not w.alive

    await poll(gone, what="alive false")
