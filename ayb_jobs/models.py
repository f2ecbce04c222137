"""Plain data: job states, jobs, schedules, and their JSON shapes (the reference's camelCase)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

# Queue names follow the rule of job type names (migration 032 checks it too); lower priority runs first.
# \Z, not $: $ also matches before a final newline, which Postgres' CHECK would then refuse.
QUEUE_NAME = re.compile(r"\A[A-Za-z0-9_.:-]{1,100}\Z")
DEFAULT_QUEUE = "default"
MIN_PRIORITY, MAX_PRIORITY = -100, 100


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELED})
# A dict lookup instead of the enum's call (about 2 us a job, for every job a claim returns).
_STATES = {s.value: s for s in JobState}


def iso(t: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, as the reference's API writes times."""
    if t is None:
        return None
    if t.tzinfo is None:  # asyncpg's -infinity/infinity: naive datetime.min/max, meant as UTC
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decode_json(value: Any) -> Any:
    """jsonb comes back as text unless the connection has a codec; accept both. The empty object
    and array (most payloads and error histories) are built without the JSON parser."""
    if not isinstance(value, str):
        return value
    if value == "{}":
        return {}
    if value == "[]":
        return []
    return json.loads(value)


def decode_payload(value: Any) -> tuple[Any, str | None]:
    """A job's payload and, when it cannot be used, why (the payload is then `{}`).

    Postgres accepts jsonb that Python cannot load: a number with thousands of digits (json refuses
    integers over 4,300 digits) or nesting deeper than the decoder's recursion limit, and rows
    written by plain SQL may hold an array or a scalar. Such a row must not break the claim of the
    jobs claimed with it, nor a job list: it is read with the reason instead.
    """
    try:
        payload = decode_json(value)
    except (ValueError, RecursionError) as exc:
        return {}, f"payload cannot be decoded: {type(exc).__name__}: {str(exc)[:300]}"
    if payload is None or isinstance(payload, dict):
        return payload, None
    kind = {list: "array", str: "string", bool: "boolean"}.get(type(payload), "number")
    return {}, f"payload is a JSON {kind}, not an object"


class ClaimedJob:
    """A job as a claim hands it to the runtime: only what running it needs.

    Not `Job`: a claim of 64 jobs decodes 64 rows, and the full job (28 fields, six timestamps,
    a frozen dataclass that sets each field through object.__setattr__) cost about a tenth of the
    daemon's CPU at saturation. The admin API and the CLI read jobs as `Job`."""

    __slots__ = (
        "attempts",
        "cancel_requested",
        "claim_seq",
        "id",
        "max_attempts",
        "payload",
        "payload_error",
        "priority",
        "queue",
        "type",
    )

    def __init__(self, id: UUID, type: str, payload: dict[str, Any], *, attempts: int, max_attempts: int,
                 claim_seq: int, payload_error: str | None = None, cancel_requested: bool = False,
                 queue: str = DEFAULT_QUEUE, priority: int = 0) -> None:
        self.id, self.type, self.payload, self.payload_error = id, type, payload, payload_error
        self.attempts, self.max_attempts, self.claim_seq = attempts, max_attempts, claim_seq
        self.cancel_requested, self.queue, self.priority = cancel_requested, queue, priority

    @classmethod
    def from_record(cls, r: Any) -> ClaimedJob:
        payload, payload_error = decode_payload(r["payload"])
        return cls(r["id"], r["type"], payload, attempts=r["attempts"], max_attempts=r["max_attempts"],
                   claim_seq=r["claim_seq"], payload_error=payload_error,
                   cancel_requested=r["cancel_requested"], queue=r["queue"], priority=r["priority"])

    def __repr__(self) -> str:
        return (f"ClaimedJob(id={self.id!s}, type={self.type!r}, attempts={self.attempts}, "
                f"claim_seq={self.claim_seq}, queue={self.queue!r})")


