"""JobService: every operation the fronts offer (admin API, CLI through the API, dashboard).

Fronts parse input, call one method here and shape the output; this layer validates the domain
rules (registered types, cron, timezone, ranges) and talks to the database through db.queries.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from ayb_jobs import cron, explain, fire_policy
from ayb_jobs.audit import AuditAction, current_actor
from ayb_jobs.db import ops_queries, queries, queue_queries
from ayb_jobs.db.ops_queries import AuditEntry, WorkerRow
from ayb_jobs.db.queries import BulkFilter, FireRecord, NewSchedule, ScheduleChanges, translating
from ayb_jobs.db.queue_queries import LiveCounts, QueueRow
from ayb_jobs.errors import Conflict, InvalidInput, NotFound
from ayb_jobs.handlers import Registry
from ayb_jobs.health import HealthMonitor, HealthReport
from ayb_jobs.models import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    QUEUE_NAME,
    Job,
    JobState,
    JobStats,
    NewJob,
    Schedule,
    iso,
)
from ayb_jobs.wakeup import NotifyThrottle

MAX_LIST_LIMIT = 500
MAX_SEARCH_LENGTH = 200
MAX_TIMELINE_MINUTES = 1440
_TIMINGS = ("due", "scheduled")
# The list's state filter: the five states, and queued split by whether run_at has come.
LIST_STATES = (*JobState, *_TIMINGS)
MAX_PREVIEW_COUNT = 50
MAX_HISTORY_LIMIT = 100  # the scheduler keeps the newest 100 decisions per schedule
MAX_ATTEMPTS_LIMIT = 100
SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
# An update can lose a race with a concurrent change of cron/timezone; it then reads again.
_UPDATE_TRIES = 5
# A worker row not refreshed for this long belongs to a daemon that is gone (it beats every 5 s).
WORKER_GONE_AFTER_S = 30.0
EXPLAIN_AHEAD_CAP = 10_000  # due jobs ahead of an explained job are counted up to this


@dataclass(frozen=True, slots=True)
class TypeCounts:
    type: str
    completed: int = 0
    failed: int = 0
    queued: int = 0
    running: int = 0


@dataclass(frozen=True, slots=True)
class JobTimeline:
    """Per-minute completed/failed counts (oldest minute first, every minute present) and per type."""

    minutes: list[tuple[datetime, int, int]]
    types: list[TypeCounts]

    @classmethod
    def build(cls, current: datetime, minutes: int, rows: list[queries.TimelineRow]) -> JobTimeline:
        buckets = {current - timedelta(minutes=i): [0, 0] for i in range(minutes - 1, -1, -1)}
        per_type: dict[str, dict[str, int]] = {}
        for r in rows:
            per_type.setdefault(r.type, {})[r.outcome] = per_type.get(r.type, {}).get(r.outcome, 0) + r.count
            if r.minute is not None and r.minute in buckets:
                buckets[r.minute][0 if r.outcome == "completed" else 1] += r.count
        types = [TypeCounts(name, **counts) for name, counts in sorted(per_type.items())]
        return cls([(at, c, f) for at, (c, f) in buckets.items()], types)


@dataclass(frozen=True, slots=True)
class JobTypeInfo:
    type: str
    builtin: bool
    description: str
    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    timeout_s: float | None = None
    has_backoff: bool = False


# A queue's concurrency limit: at least 1; None means unlimited.
MAX_QUEUE_CONCURRENCY = 100_000


def check_queue_name(name: Any, field: str = "queue") -> str:
    if not isinstance(name, str) or not QUEUE_NAME.match(name):
        shown = repr(name)[:60]
        raise InvalidInput(f"{field} must be 1-100 of [A-Za-z0-9_.:-], got {shown}", field=field)
    return name


def check_priority(value: Any, field: str = "priority") -> None:
    if value is not None and (type(value) is not int or not MIN_PRIORITY <= value <= MAX_PRIORITY):
        raise InvalidInput(f"{field} must be a whole number from {MIN_PRIORITY} (runs first) to "
                           f"{MAX_PRIORITY}, got {value!r}", field=field)


def check_concurrency(value: Any, field: str = "concurrency") -> None:
    if value is not None and (type(value) is not int or not 1 <= value <= MAX_QUEUE_CONCURRENCY):
        raise InvalidInput(f"{field} must be a whole number from 1 to {MAX_QUEUE_CONCURRENCY} "
                           f"(or null for no limit), got {value!r}", field=field)


def _check_max_attempts(value: int | None, field: str = "maxAttempts") -> None:
    if value is not None and not 1 <= value <= MAX_ATTEMPTS_LIMIT:
        raise InvalidInput(f"{field} must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {value}", field=field)


BULK_ACTIONS = ("retry", "cancel", "delete")
MAX_BULK_JOBS = 10_000
_BULK_AUDIT = {"retry": AuditAction.JOB_BULK_RETRY, "cancel": AuditAction.JOB_BULK_CANCEL,
               "delete": AuditAction.JOB_BULK_DELETE}


@dataclass(frozen=True, slots=True)
class BulkResult:
    matched: int
    changed: int
    dry_run: bool


def _check_bulk(action: str, where: BulkFilter) -> None:
    if action not in BULK_ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(BULK_ACTIONS)}; got '{action}'", field="action")
    if where.is_empty():
        raise InvalidInput("filter must set at least one of state, type, queue, ids, errorContains, "
                           "createdBefore (a bulk action never applies to every job)", field="filter")
    if where.state is not None and where.state not in set(JobState):
        raise InvalidInput(f"filter.state must be one of {', '.join(JobState)}; got '{where.state}'",
                           field="filter.state")
    if where.ids is not None and len(where.ids) > MAX_BULK_JOBS:
        raise InvalidInput(f"filter.ids holds at most {MAX_BULK_JOBS:,} ids; got {len(where.ids):,}",
                           field="filter.ids")
    if where.created_before is not None and where.created_before.tzinfo is None:
        raise InvalidInput("filter.createdBefore must include a timezone (e.g. 2026-01-01T00:00:00Z)",
                           field="filter.createdBefore")


def _bulk_filter_detail(where: BulkFilter) -> dict[str, Any]:
    detail = {"state": where.state, "type": where.job_type, "errorContains": where.error_contains,
              "createdBefore": iso(where.created_before),
              "ids": len(where.ids) if where.ids is not None else None}
    return {k: v for k, v in detail.items() if v is not None}


def _check_payload(payload: Any) -> None:
    if payload is not None and not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object", field="payload")


def _check_policies(overlap: str | None, misfire: str | None, misfire_max: int | None) -> None:
    if overlap is not None and overlap not in fire_policy.OVERLAPS:
        raise InvalidInput(f"overlap must be one of {', '.join(fire_policy.OVERLAPS)}, got '{overlap}'",
                           field="overlap")
    if misfire is not None and misfire not in fire_policy.MISFIRES:
        raise InvalidInput(f"misfire must be one of {', '.join(fire_policy.MISFIRES)}, got '{misfire}'",
                           field="misfire")
    limit = fire_policy.MISFIRE_MAX_LIMIT
    if misfire_max is not None and not 1 <= misfire_max <= limit:
        raise InvalidInput(f"misfireMax must be between 1 and {limit}, got {misfire_max}", field="misfireMax")


def _check_key(key: str | None, field: str = "idempotencyKey") -> None:
    if key is not None and not 1 <= len(key) <= 255:
        raise InvalidInput(f"{field} must be 1-255 characters", field=field)


class JobService:
    """Every mutating method writes one audit row in the transaction of its change (see audit.py)."""

    def __init__(self, pool: Any, registry: Registry, *, default_max_attempts: int = 3,
                 on_enqueued: Callable[[], None] = lambda: None,
                 on_schedules_changed: Callable[[], None] = lambda: None,
                 health: HealthMonitor | None = None,
                 worker_gone_after_s: float = WORKER_GONE_AFTER_S) -> None:
        self.pool = pool
        self.registry = registry
        self.default_max_attempts = default_max_attempts
        # The daemon's monitor keeps the reading fresh; without one (tests, embedding) it reads on demand.
        self.health = health
        self.worker_gone_after_s = worker_gone_after_s
        # Hooks the daemon sets to wake its own poller / scheduler without waiting for a tick.
        self._on_enqueued = on_enqueued
        self._on_schedules_changed = on_schedules_changed
        self._throttle = NotifyThrottle()

    # --- jobs ------------------------------------------------------------------------------------

    async def enqueue(self, job_type: str, payload: dict[str, Any] | None = None, *,
                      run_at: datetime | None = None, max_attempts: int | None = None,
                      idempotency_key: str | None = None, unique_key: str | None = None,
                      queue: str | None = None, priority: int | None = None) -> Job:
        """A new queued job; or, when `unique_key` is held by a queued or running job, that job
        (with `deduplicated` set, and nothing inserted). Queue, priority and max_attempts left out
        come from the type's policy (_ayb_job_types)."""
        self.registry.require(job_type)
        _check_payload(payload)
        _check_max_attempts(max_attempts)
        _check_key(idempotency_key)
        _check_key(unique_key, "uniqueKey")
        if queue is not None:
            check_queue_name(queue)
        check_priority(priority)
        if run_at is not None and run_at.tzinfo is None:
            raise InvalidInput("runAt must include a timezone (e.g. 2026-01-01T00:00:00Z)", field="runAt")
        new = NewJob(job_type, payload or {}, run_at, max_attempts, idempotency_key, unique_key=unique_key,
                     queue=queue, priority=priority)
        notify_now = self._throttle.take()
        async with self._change() as conn:
            [job] = await queries.enqueue_jobs(conn, [new], default_max_attempts=self.default_max_attempts,
                                               notify=notify_now)
            await _audit(conn, AuditAction.JOB_ENQUEUE, job.id, _job_detail(job))
        if not notify_now:
            self._throttle.trail(self.pool)
        self._on_enqueued()
        return job

    async def get_job(self, job_id: UUID) -> Job:
        return await queries.get_job(self.pool, job_id)

    async def list_jobs(self, *, state: str | None = None, job_type: str | None = None, limit: int = 50,
                        offset: int = 0, schedule_id: UUID | None = None, search: str | None = None,
                        full: bool = True, queue: str | None = None) -> tuple[list[Job], int]:
        """A page of jobs, newest first, and the total matching.

        `state` also takes "due" and "scheduled": queued jobs whose run_at has come or not yet.
        `search` matches a substring of the id, type, last error or payload text. Without `full`
        the rows leave out payload and error history (what a list shows, not what a detail does).
        """
        if state is not None and state not in LIST_STATES:
            raise InvalidInput(f"state must be one of {', '.join(LIST_STATES)}; got '{state}'", field="state")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}", field="limit")
        if offset < 0:
            raise InvalidInput(f"offset must be 0 or more, got {offset}", field="offset")
        if search is not None and len(search) > MAX_SEARCH_LENGTH:
            raise InvalidInput(f"search text is limited to {MAX_SEARCH_LENGTH} characters", field="q")
        timing = state if state in _TIMINGS else None
        where = queries.JobFilter(
            state=JobState.QUEUED if timing else state, job_type=job_type, timing=timing,
            schedule_id=schedule_id, search=search or None, queue=queue,
        )
        return await queries.list_jobs(self.pool, limit=limit, offset=offset, where=where, full=full)

    async def job_timeline(self, minutes: int = 60) -> JobTimeline:
        """Completed and failed jobs per minute over the last `minutes`, and a per-type breakdown."""
        if not 1 <= minutes <= MAX_TIMELINE_MINUTES:
            raise InvalidInput(f"minutes must be between 1 and {MAX_TIMELINE_MINUTES}, got {minutes}",
                               field="minutes")
        current, rows = await queries.job_timeline(self.pool, minutes=minutes)
        return JobTimeline.build(current, minutes, rows)

    async def cancel_job(self, job_id: UUID) -> Job:
        """Cancel a queued job; for a running one, request it (the job comes back still running,
        with cancel_requested_at set: its daemon stops the handler and ends it canceled)."""
        async with self._change() as conn:
            job = await queries.cancel_job(conn, job_id)
            detail = {"type": job.type, **({"requested": True} if job.state == JobState.RUNNING else {})}
            await _audit(conn, AuditAction.JOB_CANCEL, job.id, detail)
        return job

    async def retry_job(self, job_id: UUID) -> Job:
        async with self._change() as conn:
            job = await queries.retry_job(conn, job_id)
            await _audit(conn, AuditAction.JOB_RETRY, job.id, {"type": job.type})
        return job

    async def delete_job(self, job_id: UUID) -> None:
        """Delete a completed, failed or canceled job (a queued or running one: Conflict)."""
        async with self._change() as conn:
            job_type, state = await queries.delete_job(conn, job_id)
            await _audit(conn, AuditAction.JOB_DELETE, job_id, {"type": job_type, "state": state})

    async def bulk(self, action: str, where: BulkFilter, *, dry_run: bool = False) -> BulkResult:
        """Retry, cancel or delete every job the filter matches (at most MAX_BULK_JOBS).

        `matched` counts the jobs the filter selects; `changed` those the action changed, under
        the same state rules as the single actions (with `dry_run`: those it would change, and
        nothing is written). One audit row records the whole action.
        """
        _check_bulk(action, where)
        async with self._change() as conn:
            matched = await queries.bulk_match(conn, where, limit=MAX_BULK_JOBS + 1)
            if len(matched) > MAX_BULK_JOBS:
                raise InvalidInput(
                    f"the filter matches more than {MAX_BULK_JOBS:,} jobs; narrow it (by state, type, "
                    "errorContains, createdBefore or ids) and run the action again", field="filter")
            eligible = [job_id for job_id, state in matched if state in queries.BULK_STATES[action]]
            if dry_run:
                return BulkResult(len(matched), len(eligible), True)
            changed = await queries.bulk_apply(conn, action, eligible)
            await _audit(conn, _BULK_AUDIT[action], "bulk",
                         {"filter": _bulk_filter_detail(where), "matched": len(matched),
                          "changed": len(changed)})
        if action == "retry" and changed:
            self._on_enqueued()
        return BulkResult(len(matched), len(changed), False)

    async def stats(self) -> JobStats:
        return await queries.job_stats(self.pool)

    async def job_breakdown(self) -> tuple[dict[str, LiveCounts], dict[str, LiveCounts]]:
        """Live jobs (queued, scheduled, running) per queue and per type."""
        return await queue_queries.job_breakdown(self.pool)

    def job_types(self) -> list[JobTypeInfo]:
        return [JobTypeInfo(t.name, t.builtin, t.description, t.queue, t.priority, t.max_attempts,
                            t.timeout_s, t.backoff is not None) for t in self.registry.types()]

    # --- queues ----------------------------------------------------------------------------------

    async def list_queues(self) -> list[QueueRow]:
        """Every queue with settings or live jobs, with its depth."""
        return await queue_queries.list_queues(self.pool)

    async def get_queue(self, name: str) -> QueueRow:
        check_queue_name(name, "name")
        return await self._read_queue(self.pool, name)

    async def update_queue(self, name: str, *, paused: bool | None = None, concurrency: int | None = None,
                           clear_concurrency: bool = False) -> QueueRow:
        """Change the given settings (a queue needs no row to exist; this creates it)."""
        check_queue_name(name, "name")
        check_concurrency(concurrency)
        if paused is not None and not isinstance(paused, bool):
            raise InvalidInput(f"paused must be true or false, got {paused!r}", field="paused")
        if paused is None and concurrency is None and not clear_concurrency:
            return await self._read_queue(self.pool, name)  # nothing to change (and nothing to audit)
        action = AuditAction.QUEUE_UPDATE
        if concurrency is None and not clear_concurrency and paused is not None:
            action = AuditAction.QUEUE_PAUSE if paused else AuditAction.QUEUE_RESUME
        detail: dict[str, Any] = {}
        if paused is not None:
            detail["paused"] = paused
        if concurrency is not None or clear_concurrency:
            detail["concurrency"] = concurrency
        async with self._change() as conn:
            await queue_queries.set_queue(conn, name, paused=paused, concurrency=concurrency,
                                          clear_concurrency=clear_concurrency)
            await _audit(conn, action, name, detail)
            queue = await self._read_queue(conn, name)
        if paused is False or clear_concurrency or concurrency is not None:
            self._on_enqueued()  # jobs may be claimable now: wake this daemon's poller
        return queue

    async def _read_queue(self, db: Any, name: str) -> QueueRow:
        found = await queue_queries.list_queues(db, name)
        if not found:
            raise NotFound(f"queue '{name}' has no settings and no queued or running jobs")
        return found[0]

    # --- schedules -------------------------------------------------------------------------------

    async def create_schedule(self, *, name: str, job_type: str, cron_expr: str, timezone: str | None = None,
                              payload: dict[str, Any] | None = None, enabled: bool | None = None,
                              max_attempts: int | None = None, overlap: str | None = None,
                              misfire: str | None = None, misfire_max: int | None = None,
                              queue: str | None = None, priority: int | None = None) -> Schedule:
        """queue/priority None: each job gets the type's policy when it is enqueued."""
        if not SCHEDULE_NAME.match(name):
            raise InvalidInput("name must be 1-100 of [A-Za-z0-9_.:-]", field="name")
        job = self.registry.require(job_type)
        if queue is not None:
            check_queue_name(queue)
        check_priority(priority)
        expr = cron.validate_cron(cron_expr)
        tz = timezone or "UTC"
        cron.validate_timezone(tz)
        _check_payload(payload)
        _check_max_attempts(max_attempts)
        _check_policies(overlap, misfire, misfire_max)
        enabled = True if enabled is None else enabled
        now = await queries.db_now(self.pool)
        next_run = cron.next_fire_after(expr, tz, now) if enabled else None
        new = NewSchedule(name, job_type, expr, tz, payload or {}, enabled,
                          max_attempts or job.max_attempts or self.default_max_attempts, overlap or "allow",
                          misfire or "coalesce", misfire_max or 10, queue, priority)
        async with self._change() as conn:
            schedule = await queries.create_schedule(conn, new, next_run_at=next_run)
            await _audit(conn, AuditAction.SCHEDULE_CREATE, schedule.id, _schedule_detail(schedule))
        self._on_schedules_changed()
        return schedule

    async def get_schedule(self, schedule_id: UUID) -> Schedule:
        return await queries.get_schedule(self.pool, schedule_id)

    async def list_schedules(self) -> list[Schedule]:
        return await queries.list_schedules(self.pool)

    async def update_schedule(self, schedule_id: UUID, *, cron_expr: str | None = None,
                              timezone: str | None = None, payload: dict[str, Any] | None = None,
                              enabled: bool | None = None, max_attempts: int | None = None,
                              overlap: str | None = None, misfire: str | None = None,
                              misfire_max: int | None = None, queue: str | None = None,
                              priority: int | None = None, clear_queue: bool = False,
                              clear_priority: bool = False) -> Schedule:
        """`clear_queue`/`clear_priority` hand the field back to the job type's policy."""
        if queue is not None:
            check_queue_name(queue)
        check_priority(priority)
        return await self._update_schedule(schedule_id, AuditAction.SCHEDULE_UPDATE, cron_expr=cron_expr,
                                           timezone=timezone, payload=payload, enabled=enabled,
                                           max_attempts=max_attempts, overlap=overlap, misfire=misfire,
                                           misfire_max=misfire_max, queue=queue, priority=priority,
                                           clear_queue=clear_queue, clear_priority=clear_priority)

    async def _update_schedule(self, schedule_id: UUID, action: AuditAction, *, cron_expr: str | None = None,
                               timezone: str | None = None, payload: dict[str, Any] | None = None,
                               enabled: bool | None = None, max_attempts: int | None = None,
                               overlap: str | None = None, misfire: str | None = None,
                               misfire_max: int | None = None, **queueing: Any) -> Schedule:
        expr = cron.validate_cron(cron_expr) if cron_expr is not None else None
        if timezone is not None:
            cron.validate_timezone(timezone)
        _check_payload(payload)
        _check_max_attempts(max_attempts)
        _check_policies(overlap, misfire, misfire_max)
        changes = ScheduleChanges(expr, timezone, payload, enabled, max_attempts, overlap=overlap,
                                  misfire=misfire, misfire_max=misfire_max, **queueing)
        for _ in range(_UPDATE_TRIES):
            read = await queries.schedule_timing_inputs(self.pool, schedule_id)
            final_expr, final_tz = expr or read.cron_expr, timezone or read.timezone
            final_enabled = read.enabled if enabled is None else enabled
            next_run = cron.next_fire_after(final_expr, final_tz, read.now) if final_enabled else None
            async with self._change() as conn:
                updated = await queries.update_schedule(conn, schedule_id, changes, next_run_at=next_run,
                                                        read=read)
                if updated is not None:
                    await _audit(conn, action, schedule_id, _changed_fields(changes))
            if updated is not None:
                self._on_schedules_changed()
                return updated
        raise Conflict("the schedule kept changing while being updated; try again")

    async def set_enabled(self, schedule_id: UUID, enabled: bool) -> Schedule:
        action = AuditAction.SCHEDULE_ENABLE if enabled else AuditAction.SCHEDULE_DISABLE
        return await self._update_schedule(schedule_id, action, enabled=enabled)

    async def delete_schedule(self, schedule_id: UUID) -> None:
        async with self._change() as conn:
            schedule = await queries.get_schedule(conn, schedule_id)
            await queries.delete_schedule(conn, schedule_id)
            await _audit(conn, AuditAction.SCHEDULE_DELETE, schedule_id, {"name": schedule.name})

    async def trigger_schedule(self, schedule_id: UUID) -> Job:
        async with self._change() as conn:
            job = await queries.trigger_schedule(conn, schedule_id)
            await _audit(conn, AuditAction.SCHEDULE_TRIGGER, schedule_id, {"jobId": str(job.id)})
        self._on_enqueued()
        return job

    async def schedule_history(self, schedule_id: UUID, *, limit: int = 100) -> list[FireRecord]:
        """The schedule's newest fire decisions, newest slot first."""
        if not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_HISTORY_LIMIT}, got {limit}", field="limit")
        async with translating(), self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await queries.get_schedule(conn, schedule_id)  # NotFound for an unknown id
                return await queries.schedule_history(conn, schedule_id, limit=limit)

    async def cron_preview(self, expr: str, timezone: str | None = None, count: int = 5,
                           after: datetime | None = None) -> list[datetime]:
        normalized = cron.validate_cron(expr)
        tz = timezone or "UTC"
        cron.validate_timezone(tz)
        if not 1 <= count <= MAX_PREVIEW_COUNT:
            raise InvalidInput(f"count must be between 1 and {MAX_PREVIEW_COUNT}, got {count}", field="count")
        if after is None:
            after = await queries.db_now(self.pool)
        elif after.tzinfo is None:
            raise InvalidInput("after must include a timezone (e.g. 2026-01-01T00:00:00Z)", field="after")
        return cron.next_fire_times(normalized, tz, after, count)

    # --- health ----------------------------------------------------------------------------------

    async def ping(self) -> None:
        await queries.db_now(self.pool)

    async def health_report(self) -> HealthReport:
        if self.health is None:
            self.health = HealthMonitor(self.pool, worker_id="api")
        return await self.health.report()

    # --- operator views: audit log, live workers -----------------------------------------------

    async def list_audit(self, *, action: str | None = None, limit: int = 50,
                         offset: int = 0) -> tuple[list[AuditEntry], int]:
        if action is not None and action not in set(AuditAction):
            raise InvalidInput(f"action must be one of {', '.join(AuditAction)}, got '{action}'",
                               field="action")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}", field="limit")
        if offset < 0:
            raise InvalidInput(f"offset must be >= 0, got {offset}", field="offset")
        async with translating(), self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):  # page and total agree
                return await ops_queries.list_audit(conn, action=action, limit=limit, offset=offset)

    async def list_workers(self) -> list[WorkerRow]:
        return await ops_queries.list_workers(self.pool, alive_window_s=self.worker_gone_after_s)

    async def explain_job(self, job_id: UUID) -> dict[str, Any]:
        """`{"id", "state", "reasons": [{"code", "message"}]}`: why the job is (not) running."""
        facts = await self._explain_facts(job_id)
        return explain.to_api(facts, explain.explain(facts))

    async def _explain_facts(self, job_id: UUID) -> explain.JobFacts:
        row, holder, locked = await ops_queries.explain_facts(
            self.pool, job_id, ahead_cap=EXPLAIN_AHEAD_CAP, alive_window_s=self.worker_gone_after_s)
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return _job_facts(row, holder, locked)

    @asynccontextmanager
    async def _change(self) -> AsyncIterator[Any]:
        """A connection in a transaction: the change and its audit row commit or roll back together."""
        async with translating(), self.pool.acquire() as conn, conn.transaction():
            yield conn


