"""The Python API for applications that enqueue jobs.

    client = Client(dsn="postgresql://...")          # or Client(pool=app_pool)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO orders ...")
        await client.enqueue("send_receipt", {"order": 42}, conn=conn)   # exists iff this commits

The client does not know a daemon's handlers: it checks the type's form and leaves "unknown
type" to the daemon (the attempt then fails with the registry's message).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from ayb_jobs.db import queries
from ayb_jobs.errors import DuplicateJob, InvalidInput
from ayb_jobs.handlers import TYPE_NAME
from ayb_jobs.models import MAX_PRIORITY, MIN_PRIORITY, QUEUE_NAME, Job, NewJob
from ayb_jobs.wakeup import NotifyThrottle

__all__ = ["Client", "DuplicateJob", "NewJob"]

DEFAULT_MAX_ATTEMPTS = 3


def check_new_job(job: NewJob) -> None:
    """What the client can check without a daemon: the type's form, the payload, the bounds.

    Runs once per job of every batch, so the common job (a known type, a dict payload, nothing
    else set) takes the short way: a type already seen valid is not matched again."""
    if type(job.type) is not str or job.type not in _VALID_TYPES:
        _check_type(job.type)
    if type(job.payload) is not dict and not isinstance(job.payload, dict):
        raise InvalidInput("payload must be a dict (a JSON object)", field="payload")
    if (job.max_attempts is None and job.run_at is None and job.queue is None and job.priority is None
            and job.idempotency_key is None and job.unique_key is None):
        return
    _check_options(job)


# Type names seen valid; bounded, since a client may enqueue many distinct types over its life.
_VALID_TYPES: set[str] = set()
_VALID_TYPES_MAX = 4096


def _check_type(job_type: object) -> None:
    if not isinstance(job_type, str) or not TYPE_NAME.match(job_type):
        raise InvalidInput(f"invalid job type {job_type!r}: use 1-100 of [A-Za-z0-9_.:-]", field="type")
    if len(_VALID_TYPES) < _VALID_TYPES_MAX:
        _VALID_TYPES.add(job_type)


def _check_options(job: NewJob) -> None:
    if job.max_attempts is not None and not 1 <= job.max_attempts <= 100:
        raise InvalidInput("max_attempts must be between 1 and 100", field="max_attempts")
    if job.run_at is not None and job.run_at.tzinfo is None:
        raise InvalidInput("run_at must be timezone-aware", field="run_at")
    if job.queue is not None and (not isinstance(job.queue, str) or not QUEUE_NAME.match(job.queue)):
        raise InvalidInput(f"invalid queue {job.queue!r}: use 1-100 of [A-Za-z0-9_.:-]", field="queue")
    if job.priority is not None and (type(job.priority) is not int
                                     or not MIN_PRIORITY <= job.priority <= MAX_PRIORITY):
        raise InvalidInput(f"priority must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}",
                           field="priority")
    for name, key in (("idempotency_key", job.idempotency_key), ("unique_key", job.unique_key)):
        if key is not None and not (isinstance(key, str) and 1 <= len(key) <= 255):
            raise InvalidInput(f"{name} must be a string of 1-255 characters", field=name)


async def _discard_if_in_transaction(conn: asyncpg.Connection) -> None:
    """Reset on release for the client's own pool. Its statements leave no session state behind
    (no LISTEN, SET, cursor or advisory lock), so the usual reset query would only add a round trip
    to every enqueue; a connection left inside a transaction (a cancelled enqueue) is discarded."""
    if conn.is_in_transaction():
        conn.terminate()


class Client:
    def __init__(self, *, dsn: str | None = None, pool: asyncpg.Pool | None = None,
                 default_max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        if (dsn is None) == (pool is None):
            raise ValueError("give exactly one of dsn= or pool=")
        self._dsn = dsn
        self._pool = pool
        self._own_pool = pool is None
        self._default_max_attempts = default_max_attempts
        self._throttle = NotifyThrottle()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4,
                                                   reset=_discard_if_in_transaction)
        return self._pool

    async def close(self) -> None:
        await self._throttle.close()
        if self._own_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def enqueue(self, job_type: str, payload: dict[str, Any] | None = None, *,
                      run_at: datetime | None = None, max_attempts: int | None = None,
                      idempotency_key: str | None = None, unique_key: str | None = None,
                      queue: str | None = None, priority: int | None = None,
                      conn: asyncpg.Connection | None = None) -> Job:
        """A new job; with `unique_key` held by a queued or running job, that job instead (with
        `deduplicated=True`). A taken `idempotency_key` raises DuplicateJob. Queue, priority and
        max_attempts left out come from the type's policy, as the daemons published it
        (_ayb_job_types), then from the defaults ('default', 0, default_max_attempts)."""
        [job] = await self.enqueue_many(
            [NewJob(job_type, payload or {}, run_at, max_attempts, idempotency_key,
                    unique_key=unique_key, queue=queue, priority=priority)], conn=conn)
        return job

    async def enqueue_many(self, jobs: Iterable[NewJob], *, conn: asyncpg.Connection | None = None,
                           ) -> list[Job]:
        """Insert all jobs with one statement. With `conn`, inside the caller's transaction."""
        batch = list(jobs)
        for job in batch:
            check_new_job(job)
        if conn is not None:
            # NOTIFY inside the caller's transaction is delivered at its commit, never before.
            return await queries.enqueue_jobs(conn, batch, default_max_attempts=self._default_max_attempts,
                                              notify=True)
        pool = await self._get_pool()
        notify_now = self._throttle.take()
        try:
            inserted = await queries.enqueue_jobs(
                pool, batch, default_max_attempts=self._default_max_attempts, notify=notify_now)
        except BaseException:
            if notify_now:
                # Its NOTIFY was rolled back with it, and it stood in for earlier suppressed ones.
                self._throttle.trail(pool)
            raise
        if not notify_now:
            self._throttle.trail(pool)
        return inserted