# Job and NewJob are built by the thousand (a batch enqueue returns one Job per row), so they are
# not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, and a Job
# took 5.6 us to build that way against 0.5 us now. Neither was hashable anyway (the payload is a
# dict); treat them as values all the same.
@dataclass(slots=True)
class Job:
    id: UUID
    type: str
    payload: dict[str, Any]
    state: JobState
    run_at: datetime
    attempts: int
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    lease_until: datetime | None = None
    worker_id: str | None = None
    last_error: str | None = None
    last_run_at: datetime | None = None
    idempotency_key: str | None = None
    schedule_id: UUID | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    unique_key: str | None = None
    snoozes: int = 0
    result: Any = None
    cancel_requested_at: datetime | None = None
    # Set only on what an enqueue returns: True when a job holding the unique key was already
    # queued or running, and this is that job (nothing was inserted).
    deduplicated: bool = False
    # Set when the stored payload cannot be used (see decode_payload); the job then fails alone.
    payload_error: str | None = None
    # Incremented by every claim and never reset: with the worker id, the fence of one claim.
    claim_seq: int = 0
    queue: str = "default"
    priority: int = 0

    @classmethod
    def from_record(cls, r: Any) -> Job:
        payload, payload_error = decode_payload(r["payload"])
        return cls(
            id=r["id"], type=r["type"], payload=payload, state=_STATES[r["state"]],
            run_at=r["run_at"], attempts=r["attempts"], max_attempts=r["max_attempts"],
            created_at=r["created_at"], updated_at=r["updated_at"], lease_until=r["lease_until"],
            worker_id=r["worker_id"], last_error=r["last_error"], last_run_at=r["last_run_at"],
            idempotency_key=r["idempotency_key"], schedule_id=r["schedule_id"],
            completed_at=r["completed_at"], canceled_at=r["canceled_at"],
            errors=decode_json(r["errors"]) if "errors" in r.keys() else [],
            payload_error=payload_error, claim_seq=r.get("claim_seq", 0),
            unique_key=r.get("unique_key"), snoozes=r.get("snoozes") or 0,
            result=decode_json(r.get("result")), cancel_requested_at=r.get("cancel_requested_at"),
            queue=r["queue"], priority=r["priority"],
        )

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id), "type": self.type, "payload": self.payload, "state": str(self.state),
            "runAt": iso(self.run_at), "attempts": self.attempts, "maxAttempts": self.max_attempts,
            "createdAt": iso(self.created_at), "updatedAt": iso(self.updated_at),
            "queue": self.queue, "priority": self.priority,
        }
        optional = {
            "leaseUntil": iso(self.lease_until), "workerId": self.worker_id, "lastError": self.last_error,
            "lastRunAt": iso(self.last_run_at), "idempotencyKey": self.idempotency_key,
            "scheduleId": str(self.schedule_id) if self.schedule_id else None,
            "completedAt": iso(self.completed_at), "canceledAt": iso(self.canceled_at),
            "uniqueKey": self.unique_key, "cancelRequestedAt": iso(self.cancel_requested_at),
            "result": self.result,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.payload_error is not None:
            out["payloadError"] = self.payload_error
        out["snoozes"] = self.snoozes
        out["errors"] = self.errors
        return out


@dataclass(frozen=True, slots=True)
class Schedule:
    id: UUID
    name: str
    job_type: str
    payload: dict[str, Any]
    cron_expr: str
    timezone: str
    enabled: bool
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    # None: the job type's policy decides (then the column default).
    queue: str | None = None
    priority: int | None = None
    overlap: str = "allow"
    misfire: str = "coalesce"
    misfire_max: int = 10

    @classmethod
    def from_record(cls, r: Any) -> Schedule:
        return cls(
            id=r["id"], name=r["name"], job_type=r["job_type"], payload=decode_json(r["payload"]),
            cron_expr=r["cron_expr"], timezone=r["timezone"], enabled=r["enabled"],
            max_attempts=r["max_attempts"], created_at=r["created_at"], updated_at=r["updated_at"],
            next_run_at=r["next_run_at"], last_run_at=r["last_run_at"],
            queue=r["queue"], priority=r["priority"],
            overlap=r["overlap"], misfire=r["misfire"], misfire_max=r["misfire_max"],
        )

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id), "name": self.name, "jobType": self.job_type, "payload": self.payload,
            "cronExpr": self.cron_expr, "timezone": self.timezone, "enabled": self.enabled,
            "maxAttempts": self.max_attempts, "overlap": self.overlap, "misfire": self.misfire,
            "misfireMax": self.misfire_max, "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at), "queue": self.queue, "priority": self.priority,
        }
        if self.next_run_at is not None:
            out["nextRunAt"] = iso(self.next_run_at)
        if self.last_run_at is not None:
            out["lastRunAt"] = iso(self.last_run_at)
        return out


@dataclass(frozen=True, slots=True)
class JobStats:
    queued: int
    running: int
    completed: int
    failed: int
    canceled: int
    scheduled: int
    oldest_queued_age_sec: float

    def to_api(self) -> dict[str, Any]:
        return {
            "queued": self.queued, "running": self.running, "completed": self.completed,
            "failed": self.failed, "canceled": self.canceled, "scheduled": self.scheduled,
            "oldestQueuedAgeSec": self.oldest_queued_age_sec,
        }


@dataclass(slots=True)
class NewJob:
    """A job to enqueue (input of enqueue / enqueue_many)."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    run_at: datetime | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    schedule_id: UUID | None = None
    unique_key: str | None = None
    # None: the job type's policy (published in _ayb_job_types), then the column default.
    queue: str | None = None
    priority: int | None = None