async def _audit(conn: Any, action: AuditAction, target: Any, detail: dict[str, Any] | None) -> None:
    actor = current_actor()
    await ops_queries.insert_audit(conn, actor=actor.fingerprint, remote_addr=actor.remote_addr,
                                   action=str(action), target=str(target), detail=detail)


def _job_facts(row: Any, holder: Any, locked: bool) -> explain.JobFacts:
    workers = tuple(
        explain.WorkerFacts(w["worker_id"], w["alive"], datetime.fromisoformat(w["last_seen_at"]),
                            w["queues"], w["types"], w["concurrency"], w["in_flight"])
        for w in json.loads(row["workers"]))
    lock = None
    if locked:
        lock = (explain.LockHolder(holder["pid"], holder["application_name"], holder["state"],
                                   holder["xact_start"], holder["query"])
                if holder is not None else explain.LockHolder())
    return explain.JobFacts(
        id=str(row["id"]), type=row["type"], state=row["state"], run_at=row["run_at"],
        attempts=row["attempts"], max_attempts=row["max_attempts"], now=row["now"],
        last_error=row["last_error"], worker_id=row["worker_id"], lease_until=row["lease_until"],
        completed_at=row["completed_at"], canceled_at=row["canceled_at"],
        cancel_requested_at=row["cancel_requested_at"], updated_at=row["updated_at"],
        due_ahead=row["due_ahead"], due_ahead_capped=row["due_ahead"] >= EXPLAIN_AHEAD_CAP,
        workers=workers, lock=lock,
        queue=explain.QueueFacts(row["queue"], row["queue_paused_at"], row["queue_limit"],
                                 row["queue_running"]))


