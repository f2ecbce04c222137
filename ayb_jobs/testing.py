"""Helpers for testing handlers in an application's own test suite (plain pytest, no daemon).

    from ayb_jobs.testing import Worker, run_handler

    async def test_receipt_handler_returns_what_it_sent(registry):
        assert await run_handler(registry, "send_receipt", {"order": 42}) == {"sent": 1}

    async def test_enqueued_receipt_runs(pool, registry):
        await Client(pool=pool).enqueue("send_receipt", {"order": 42})
        async with Worker(pool, registry) as worker:
            assert await worker.drain() == {"completed": 1}

`run_handler` calls one handler inline, with a real JobContext, and returns what it returns (or
raises what it raises: `Snooze`, `InvalidPayload`, any error). `Worker.drain` runs the jobs already
in the database through the daemon's own claim, executor and fenced outcome statements, so what it
reports is what the daemon would have done.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import structlog

from ayb_jobs.db import queries
from ayb_jobs.handlers import JobContext, Registry
from ayb_jobs.metrics import Metrics
from ayb_jobs.runtime.executor import Executor
from ayb_jobs.runtime.heartbeat import Heartbeat
from ayb_jobs.runtime.loops import wait_any
from ayb_jobs.runtime.outcomes import OutcomeWriter

__all__ = ["Worker", "run_handler"]


async def run_handler(registry: Registry, job_type: str, payload: dict[str, Any] | None = None, *,
                      job_id: UUID | None = None, attempt: int = 1, max_attempts: int = 3,
                      worker_id: str = "test", pool: Any = None, log: Any = None) -> Any:
    """Run the handler registered for `job_type` once and return its result.

    The keyword arguments fill the JobContext the handler receives (`ctx.pool` is None unless a
    pool is given). An unregistered type raises UnknownJobType naming the registered ones.
    """
    handler = registry.require(job_type).handler
    job_id = job_id or uuid.uuid4()
    log = log or structlog.get_logger("ayb_jobs.testing").bind(job_id=str(job_id), job_type=job_type)
    ctx = JobContext(job_id, job_type, attempt, max_attempts, worker_id, pool, log)
    return await handler(payload or {}, ctx)


class Worker:
    """The daemon's job runtime in-process, over the application's pool: claim, run, record.

    Use it as `async with Worker(pool, registry) as worker: counts = await worker.drain()`.
    Leaving the block stops what is still running the way a daemon's shutdown does (released,
    attempt not counted).
    """

    def __init__(self, pool: Any, registry: Registry, *, concurrency: int = 10, worker_id: str | None = None,
                 lease_s: float = 30.0, job_timeout_s: float = 600.0,
                 rand: Callable[[], float] = random.random) -> None:
        self._pool = pool
        self._lease_s = lease_s
        self.worker_id = worker_id or f"testing-{uuid.uuid4().hex[:8]}"
        self.metrics = Metrics()
        self._writer = OutcomeWriter(pool, self.worker_id)
        self._executor = Executor(pool=pool, registry=registry, writer=self._writer, metrics=self.metrics,
                                  worker_id=self.worker_id, concurrency=concurrency,
                                  job_timeout_s=job_timeout_s, rand=rand, lease_s=lease_s)
        self._heartbeat = Heartbeat(pool=pool, executor=self._executor, metrics=self.metrics, lease_s=lease_s)
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Worker:
        self._tasks = [asyncio.create_task(self._writer.run(), name="testing-outcomes"),
                       asyncio.create_task(self._heartbeat.run(), name="testing-heartbeat")]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._executor.stop_all("shutdown")
        await self._executor.idle.wait()  # every outcome, the releases included, is written
        self._heartbeat.stop.set()
        self._writer.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self) -> dict[str, int]:
        """Run every due job until none is left, and say how each run ended.

        Returns counts of what happened, only those that did: "completed", "retried" (a failed
        attempt queued again after its backoff), "failed", "snoozed", "canceled", "released",
        "lease_lost" — e.g. {"completed": 1}. A job due later (a retry's backoff, a snooze, a
        future run_at) is not waited for.
        """
        before = self.metrics.totals()
        while True:
            self._executor.slot_freed.clear()
            free = self._executor.free_slots()
            sent = time.monotonic()
            jobs = await queries.claim_jobs(self._pool, limit=free, lease_s=self._lease_s,
                                            worker_id=self.worker_id) if free > 0 else []
            if jobs:
                self._executor.start(jobs, claim_sent=sent)
                continue
            if self._executor.idle.is_set():
                break
            await wait_any(self._executor.slot_freed, self._executor.idle, timeout=None)
        after = self.metrics.totals()
        return {name: after[name] - before.get(name, 0) for name in after
                if name != "claimed" and after[name] > before.get(name, 0)}
