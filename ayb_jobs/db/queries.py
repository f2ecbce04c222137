"""One typed async function per statement in queries.sql.

This is the one boundary where asyncpg errors become ayb-jobs errors: a unique violation becomes a
Conflict, a lost or refused connection becomes DatabaseUnavailable (retry later), no row becomes
NotFound where the caller asked for one row. `db` is an asyncpg Connection or Pool.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple, Protocol
from uuid import UUID

import asyncpg

from ayb_jobs.db.sql import SQL
from ayb_jobs.errors import Conflict, DatabaseUnavailable, DuplicateJob, NotFound
from ayb_jobs.ids import new_job_ids
from ayb_jobs.models import DEFAULT_QUEUE, ClaimedJob, Job, JobState, JobStats, NewJob, Schedule


class Queryable(Protocol):
    """What a query function runs on: an asyncpg Pool or Connection (or a transaction's connection)."""

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any: ...
    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any: ...
    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str: ...


# Errors that mean "the database is not reachable right now", as seen during restarts.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, _UNAVAILABLE | (DatabaseUnavailable,))


@asynccontextmanager
async def translating() -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(_unique_message(exc)) from exc
    except _UNAVAILABLE as exc:
        raise DatabaseUnavailable(f"database unavailable: {type(exc).__name__}: {exc}") from exc


def _unique_message(exc: asyncpg.UniqueViolationError) -> str:
    if exc.constraint_name == "_ayb_job_schedules_name_key":
        return "a schedule with this name already exists; choose another name"
    if exc.constraint_name == "idx_ayb_jobs_unique_active":
        return ("another job with the same unique key is already queued or running; "
                "wait for it to finish or cancel it first")
    return f"duplicate value violates {exc.constraint_name}: {exc.detail or exc}"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- clock -----------------------------------------------------------------------------------

async def db_now(db: Queryable, *, timeout: float | None = None) -> datetime:
    async with translating():
        return await db.fetchval(SQL["db_now"], timeout=timeout)


async def server_started_at(db: Queryable) -> datetime:
    """Raw (not translated): callers judge the exception themselves."""
    return await db.fetchval(SQL["server_started_at"])


async def ping(db: Queryable, *, timeout: float | None = None) -> None:
    """Raw (not translated): callers judge the exception themselves."""
    await db.fetchval(SQL["ping"], timeout=timeout)


# --- enqueue ---------------------------------------------------------------------------------

async def enqueue_jobs(db: Queryable, jobs: Sequence[NewJob], *, default_max_attempts: int,
                       notify: bool = True) -> list[Job]:
    """Insert jobs in one statement. Raises DuplicateJob (naming the existing id) when a key exists.

    With a pool (not a caller's transaction), a batch with a duplicate inserts nothing: a batch
    with idempotency keys runs in its own transaction, so the exception rolls it back; one
    without them cannot fail that way and is a single statement (its own transaction, one round
    trip). A job whose unique key is held by a queued or running job is not inserted: that job is
    returned in its place, with `deduplicated` set.
    """
    if not jobs:
        return []
    args = enqueue_args(jobs, default_max_attempts=default_max_attempts, notify=notify)
    async with translating():
        if isinstance(db, asyncpg.Pool):
            if args[4] is None:  # no idempotency keys
                return await _insert_checked(db, jobs, args, default_max_attempts)
            async with db.acquire() as conn, conn.transaction():
                return await _insert_checked(conn, jobs, args, default_max_attempts)
        return await _insert_checked(db, jobs, args, default_max_attempts)


def _enqueue_columns(jobs: Sequence[NewJob]) -> tuple[list[Any] | None, ...]:
    """The statement's parallel arrays, in parameter order ($1-$6, then $9-$11 after the two
    scalars); a column no job sets is sent as NULL (nothing to encode)."""
    payloads = [_json(p) if p else None for p in map(_PAYLOAD, jobs)]
    columns = [list(map(get, jobs)) for get in _OPTIONAL_COLUMNS]
    return (list(map(_TYPE, jobs)), *(_unless_all_null(c) for c in (payloads, *columns)))


def enqueue_args(jobs: Sequence[NewJob], *, default_max_attempts: int, notify: bool) -> tuple[Any, ...]:
    """The parameters of enqueue_jobs ($1-$12) for a batch, with fresh ids (also used by the
    synchronous enqueue)."""
    *arrays, unique_keys, queues, priorities = _enqueue_columns(jobs)
    return (*arrays, default_max_attempts, notify, unique_keys, queues, priorities, new_job_ids(len(jobs)))


ENQUEUE_IDS = 11  # where enqueue_args puts the ids ($12)


_TYPE, _PAYLOAD = attrgetter("type"), attrgetter("payload")
_OPTIONAL_COLUMNS = [attrgetter(a) for a in ("run_at", "max_attempts", "idempotency_key", "schedule_id",
                                             "unique_key", "queue", "priority")]
# A unique key's holder can finish between our skipped insert and our look-up; then insert again.
_DEDUP_TRIES = 5


def _unless_all_null(column: list[Any]) -> list[Any] | None:
    return None if column.count(None) == len(column) else column


async def _insert_checked(db: Queryable, jobs: Sequence[NewJob], args: tuple[Any, ...],
                          default_max_attempts: int) -> list[Job]:
    """Insert, then sort out the skipped jobs: a taken idempotency key raises DuplicateJob; a
    unique key held by an active job gives that job back, marked deduplicated."""
    keyed = args[4] is not None or args[8] is not None  # any idempotency or unique key
    row = await db.fetchrow(SQL["enqueue_jobs" if keyed else "enqueue_unkeyed_jobs"], *args)
    policies = type_policies(row)
    if len(row["ids"]) == len(jobs):
        return _inserted_jobs(jobs, args[ENQUEUE_IDS], row["now"], default_max_attempts, policies)
    placed = match_inserted(args[ENQUEUE_IDS], row["ids"])
    await _raise_if_key_taken(db, jobs, placed)
    out: list[Job | None] = [
        _new_job(j, job_id, row["now"], default_max_attempts, policies) if job_id is not None else None
        for j, job_id in zip(jobs, placed, strict=True)
    ]
    for _ in range(_DEDUP_TRIES):
        waiting = [i for i, job in enumerate(out) if job is None]
        if not waiting:
            return [job for job in out if job is not None]
        holders = await db.fetch(SQL["active_jobs_by_unique_keys"],
                                 sorted({jobs[i].unique_key for i in waiting}))
        by_key = {r["unique_key"]: Job.from_record(r) for r in holders}
        for i in waiting:
            holder = by_key.get(jobs[i].unique_key)
            if holder is not None:
                out[i] = replace(holder, deduplicated=True)
        again = [i for i in waiting if out[i] is None]
        if again:  # their holders finished meanwhile: the keys are free, insert those jobs now
            retry = [jobs[i] for i in again]
            retry_args = enqueue_args(retry, default_max_attempts=default_max_attempts, notify=args[7])
            row = await db.fetchrow(SQL["enqueue_jobs"], *retry_args)
            ids = match_inserted(retry_args[ENQUEUE_IDS], row["ids"])
            policies = type_policies(row)
            for i, j, job_id in zip(again, retry, ids, strict=True):
                if job_id is not None:
                    out[i] = _new_job(j, job_id, row["now"], default_max_attempts, policies)
    raise Conflict("the job holding this unique key kept changing during the enqueue; try again")


def match_inserted(sent: Sequence[UUID], inserted: Sequence[UUID]) -> list[UUID | None]:
    """Each sent id if its row was inserted, None for a skipped job (its key was taken)."""
    rows = set(inserted)
    return [i if i in rows else None for i in sent]


async def _raise_if_key_taken(db: Queryable, jobs: Sequence[NewJob], placed: list[Any]) -> None:
    """DuplicateJob for the first skipped job whose idempotency key is taken (by an existing job or
    an earlier job of this batch). Inside a caller's transaction the rows already inserted stay
    until the caller rolls back; under enqueue_jobs' own transaction the exception rolls them back."""
    inserted = [j.idempotency_key for j, i in zip(jobs, placed, strict=True) if i is not None]
    skipped = [j.idempotency_key for j, i in zip(jobs, placed, strict=True)
               if i is None and j.idempotency_key is not None]
    if not skipped:
        return
    in_batch = next((k for k in skipped if k in inserted), None)
    existing = await db.fetch(SQL["job_ids_by_keys"], skipped)
    if in_batch is not None or existing:
        key = in_batch if in_batch is not None else existing[0]["idempotency_key"]
        existing_id = next((str(r["id"]) for r in existing if r["idempotency_key"] == key), None)
        if existing_id is None:
            existing_id = next(str(i) for j, i in zip(jobs, placed, strict=True)
                               if i is not None and j.idempotency_key == key)
        raise DuplicateJob(key, existing_id)


@dataclass(frozen=True, slots=True)
class Policy:
    """What a job type's row in _ayb_job_types fills in when an enqueue leaves it out."""

    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None


_NO_POLICY = Policy()


def type_policies(row: Any) -> dict[str, Policy]:
    """The policies enqueue_jobs read for the batch's types (its `policies` column)."""
    return {p[0]: Policy(*p[1:]) for p in json.loads(row["policies"])}


def _new_job(j: NewJob, job_id: UUID, now: datetime, default_max_attempts: int,
             policies: dict[str, Policy]) -> Job:
    return _inserted_jobs([j], [job_id], now, default_max_attempts, policies)[0]


def _inserted_jobs(jobs: Sequence[NewJob], ids: list[UUID], now: datetime, default_max_attempts: int,
                   policies: dict[str, Policy]) -> list[Job]:
    """The Jobs as stored, from what was sent, the type policies the statement applied, the new
    ids and the statement's now(). Positional arguments (Job's field order: id, type, payload,
    state, run_at, attempts, max_attempts, created_at, updated_at, lease_until, worker_id,
    last_error, last_run_at, idempotency_key, schedule_id, completed_at, canceled_at, errors,
    unique_key, snoozes, result, cancel_requested_at, deduplicated, payload_error, claim_seq, queue,
    priority) build a Job in
    about a third less time than keywords, and building the Jobs is the largest Python cost of a
    batch; tests compare every field with the stored row."""
    queued = JobState.QUEUED
    out = []
    for j, job_id in zip(jobs, ids, strict=True):
        p = policies.get(j.type, _NO_POLICY)
        out.append(Job(
            job_id, j.type, j.payload or {}, queued, j.run_at or now, 0,
            j.max_attempts or p.max_attempts or default_max_attempts, now, now, None, None, None, None,
            j.idempotency_key, j.schedule_id, None, None, [], j.unique_key, 0, None, None, False, None, 0,
            j.queue or p.queue or DEFAULT_QUEUE, p.priority or 0 if j.priority is None else j.priority,
        ))
    return out


async def notify(db: Queryable) -> None:
    async with translating():
        await db.execute(SQL["notify"])


async def notify_channel(db: Queryable, channel: str, *, timeout: float | None = None) -> None:
    async with translating():
        await db.execute(SQL["notify_channel"], channel, timeout=timeout)


# --- the claimed-job lifecycle -----------------------------------------------------------------

async def claim_jobs(db: Queryable, *, limit: int, lease_s: float, worker_id: str,
                     queues: Sequence[str] | None = None, timeout: float | None = None) -> list[ClaimedJob]:
    """Claim from `queues` (None: every queue), as the claim's SQL explains."""
    async with translating():
        rows = await db.fetch(SQL["claim_jobs"], limit, float(lease_s), worker_id,
                              None if queues is None else list(queues), timeout=timeout)
    return [ClaimedJob.from_record(r) for r in rows]


async def seconds_until_next_job(db: Queryable, *, now: datetime | None = None) -> float | None:
    async with translating():
        return await db.fetchval(SQL["seconds_until_next_job"], now)


class Claimed(NamedTuple):
    """One claim of a job: writes succeed only while (id, worker, seq) still hold. `seq` is the
    job's claim_seq, which every claim increments and nothing resets, so a claim's fence never
    comes back (an admin retry resets `attempt`, which is kept for the logs and the backoff).
    A named tuple: the runtime keys its in-flight runs by claim, and a tuple is built and hashed
    in C (a frozen dataclass's __init__ and __hash__ run Python code, per job and per lookup)."""

    id: UUID
    attempt: int
    seq: int

    @classmethod
    def of(cls, job: Job | ClaimedJob) -> Claimed:
        return cls(job.id, job.attempts, job.claim_seq)


def _fenced(claimed: Sequence[Claimed], rows: Sequence[Any]) -> list[tuple[Claimed, Any]]:
    """The caller's claims that a fenced statement wrote, each with its row."""
    by_key = {(c.id, c.seq): c for c in claimed}
    return [(by_key[(r["id"], r["claim_seq"])], r) for r in rows]


async def complete_jobs(db: Queryable, claimed: Sequence[Claimed], *, worker_id: str,
                        timeout: float | None = None,
                        results: Sequence[str | None] | None = None) -> set[Claimed]:
    """`results`: each job's stored result (JSON text, see results.encode_result), None for none."""
    stored = list(results) if results is not None and any(r is not None for r in results) else None
    async with translating():
        rows = await db.fetch(SQL["complete_jobs"], [c.id for c in claimed],
                              [c.seq for c in claimed], worker_id, stored, timeout=timeout)
    return {c for c, _ in _fenced(claimed, rows)}


async def snooze_jobs(db: Queryable, claimed: Sequence[Claimed], *, worker_id: str, delays_s: Sequence[float],
                      timeout: float | None = None) -> dict[Claimed, str]:
    """Queue snoozed jobs again after their delays, attempt not counted; the state each ended in
    ("queued", or "canceled" when an operator canceled it meanwhile)."""
    async with translating():
        rows = await db.fetch(SQL["snooze_jobs"], [c.id for c in claimed], [c.seq for c in claimed],
                              worker_id, [float(d) for d in delays_s], timeout=timeout)
    return {c: r["state"] for c, r in _fenced(claimed, rows)}


async def cancel_running_jobs(db: Queryable, claimed: Sequence[Claimed], *, worker_id: str, reason: str,
                              timeout: float | None = None) -> set[Claimed]:
    """End canceled the jobs whose handlers were stopped on an operator's request."""
    async with translating():
        rows = await db.fetch(SQL["cancel_running_jobs"], [c.id for c in claimed],
                              [c.seq for c in claimed], worker_id, reason, timeout=timeout)
    return {c for c, _ in _fenced(claimed, rows)}


@dataclass(frozen=True, slots=True)
class Failure:
    claimed: Claimed
    error: str
    backoff_s: float
    retryable: bool = True


async def fail_jobs(db: Queryable, failures: Sequence[Failure], *, worker_id: str,
                    timeout: float | None = None) -> dict[Claimed, JobState]:
    """Returns the state each fenced claim's job ended in (queued for a retry, or failed)."""
    async with translating():
        rows = await db.fetch(
            SQL["fail_jobs"], [f.claimed.id for f in failures], [f.claimed.seq for f in failures],
            [f.error for f in failures], [float(f.backoff_s) for f in failures],
            [f.retryable for f in failures], worker_id, timeout=timeout,
        )
    return {c: JobState(r["state"]) for c, r in _fenced([f.claimed for f in failures], rows)}


async def heartbeat_jobs(db: Queryable, claimed: Sequence[Claimed], *, lease_s: float,
                         worker_id: str, timeout: float | None = None,
                         cancel_requested: set[Claimed] | None = None) -> set[Claimed]:
    """The claims whose lease was extended; those an operator asked to cancel are added to
    `cancel_requested` when given."""
    async with translating():
        rows = await db.fetch(SQL["heartbeat_jobs"], [c.id for c in claimed],
                              [c.seq for c in claimed], float(lease_s), worker_id, timeout=timeout)
    fenced = _fenced(claimed, rows)
    if cancel_requested is not None:
        cancel_requested.update(c for c, r in fenced if r["cancel_requested"])
    return {c for c, _ in fenced}


SHUTDOWN_REASON = "interrupted by shutdown"


async def release_jobs(db: Queryable, claimed: Sequence[Claimed], *, worker_id: str,
                       reasons: Sequence[str] | None = None, delays_s: Sequence[float] | None = None,
                       timeout: float | None = None) -> set[Claimed]:
    """Queue claimed jobs again, attempt not counted; by default as a shutdown does (at once)."""
    reasons = list(reasons) if reasons is not None else [SHUTDOWN_REASON] * len(claimed)
    delays = [float(d) for d in delays_s] if delays_s is not None else [0.0] * len(claimed)
    async with translating():
        rows = await db.fetch(SQL["release_jobs"], [c.id for c in claimed], [c.seq for c in claimed],
                              worker_id, reasons, delays, timeout=timeout)
    return {c for c, _ in _fenced(claimed, rows)}


UNHELD_REASON = "claimed, but the claim's answer was lost: released without running"


async def release_unheld(db: Queryable, worker_id: str, held: Sequence[Claimed], *,
                         timeout: float | None = None) -> list[UUID]:
    """Release this worker's running jobs that it does not hold (see queries.sql)."""
    async with translating():
        rows = await db.fetch(SQL["release_unheld"], worker_id, [c.id for c in held], [c.seq for c in held],
                              UNHELD_REASON, timeout=timeout)
    return [r["id"] for r in rows]


@dataclass(frozen=True, slots=True)
class ClaimRow:
    state: JobState
    claim_seq: int
    last_error: str | None


async def claim_rows(db: Queryable, ids: Sequence[UUID], *,
                     timeout: float | None = None) -> dict[UUID, ClaimRow]:
    async with translating():
        rows = await db.fetch(SQL["claim_rows"], list(ids), timeout=timeout)
    return {r["id"]: ClaimRow(JobState(r["state"]), r["claim_seq"], r["last_error"]) for r in rows}


@dataclass(frozen=True, slots=True)
class Recovered:
    id: UUID
    type: str
    state: JobState
    attempts: int
    max_attempts: int
    lost_worker_id: str | None


async def recover_expired(db: Queryable, *, jitter_s: float, limit: int = 1000,
                          now: datetime | None = None) -> list[Recovered]:
    """Recover the leases expired at `now` (None: the database's now())."""
    async with translating():
        rows = await db.fetch(SQL["recover_expired"], limit, float(jitter_s), now)
    return [Recovered(r["id"], r["type"], JobState(r["state"]), r["attempts"], r["max_attempts"],
                      r["lost_worker_id"]) for r in rows]


# --- admin operations on jobs -------------------------------------------------------------------

async def get_job(db: Queryable, job_id: UUID) -> Job:
    async with translating():
        row = await db.fetchrow(SQL["get_job"], job_id)
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return Job.from_record(row)


async def cancel_job(db: Queryable, job_id: UUID) -> Job:
    """Cancel a queued job (it comes back `canceled`), or ask for a running one to be stopped (it
    comes back `running` with `cancel_requested_at`; its daemon ends it `canceled`)."""
    async with translating():
        row = await db.fetchrow(SQL["cancel_job"], job_id)
        if row is None:
            row = await db.fetchrow(SQL["request_cancel"], [job_id])
    if row is not None:
        return Job.from_record(row)
    return await _transition(db, "cancel_job", job_id, "only queued or running jobs can be canceled")


async def retry_job(db: Queryable, job_id: UUID) -> Job:
    return await _transition(db, "retry_job", job_id, "only failed or canceled jobs can be retried")


async def _transition(db: Queryable, query: str, job_id: UUID, rule: str) -> Job:
    async with translating():
        row = await db.fetchrow(SQL[query], job_id)
        if row is not None:
            return Job.from_record(row)
        state = await db.fetchval(SQL["job_state"], job_id)
    if state is None:
        raise NotFound(f"job {job_id} not found")
    raise Conflict(f"job {job_id} is {state}: {rule}")


FINISHED = ("completed", "failed", "canceled")


async def delete_job(db: Queryable, job_id: UUID) -> tuple[str, str]:
    """Delete a finished job; returns its (type, state). NotFound, or Conflict when not finished."""
    async with translating():
        row = await db.fetchrow(SQL["delete_job"], job_id)
        if row is not None:
            return row["type"], row["state"]
        state = await db.fetchval(SQL["job_state"], job_id)
    if state is None:
        raise NotFound(f"job {job_id} not found")
    raise Conflict(f"job {job_id} is {state}: only completed, failed or canceled jobs can be deleted; "
                   "cancel it first")


@dataclass(frozen=True, slots=True)
class BulkFilter:
    """What an admin bulk action applies to; None means "any". `error_contains` is a substring."""

    state: str | None = None
    job_type: str | None = None
    ids: list[UUID] | None = None
    error_contains: str | None = None
    created_before: datetime | None = None
    queue: str | None = None

    def is_empty(self) -> bool:
        return all(v is None for v in (self.state, self.job_type, self.ids, self.error_contains,
                                       self.created_before, self.queue))


def like_pattern(text: str) -> str:
    """A literal substring for ILIKE: LIKE's own wildcards in it match themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def bulk_match(db: Queryable, where: BulkFilter, *, limit: int) -> list[tuple[UUID, str]]:
    """(id, state) of the jobs the filter matches, at most `limit`."""
    pattern = like_pattern(where.error_contains) if where.error_contains is not None else None
    async with translating():
        rows = await db.fetch(SQL["bulk_match"], where.state, where.job_type, where.ids, pattern,
                              where.created_before, limit, where.queue)
    return [(r["id"], r["state"]) for r in rows]


# The statement of each bulk action, and the states it changes (its single action's rule).
BULK_STATEMENTS = {"retry": "bulk_retry", "cancel": "bulk_cancel_queued", "delete": "bulk_delete"}
BULK_STATES = {"retry": ("failed", "canceled"), "cancel": ("queued", "running"), "delete": FINISHED}


async def bulk_apply(db: Queryable, action: str, ids: Sequence[UUID]) -> list[UUID]:
    """Apply one bulk action to these ids; the ids actually changed (the state rule is re-checked
    under the row locks). Cancel also asks for the running ones to be stopped."""
    if not ids:
        return []
    async with translating():
        rows = await db.fetch(SQL[BULK_STATEMENTS[action]], list(ids))
        if action == "cancel":
            rows += await db.fetch(SQL["request_cancel"], list(ids))
    return [r["id"] for r in rows]


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What a job list is narrowed to; None means "any". `search` is matched as a substring."""

    state: str | None = None
    job_type: str | None = None
    timing: str | None = None  # "due" or "scheduled", with state "queued"
    schedule_id: UUID | None = None
    search: str | None = None
    queue: str | None = None

    def search_pattern(self) -> str | None:
        return like_pattern(self.search) if self.search is not None else None


async def list_jobs(db: Queryable, *, state: str | None = None, job_type: str | None = None,
                    limit: int, offset: int, where: JobFilter | None = None,
                    full: bool = True) -> tuple[list[Job], int]:
    """A page of jobs (newest first) and the total matching, from one snapshot.

    `where` holds every filter (`state`/`job_type` are kept for older callers). Without `full`,
    rows carry no payload or error history and last_error is cut (see the SQL).
    """
    where = where or JobFilter(state=state, job_type=job_type)
    async with translating():
        if isinstance(db, asyncpg.Pool):
            async with db.acquire() as conn:
                return await _list_in_snapshot(conn, where, limit, offset, full)
        return await _list_in_snapshot(db, where, limit, offset, full)


async def _list_in_snapshot(conn: Any, where: JobFilter, limit: int, offset: int,
                            full: bool) -> tuple[list[Job], int]:
    pattern = where.search_pattern()
    page_args = (where.state, where.job_type, limit, offset, where.timing, where.schedule_id, pattern, full,
                 where.queue)
    count_args = (where.state, where.job_type, where.timing, where.schedule_id, pattern, where.queue)
    if conn.is_in_transaction():
        # The caller's transaction is the snapshot (under READ COMMITTED, two close statements).
        rows = await conn.fetch(SQL["list_jobs"], *page_args)
        total = await conn.fetchval(SQL["count_jobs"], *count_args)
    else:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(SQL["list_jobs"], *page_args)
            total = await conn.fetchval(SQL["count_jobs"], *count_args)
    return [Job.from_record(r) for r in rows], total


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One count of the job timeline: `minute` is None for the queued/running counts."""

    type: str
    minute: datetime | None
    outcome: str
    count: int


async def job_timeline(db: Queryable, *, minutes: int) -> tuple[datetime, list[TimelineRow]]:
    """The current minute (database clock) and the counts behind the dashboard's chart."""
    async with translating():
        rows = await db.fetch(SQL["job_timeline"], minutes)
    current = rows[0]["current_minute"]
    counts = [TimelineRow(r["type"], r["minute"], r["outcome"], r["n"])
              for r in rows if r["type"] is not None]
    return current, counts


async def job_stats(db: Queryable, *, timeout: float | None = None) -> JobStats:
    """Counts per state from one statement: exact below the cap, estimated above (see queries.sql)."""
    async with translating():
        r = await db.fetchrow(SQL["job_stats"], timeout=timeout)
    counts = estimate_counts(
        {"due": r["due"], "scheduled": r["scheduled"], "running": r["running"], "completed": r["completed"],
         "failed": r["failed"], "canceled": r["canceled"]},
        cap=r["exact_cap"], live_rows=r["live_rows"], index_rows=json.loads(r["index_rows"]),
    )
    return JobStats(counts["due"] + counts["scheduled"], counts["running"], counts["completed"],
                    counts["failed"], counts["canceled"], counts["scheduled"],
                    round(r["oldest_queued_age_sec"], 3))


# The parts job_stats counts, and the state (partial index) each belongs to.
_PART_STATE = {"due": "queued", "scheduled": "queued", "running": "running", "completed": "completed",
               "failed": "failed", "canceled": "canceled"}


def estimate_counts(exact: dict[str, int], *, cap: int, live_rows: float,
                    index_rows: dict[str, float]) -> dict[str, int]:
    """Replace the counts that reached `cap` (so are only lower bounds) by estimates.

    The rows not counted exactly are the table's live rows minus the exact counts; they are shared
    among the capped parts in proportion to their index's row estimate (at least `cap` each), so
    the usual case, one large finished state, gets the whole remainder.
    """
    capped = [part for part, n in exact.items() if n >= cap]
    if not capped:
        return dict(exact)
    known = sum(n for part, n in exact.items() if part not in capped)
    remainder = max(live_rows - known, cap * len(capped))
    weights = {part: max(float(index_rows.get(_PART_STATE[part], 0.0)), float(cap)) for part in capped}
    for part in capped:  # due and scheduled share one index: split its weight between them
        if _PART_STATE[part] == "queued" and {"due", "scheduled"} <= set(capped):
            weights[part] /= 2
    total_weight = sum(weights.values())
    out = dict(exact)
    for part in capped:
        out[part] = max(cap, round(remainder * weights[part] / total_weight))
    return out


# active_counts counts up to this many jobs per state; a count at the cap means "at least".
ACTIVE_COUNT_CAP = 10_000


async def active_counts(db: Queryable, *, timeout: float | None = None) -> tuple[int, int]:
    """(queued, running), without scanning finished jobs; each at most ACTIVE_COUNT_CAP."""
    async with translating():
        r = await db.fetchrow(SQL["active_counts"], ACTIVE_COUNT_CAP, timeout=timeout)
    return r["queued"], r["running"]


async def prune_jobs(db: Queryable, *, completed_retention_h: int, failed_retention_h: int,
                     batch: int) -> int:
    async with translating():
        status = await db.execute(SQL["prune_jobs"], completed_retention_h, failed_retention_h, batch)
    return _rowcount(status)


def _rowcount(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


# --- schedules ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NewSchedule:
    name: str
    job_type: str
    cron_expr: str
    timezone: str = "UTC"
    payload: dict[str, Any] | None = None
    enabled: bool = True
    max_attempts: int = 3
    overlap: str = "allow"
    misfire: str = "coalesce"
    misfire_max: int = 10
    queue: str | None = None
    priority: int | None = None


async def create_schedule(db: Queryable, s: NewSchedule, *, next_run_at: datetime | None) -> Schedule:
    async with translating():
        row = await db.fetchrow(SQL["create_schedule"], s.name, s.job_type, _json(s.payload or {}),
                                s.cron_expr, s.timezone, s.enabled, s.max_attempts, next_run_at,
                                s.overlap, s.misfire, s.misfire_max, s.queue, s.priority)
    return Schedule.from_record(row)


async def get_schedule(db: Queryable, schedule_id: UUID) -> Schedule:
    async with translating():
        row = await db.fetchrow(SQL["get_schedule"], schedule_id)
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return Schedule.from_record(row)


async def list_schedules(db: Queryable) -> list[Schedule]:
    async with translating():
        rows = await db.fetch(SQL["list_schedules"])
    return [Schedule.from_record(r) for r in rows]


@dataclass(frozen=True, slots=True)
class TimingInputs:
    cron_expr: str
    timezone: str
    enabled: bool
    now: datetime


async def schedule_timing_inputs(db: Queryable, schedule_id: UUID) -> TimingInputs:
    async with translating():
        r = await db.fetchrow(SQL["schedule_timing_inputs"], schedule_id)
    if r is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return TimingInputs(r["cron_expr"], r["timezone"], r["enabled"], r["now"])


@dataclass(frozen=True, slots=True)
class ScheduleChanges:
    """Fields an update supplies; None means "leave as is"."""

    cron_expr: str | None = None
    timezone: str | None = None
    payload: dict[str, Any] | None = None
    enabled: bool | None = None
    max_attempts: int | None = None
    job_type: str | None = None
    overlap: str | None = None
    misfire: str | None = None
    misfire_max: int | None = None
    queue: str | None = None
    priority: int | None = None
    clear_queue: bool = False  # back to the job type's queue
    clear_priority: bool = False


async def update_schedule(db: Queryable, schedule_id: UUID, ch: ScheduleChanges, *,
                          next_run_at: datetime | None, read: TimingInputs) -> Schedule | None:
    """One guarded statement. None means the cron/timezone changed since `read`: read again."""
    timing_changed = ch.cron_expr is not None or ch.timezone is not None
    payload = _json(ch.payload) if ch.payload is not None else None
    async with translating():
        row = await db.fetchrow(
            SQL["update_schedule"], schedule_id, ch.cron_expr, ch.timezone, payload, ch.enabled,
            ch.max_attempts, ch.job_type, next_run_at, timing_changed, read.cron_expr, read.timezone,
            ch.overlap, ch.misfire, ch.misfire_max, ch.queue, ch.priority, ch.clear_queue, ch.clear_priority,
        )
    return Schedule.from_record(row) if row is not None else None


async def delete_schedule(db: Queryable, schedule_id: UUID) -> None:
    async with translating():
        deleted = await db.fetchval(SQL["delete_schedule"], schedule_id)
    if deleted is None:
        raise NotFound(f"schedule {schedule_id} not found")


@dataclass(frozen=True, slots=True)
class DueSchedule:
    id: UUID
    name: str
    job_type: str
    cron_expr: str
    timezone: str
    next_run_at: datetime
    now: datetime
    overlap: str = "allow"
    misfire: str = "coalesce"
    misfire_max: int = 10


async def due_schedules(db: Queryable, *, clock: datetime | None = None) -> list[DueSchedule]:
    """Schedules due at `clock` (None: the database's now())."""
    async with translating():
        rows = await db.fetch(SQL["due_schedules"], clock)
    return [DueSchedule(r["id"], r["name"], r["job_type"], r["cron_expr"], r["timezone"],
                        r["next_run_at"], r["now"], r["overlap"], r["misfire"], r["misfire_max"])
            for r in rows]


@dataclass(frozen=True, slots=True)
class FirePlan:
    """One schedule's decisions for its due slots, and the slot it moves to."""

    due: DueSchedule
    next_run_at: datetime
    decisions: Sequence[tuple[datetime, str]]  # (slot, 'enqueue' | 'skipped_overlap' | 'skipped_misfire')


@dataclass(frozen=True, slots=True)
class Fire:
    """A decision recorded for one slot."""

    schedule_id: UUID
    slot_at: datetime
    outcome: str
    job_id: UUID | None


async def fire_schedules(db: Queryable, plans: Sequence[FirePlan], *,
                         clock: datetime | None = None) -> list[Fire]:
    """Record the plans' decisions and enqueue their jobs in one statement; a schedule another daemon
    advanced, changed or is deciding right now is left out (no rows for it)."""
    if not plans:
        return []
    sids, slots, wants = [], [], []
    for p in plans:
        for slot, want in p.decisions:
            sids.append(p.due.id)
            slots.append(slot)
            wants.append(want)
    async with translating():
        rows = await db.fetch(
            SQL["fire_schedules"], [p.due.id for p in plans], [p.due.next_run_at for p in plans],
            [p.next_run_at for p in plans], [p.due.cron_expr for p in plans], [p.due.timezone for p in plans],
            sids, slots, wants, clock)
    return [Fire(r["schedule_id"], r["slot_at"], r["outcome"], r["job_id"]) for r in rows]


@dataclass(frozen=True, slots=True)
class FireRecord:
    slot_at: datetime
    decided_at: datetime
    outcome: str
    job_id: UUID | None
    job_state: str | None


async def schedule_history(db: Queryable, schedule_id: UUID, *, limit: int) -> list[FireRecord]:
    async with translating():
        rows = await db.fetch(SQL["schedule_history"], schedule_id, limit)
    return [FireRecord(r["slot_at"], r["decided_at"], r["outcome"], r["job_id"], r["job_state"])
            for r in rows]


async def prune_schedule_fires(db: Queryable, *, keep: int) -> int:
    async with translating():
        status = await db.execute(SQL["prune_schedule_fires"], keep)
    return _rowcount(status)


async def schedules_missing_next_run(db: Queryable) -> list[tuple[UUID, str, str, datetime]]:
    async with translating():
        rows = await db.fetch(SQL["schedules_missing_next_run"])
    return [(r["id"], r["cron_expr"], r["timezone"], r["now"]) for r in rows]


async def set_missing_next_run(db: Queryable, ids: Sequence[UUID], nexts: Sequence[datetime]) -> int:
    async with translating():
        status = await db.execute(SQL["set_missing_next_run"], list(ids), list(nexts))
    return _rowcount(status)


async def seconds_until_next_schedule(db: Queryable, *, clock: datetime | None = None) -> float | None:
    async with translating():
        return await db.fetchval(SQL["seconds_until_next_schedule"], clock)


async def trigger_schedule(db: Queryable, schedule_id: UUID) -> Job:
    async with translating():
        row = await db.fetchrow(SQL["trigger_schedule"], schedule_id)
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return Job.from_record(row)


# --- built-in maintenance -------------------------------------------------------------------------

async def table_exists(db: Queryable, table: str) -> bool:
    async with translating():
        return await db.fetchval(SQL["table_exists"], table)


async def delete_batch(db: Queryable, query: str, *args: Any) -> int:
    """Run one bounded delete from queries.sql (`delete_*`); returns rows deleted."""
    if not query.startswith("delete_"):
        raise ValueError(f"{query} is not a batch delete")
    async with translating():
        status = await db.execute(SQL[query], *args)
    return _rowcount(status)