def _job_detail(job: Job) -> dict[str, Any]:
    # The payload is left out: it may hold personal data or secrets, and can be large.
    detail: dict[str, Any] = {"type": job.type, "runAt": iso(job.run_at), "maxAttempts": job.max_attempts,
                              "queue": job.queue, "priority": job.priority}
    if job.idempotency_key is not None:
        detail["idempotencyKey"] = job.idempotency_key
    if job.unique_key is not None:
        detail["uniqueKey"] = job.unique_key
    if job.deduplicated:
        detail["deduplicated"] = True
    return detail


def _schedule_detail(s: Schedule) -> dict[str, Any]:
    return {"name": s.name, "jobType": s.job_type, "cronExpr": s.cron_expr, "timezone": s.timezone,
            "enabled": s.enabled, "maxAttempts": s.max_attempts, "overlap": s.overlap, "misfire": s.misfire,
            "misfireMax": s.misfire_max, "queue": s.queue, "priority": s.priority}


def _changed_fields(ch: ScheduleChanges) -> dict[str, Any]:
    fields = {"cronExpr": ch.cron_expr, "timezone": ch.timezone, "enabled": ch.enabled,
              "maxAttempts": ch.max_attempts, "jobType": ch.job_type, "overlap": ch.overlap,
              "misfire": ch.misfire, "misfireMax": ch.misfire_max, "queue": ch.queue,
              "priority": ch.priority}
    detail = {k: v for k, v in fields.items() if v is not None}
    detail.update({k: None for k, cleared in (("queue", ch.clear_queue), ("priority", ch.clear_priority))
                   if cleared})
    if ch.payload is not None:
        detail["payload"] = "changed"  # the value is left out, as for jobs
    return detail
