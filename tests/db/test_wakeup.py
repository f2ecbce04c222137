"""Wake-up NOTIFYs outside a caller's transaction: one per window, plus one trailing."""

from __future__ import annotations

import asyncio

import asyncpg

from ayb_jobs.db import queries
from ayb_jobs.models import NewJob
from ayb_jobs.wakeup import NotifyThrottle


async def test_a_burst_of_enqueues_sends_one_notify_now_and_one_trailing(db_url: str) -> None:
    listener = await asyncpg.connect(db_url)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    received: asyncio.Queue[float] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    await listener.add_listener("ayb_jobs", lambda *_: received.put_nowait(loop.time()))
    throttle = NotifyThrottle(window_s=1.0)  # wide, so a slow machine still fits the burst in it
    try:
        for i in range(10):
            now = throttle.take()
            await queries.enqueue_jobs(pool, [NewJob("job_prune", {"n": i})], default_max_attempts=3,
                                       notify=now)
            if not now:
                throttle.trail(pool)
        burst_end = loop.time()
        await throttle.close()
        await listener.fetchval("SELECT 1")  # a round trip delivers every notification already sent
        times = [received.get_nowait() for _ in range(received.qsize())]
        assert len(times) == 2, times
        assert times[0] < burst_end <= times[1]
        assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs") == 10
    finally:
        await pool.close()
        await listener.close()
