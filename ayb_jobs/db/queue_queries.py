"""Typed functions over the queue and job-type statements of queries.sql.

Same boundary rules as db/queries.py: driver errors become ayb-jobs errors via `translating()`;
`db` is an asyncpg Connection or Pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ayb_jobs.db.queries import Queryable, translating
from ayb_jobs.db.sql import SQL


@dataclass(frozen=True, slots=True)
class TypePolicy:
    """One row of _ayb_job_types: a registered type and its policy (None = no policy)."""

    type: str
    queue: str | None
    priority: int | None
    max_attempts: int | None
    timeout_s: float | None
    has_backoff: bool
    description: str
    builtin: bool


async def publish_job_types(db: Queryable, types: Sequence[TypePolicy]) -> None:
    columns = [[getattr(t, f) for t in types] for f in TypePolicy.__slots__]
    async with translating():
        await db.execute(SQL["publish_job_types"], *columns)


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    paused: bool
    concurrency: int | None
    updated_at: datetime | None
    queued: int  # scheduled ones included
    scheduled: int
    running: int
    oldest_due_age_sec: float

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "paused": self.paused, "concurrency": self.concurrency,
                "queued": self.queued, "running": self.running, "scheduled": self.scheduled,
                "oldestDueAgeSec": round(self.oldest_due_age_sec, 3)}


async def list_queues(db: Queryable, name: str | None = None) -> list[QueueRow]:
    async with translating():
        rows = await db.fetch(SQL["list_queues"], name)
    return [QueueRow(r["name"], r["paused"], r["concurrency"], r["updated_at"], r["queued"], r["scheduled"],
                     r["running"], r["oldest_due_age_sec"]) for r in rows]


async def set_queue(db: Queryable, name: str, *, paused: bool | None = None, concurrency: int | None = None,
                    clear_concurrency: bool = False) -> None:
    """Create or change the queue's settings row; None leaves a field as it is."""
    async with translating():
        await db.execute(SQL["set_queue"], name, paused, concurrency, clear_concurrency)


@dataclass(frozen=True, slots=True)
class LiveCounts:
    queued: int = 0  # scheduled ones included
    scheduled: int = 0
    running: int = 0

    def to_api(self) -> dict[str, int]:
        return {"queued": self.queued, "scheduled": self.scheduled, "running": self.running}


async def job_breakdown(db: Queryable) -> tuple[dict[str, LiveCounts], dict[str, LiveCounts]]:
    """Live jobs per queue and per type."""
    async with translating():
        rows = await db.fetch(SQL["job_breakdown"])
    found: dict[str, dict[str, dict[str, int]]] = {"queue": {}, "type": {}}
    for r in rows:
        counts = found[r["by"]].setdefault(r["name"], {"queued": 0, "scheduled": 0, "running": 0})
        if r["state"] == "running":
            counts["running"] += r["n"]
        else:
            counts["queued"] += r["n"]
            counts["scheduled"] += r["later"]
    by_queue = {name: LiveCounts(**c) for name, c in sorted(found["queue"].items())}
    by_type = {name: LiveCounts(**c) for name, c in sorted(found["type"].items())}
    return by_queue, by_type
