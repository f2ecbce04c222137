"""Typed functions over the operator statements of queries.sql: audit log, live workers, health.

Same boundary rules as db/queries.py: driver errors become ayb-jobs errors via `translating()`;
`db` is an asyncpg Connection or Pool.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from ayb_jobs.db.queries import Queryable, translating
from ayb_jobs.db.sql import SQL
from ayb_jobs.errors import Conflict


def _rowcount(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


# --- audit log -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str | None
    remote_addr: str | None
    action: str
    target: str | None
    detail: dict[str, Any] | None


async def insert_audit(db: Queryable, *, actor: str | None, remote_addr: str | None, action: str,
                       target: str | None, detail: dict[str, Any] | None) -> int:
    payload = json.dumps(detail, separators=(",", ":"), default=str) if detail is not None else None
    async with translating():
        return await db.fetchval(SQL["audit_insert"], actor, remote_addr, action, target, payload)


async def list_audit(db: Queryable, *, action: str | None, limit: int,
                     offset: int) -> tuple[list[AuditEntry], int]:
    async with translating():
        rows = await db.fetch(SQL["audit_list"], action, limit, offset)
        total = await db.fetchval(SQL["audit_count"], action)
    return [_entry(r) for r in rows], total


def _entry(r: Any) -> AuditEntry:
    detail = json.loads(r["detail"]) if r["detail"] is not None else None
    return AuditEntry(r["id"], r["at"], r["actor"], r["remote_addr"], r["action"], r["target"], detail)


# --- live workers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """What one daemon says about itself every few seconds."""

    worker_id: str
    host: str
    pid: int
    version: str
    queues: Sequence[str]
    types: Sequence[str]
    concurrency: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class RunningJob:
    id: UUID
    type: str
    started_at: datetime | None
    lease_until: datetime | None


@dataclass(frozen=True, slots=True)
class WorkerRow:
    worker_id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen_at: datetime
    queues: list[str]
    types: list[str]
    concurrency: int
    in_flight: int
    alive: bool
    jobs: list[RunningJob]


async def upsert_worker(db: Queryable, beat: WorkerBeat, *, timeout: float | None = None) -> None:
    async with translating():
        await db.execute(SQL["worker_upsert"], beat.worker_id, beat.host, beat.pid, beat.version,
                         list(beat.queues), list(beat.types), beat.concurrency, beat.in_flight,
                         timeout=timeout)


async def delete_worker(db: Queryable, worker_id: str, *, timeout: float | None = None) -> None:
    async with translating():
        await db.execute(SQL["worker_delete"], worker_id, timeout=timeout)


async def delete_gone_workers(db: Queryable, *, unseen_s: float) -> int:
    async with translating():
        return _rowcount(await db.execute(SQL["workers_delete_gone"], float(unseen_s)))


async def list_workers(db: Queryable, *, alive_window_s: float) -> list[WorkerRow]:
    async with translating():
        rows = await db.fetch(SQL["workers_list"], float(alive_window_s))
    return [WorkerRow(r["worker_id"], r["host"], r["pid"], r["version"], r["started_at"], r["last_seen_at"],
                      list(r["queues"]), list(r["types"]), r["concurrency"], r["in_flight"], r["alive"],
                      _running(r["jobs"])) for r in rows]


def _running(jobs_json: str) -> list[RunningJob]:
    return [RunningJob(UUID(j["id"]), j["type"], _time(j.get("startedAt")), _time(j.get("leaseUntil")))
            for j in json.loads(jobs_json)]


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# --- explain: why a job is (not) running ------------------------------------------------------


async def explain_facts(pool: Any, job_id: UUID, *, ahead_cap: int, alive_window_s: float,
                        tries: int = 3) -> tuple[Any, Any, bool]:
    """(facts row or None, lock holder row or None, locked?), all from one snapshot: a repeatable-read
    transaction whose first statement is the lock probe (read-write only because the probe is a
    FOR SHARE). A row changed between the snapshot and the probe is read again."""
    for attempt in range(tries):
        try:
            async with translating(), pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                free = await conn.fetchval(SQL["explain_lock_probe"], job_id)
                row = await conn.fetchrow(SQL["explain_facts"], job_id, ahead_cap, float(alive_window_s))
                locked = row is not None and free is None
                holder = await conn.fetchrow(SQL["explain_lock_holder"], job_id) if locked else None
                return row, holder, locked
        except asyncpg.SerializationError:
            if attempt == tries - 1:
                raise Conflict("the job kept changing while being explained; try again") from None
    raise AssertionError("unreachable")


# --- Postgres health readings --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    reading: dict[str, Any]
    taken_at: datetime | None
    now: datetime


async def claim_health_reading(db: Queryable, *, min_age_s: float) -> Snapshot | None:
    """Inside the caller's transaction: the stale snapshot, locked, or None (another daemon reads)."""
    async with translating():
        r = await db.fetchrow(SQL["health_claim"], float(min_age_s))
    return Snapshot(json.loads(r["reading"]), r["taken_at"], r["now"]) if r is not None else None


async def store_health_reading(db: Queryable, *, taken_by: str, reading: dict[str, Any]) -> None:
    async with translating():
        await db.execute(SQL["health_store"], taken_by, json.dumps(reading, default=str))


async def health_snapshot(db: Queryable) -> Snapshot:
    async with translating():
        r = await db.fetchrow(SQL["health_snapshot"])
    return Snapshot(json.loads(r["reading"]), r["taken_at"], r["now"])


async def health_catalog(db: Queryable) -> dict[str, Any]:
    """The raw readings of one check, as plain dicts (rows of the statistics views)."""
    async with translating():
        backend = await db.fetchrow(SQL["health_oldest_backend"])
        prepared = await db.fetchrow(SQL["health_oldest_prepared"])
        slots = await db.fetch(SQL["health_slots"])
        tables = await db.fetch(SQL["health_tables"])
        notify = await db.fetchval(SQL["health_notify_queue"])
    return {
        "backend": dict(backend) if backend is not None else None,
        "prepared": dict(prepared) if prepared is not None else None,
        "slots": [dict(s) for s in slots],
        "tables": [dict(t) for t in tables],
        "notify_queue_usage": float(notify or 0.0),
    }
