"""One job runtime in-process (pool, outcome writer, executor, and on request the heartbeat) whose
database connections go through a PgProxy, so a test can take *its* database away while the test
itself keeps reading the job rows directly."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from netfault import PgProxy

from ayb_jobs.db import queries
from ayb_jobs.db.pool import create_pool
from ayb_jobs.handlers import Registry
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.dbwatch import DatabaseWatch
from ayb_jobs.runtime.executor import Executor
from ayb_jobs.runtime.heartbeat import Heartbeat
from ayb_jobs.runtime.outcomes import OutcomeWriter

T = TypeVar("T")
WORKER = "w-rel-test"


async def poll(check: Callable[[], Awaitable[T]], timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s (last: {value!r})"
        await asyncio.sleep(0.02)


@dataclass
class Runtime:
    proxy: PgProxy
    pool: asyncpg.Pool
    watch: DatabaseWatch
    writer: OutcomeWriter
    executor: Executor
    metrics: Metrics
    direct: asyncpg.Pool  # the test's own connections, not through the proxy
    lease_s: float
    heartbeat: Heartbeat

    async def claim(self, limit: int = 10) -> list[Any]:
        sent = time.monotonic()
        jobs = await queries.claim_jobs(self.pool, limit=limit, lease_s=self.lease_s, worker_id=WORKER)
        self.executor.start(jobs, claim_sent=sent)
        return jobs

    def counted(self, counter: str, job_type: str) -> int:
        return self.metrics._jobs[counter][job_type]

    async def row(self, job_id: UUID) -> asyncpg.Record:
        return await self.direct.fetchrow("SELECT * FROM _ayb_jobs WHERE id = $1", job_id)

    async def settled(self, job_id: UUID, *states: str, timeout: float = 15.0) -> asyncpg.Record:
        async def check() -> asyncpg.Record | None:
            r = await self.row(job_id)
            return r if r["state"] in states else None
        return await poll(check, timeout, f"job {job_id} in {states}")


async def insert(direct: asyncpg.Pool, job_type: str, *, max_attempts: int = 1,
                 payload: str = "{}") -> UUID:
    return await direct.fetchval("INSERT INTO _ayb_jobs (type, payload, max_attempts) "
                                 "VALUES ($1, $2::jsonb, $3) RETURNING id", job_type, payload, max_attempts)


@contextlib.asynccontextmanager
async def runtime(db_url: str, direct: asyncpg.Pool, registry: Registry, *, concurrency: int = 4,
                  lease_s: float = 30.0, job_timeout_s: float = 30.0, heartbeat: bool = False,
                  write_timeout_s: float = 10.0) -> AsyncIterator[Runtime]:
    proxy, proxied = await PgProxy.start_for(db_url)
    watch = DatabaseWatch(probe_timeout_s=1.0)
    pool = await create_pool(proxied, max_size=4, connect_timeout=2.0, init=watch.track)
    await watch.prime(pool)
    metrics = Metrics()
    writer = OutcomeWriter(pool, WORKER, write_timeout_s=write_timeout_s,
                           on_db_error=lambda: metrics.db_error("outcomes"))
    executor = Executor(pool=pool, registry=registry, writer=writer, metrics=metrics, worker_id=WORKER,
                        concurrency=concurrency, job_timeout_s=job_timeout_s, rand=lambda: 0.0,
                        watch=watch, lease_s=lease_s)
    beat = Heartbeat(pool=pool, executor=executor, metrics=metrics, lease_s=lease_s)
    tasks = [asyncio.create_task(writer.run())]
    if heartbeat:
        tasks.append(asyncio.create_task(beat.run()))
    rt = Runtime(proxy, pool, watch, writer, executor, metrics, direct, lease_s, beat)
    try:
        yield rt
    finally:
        executor.stop_all("shutdown")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(executor.idle.wait(), 5)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        pool.terminate()
        await proxy.close()
