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

import uuid
from typing import Any
from uuid import UUID

import structlog

from ayb_jobs.handlers import JobContext, Registry

__all__ = ["run_handler"]


async def run_handler(registry: Registry, job_type: str, payload: dict[str, Any] | None = None, *,
                      job_id: UUID | None = None, attempt: int = 1, max_attempts: int = 3,
                      worker_id: str = "test", pool: Any = None, log: Any = None) -> Any:
    """Run the handler registered for `job_type` once and return its result.

    The keyword arguments fill the JobContext the handler receives (`ctx.pool` is None unless a
    pool is given). An unregistered type raises UnknownJobType naming the registered ones.
    """
    handler = registry.require(job_type).handler
    job_id = job_id or uuid.uuid4()
    ctx = JobContext(job_id, job_type, attempt, max_attempts, worker_id, pool,
                     log or structlog.get_logger("ayb_jobs.testing").bind(job_id=str(job_id), job_type=job_type))
    return await handler(payload or {}, ctx)
