"""Wake-up NOTIFYs outside a caller's transaction: at once after a quiet window, coalesced in a burst."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from ayb_jobs import Client, DuplicateJob
from ayb_jobs.db import queries
from ayb_jobs.models import NewJob
from ayb_jobs.wakeup import NotifyThrottle

TYPE_FOR_CLIENT = "test.job"


class Notifications:
    """Counts `ayb_jobs` notifications on a listening connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.times: list[float] = []

    async def start(self) -> Notifications:
        loop = asyncio.get_running_loop()
        await self.conn.add_listener("ayb_jobs", lambda *_: self.times.append(loop.time()))
        return self

    async def received(self) -> int:
        await self.conn.fetchval("SELECT 1")  # a round trip delivers every notification already sent
        return len(self.times)


async def enqueue(pool: Any, throttle: NotifyThrottle, i: int) -> None:
    """What Client.enqueue does outside a caller's transaction."""
    now = throttle.take()
    await queries.enqueue_jobs(pool, [NewJob("job_prune", {"n": i})], default_max_attempts=3, notify=now)
    if not now:
        throttle.trail(pool)


async def test_enqueues_a_window_apart_each_carry_their_own_notify(db_url: str, pool: asyncpg.Pool,
                                                                    connect) -> None:
    # 100 jobs/s: 10 ms apart, far beyond the window, so each one wakes the daemons at once
    # (a 100 ms throttle made the second and third wait for a trailing NOTIFY).
    listener = await Notifications(await connect()).start()
    clock = [1000.0]
    throttle = NotifyThrottle(clock=lambda: clock[0])
    for i in range(3):
        await enqueue(pool, throttle, i)
        assert await listener.received() == i + 1
        clock[0] += 0.010
    await throttle.close()
    assert await listener.received() == 3  # and no trailing one


async def test_a_burst_sends_one_notify_now_and_one_trailing_after_it(db_url: str, pool: asyncpg.Pool,
                                                                       connect) -> None:
    listener = await Notifications(await connect()).start()
    throttle = NotifyThrottle(window_s=3.0)  # wide, so a slow machine still fits the burst in it
    loop = asyncio.get_running_loop()
    await enqueue(pool, throttle, 0)
    await asyncio.gather(*(enqueue(pool, throttle, i) for i in range(1, 10)))
    burst_end = loop.time()
    await throttle.close()
    assert await listener.received() == 2
    assert listener.times[0] < burst_end <= listener.times[1]
    assert await pool.fetchval("SELECT count(*) FROM _ayb_jobs WHERE payload ? 'n'") == 10


class PausingPool:
    """The real pool, with its `execute` (the trailing NOTIFY) held until the test lets it go."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.sending = asyncio.Event()
        self.go = asyncio.Event()
        self.sent = 0

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        self.sending.set()
        await self.go.wait()
        self.sent += 1
        return await self.pool.execute(query, *args, timeout=timeout)


async def test_an_enqueue_committed_while_the_trailing_notify_is_sent_gets_another(
        db_url: str, pool: asyncpg.Pool, connect) -> None:
    # That NOTIFY may commit before the later row does; a poller it wakes would not see the row.
    listener = await Notifications(await connect()).start()
    throttle = NotifyThrottle()
    paused = PausingPool(pool)
    assert throttle.take()
    assert not throttle.take()
    throttle.trail(paused)
    await paused.sending.wait()
    throttle.trail(paused)  # a second suppressed enqueue commits now
    paused.go.set()
    await throttle.close()
    assert paused.sent == 2
    assert await listener.received() == 2


async def test_the_next_enqueues_own_notify_settles_a_pending_trailing_one(db_url: str, pool: asyncpg.Pool,
                                                                           connect) -> None:
    # At a steady rate just above one per window, every other enqueue is suppressed; the one
    # after it carries a NOTIFY anyway, so a separate trailing statement would be a wasted round trip.
    listener = await Notifications(await connect()).start()
    clock = [7.0]
    throttle = NotifyThrottle(clock=lambda: clock[0])
    await enqueue(pool, throttle, 0)           # carries one
    clock[0] += 0.0001
    await enqueue(pool, throttle, 1)           # suppressed: owed one
    clock[0] += 0.003
    await enqueue(pool, throttle, 2)           # past the window: carries one, which covers job 1
    await throttle.close()
    assert await listener.received() == 2


async def test_a_failed_enqueue_does_not_swallow_the_notify_it_stood_in_for(db_url: str, pool: asyncpg.Pool,
                                                                            connect) -> None:
    listener = await Notifications(await connect()).start()
    client = Client(pool=pool)
    clock = [3.0]
    client._throttle = NotifyThrottle(clock=lambda: clock[0])
    await client.enqueue(TYPE_FOR_CLIENT, idempotency_key="once")   # carries one
    clock[0] += 0.0001
    await client.enqueue(TYPE_FOR_CLIENT)                           # suppressed: owed one
    clock[0] += 0.003
    with pytest.raises(DuplicateJob):
        await client.enqueue(TYPE_FOR_CLIENT, idempotency_key="once")  # would have carried it
    clock[0] += 0.003  # the trailing NOTIFY is due
    await client.close()
    assert await listener.received() == 2
