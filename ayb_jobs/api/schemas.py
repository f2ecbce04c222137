"""HTTP shapes of the admin API: strict request models and documented response models.

Requests are strict (`false` is not an int, `"3"` is not an int) and reject unknown fields. Strings
that Postgres cannot store (NUL characters, lone surrogates) and non-finite numbers are rejected here,
so they become a 400 instead of a database error. Responses are built by `Job.to_api()` and friends;
the response models below only document them in OpenAPI.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from ayb_jobs.models import MAX_PRIORITY, MIN_PRIORITY, JobState

MAX_JSON_DEPTH = 64
# runAt outside this range is a mistake (year 1 is stored as -infinity; year 9999 is at the end of
# what the API's times can show), refused before anything is written.
EARLIEST_RUN_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_RUN_AT = datetime(9999, 1, 1, tzinfo=UTC)


def check_text(value: str) -> str:
    """Reject what a Postgres text column cannot hold."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def check_json(value: Any, depth: int = 0) -> Any:
    """Reject what jsonb cannot hold (NUL, lone surrogates, NaN/Infinity) and absurd nesting."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must not contain NaN or Infinity")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, depth + 1)
    return value


def parse_time(value: Any) -> datetime:
    """ISO 8601 with a timezone (e.g. 2026-01-01T00:00:00Z), returned in UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string, e.g. 2026-01-01T00:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO 8601 time, e.g. 2026-01-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("must include a timezone, e.g. 2026-01-01T00:00:00Z")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"'{value}' is out of range") from None


def check_run_at(value: datetime) -> datetime:
    if not EARLIEST_RUN_AT <= value < LATEST_RUN_AT:
        raise ValueError("must be between 1970-01-01T00:00:00Z and 9999-01-01T00:00:00Z")
    return value


def integral(value: Any) -> Any:
    """JSON has one number type: 78.0 is the integer 78 (as JSON Schema's "integer" says); 78.5 is not."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _text(max_length: int, min_length: int = 1) -> Any:
    return Annotated[
        StrictStr, Field(min_length=min_length, max_length=max_length), AfterValidator(check_text)
    ]


Time = Annotated[
    datetime, PlainValidator(parse_time), WithJsonSchema({"type": "string", "format": "date-time"})
]
Payload = Annotated[
    dict[str, Any], AfterValidator(check_json), Field(description="A JSON object handed to the handler.")
]
MaxAttempts = Annotated[
    StrictInt,
    Field(ge=1, le=100, description="Total runs allowed (1-100); a whole number (3.0 counts as 3)."),
    BeforeValidator(integral),
]
RunAt = Annotated[Time, AfterValidator(check_run_at),
                  Field(description="When the job becomes due (default now); 1970 to 9999.")]
TypeName = _text(100)
QueueName = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
                                       description="1-100 of [A-Za-z0-9_.:-]")]
Priority = Annotated[StrictInt, Field(ge=MIN_PRIORITY, le=MAX_PRIORITY,
                                      description="-100 to 100; lower runs first (default 0)."),
                     BeforeValidator(integral)]
Concurrency = Annotated[
    StrictInt,
    Field(ge=1, le=100_000, description="At most this many of its jobs run at once, across all daemons."),
    BeforeValidator(integral),
]
Overlap = Annotated[Literal["allow", "skip"], Field(
    description="allow (default): a slot enqueues even while the previous job runs; skip: a slot is "
                "skipped (recorded skipped_overlap) while a job of this schedule is queued or running.")]
Misfire = Annotated[Literal["coalesce", "skip", "all"], Field(
    description="Slots missed while no scheduler ran: coalesce (default) one run for them all; skip no "
                "run; all one job per missed slot, at most misfireMax.")]
MisfireMax = Annotated[
    StrictInt, Field(ge=1, le=100, description="With misfire all: at most this many missed slots run (1-100, "
                                               "default 10)."), BeforeValidator(integral)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EnqueueJob(_Request):
    type: TypeName
    payload: Payload | None = None
    runAt: RunAt | None = None
    maxAttempts: MaxAttempts | None = None
    idempotencyKey: Annotated[_text(255) | None, Field(
        description="Unique forever: a second job with this key is refused (409).")] = None
    uniqueKey: Annotated[_text(255) | None, Field(
        description="Unique while active: if a job with this key is queued or running, that job is "
                    "returned (200, `deduplicated: true`) and nothing is inserted.")] = None
    queue: QueueName | None = Field(None, description="Default: the job type's queue, else `default`.")
    priority: Priority | None = Field(None, description="Default: the job type's priority, else 0.")


class BulkFilterIn(_Request):
    """At least one field must be set. Fields are not nullable: leave one out to not filter on it."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"minProperties": 1})

    state: Annotated[_text(20), Field(description="Only jobs in this state.",
                                      json_schema_extra={"enum": [str(x) for x in JobState]})] = None
    type: Annotated[TypeName, Field(description="Only jobs of this exact type.")] = None
    queue: Annotated[QueueName, Field(description="Only jobs of this queue.")] = None
    ids: Annotated[list[_text(36)], Field(min_length=1, max_length=10_000, description="Only these jobs.",
                                          json_schema_extra={"items": {"type": "string",
                                                                       "format": "uuid"}})] = None
    errorContains: Annotated[_text(200), Field(
        description="Only jobs whose last error contains this text (case-insensitive).")] = None
    createdBefore: Annotated[Time, Field(description="Only jobs created before this time.")] = None


class BulkAction(_Request):
    action: Annotated[StrictStr, Field(json_schema_extra={"enum": ["retry", "cancel", "delete"]},
                                       description="What to do to every matching job; the single "
                                                   "action's state rule decides which ones change.")]
    filter: BulkFilterIn
    dryRun: Annotated[StrictBool, Field(description="Count, change nothing.")] = False


class CreateSchedule(_Request):
    name: Annotated[_text(100), Field(pattern=r"^[A-Za-z0-9_.:-]+$", description="1-100 of [A-Za-z0-9_.:-]")]
    jobType: TypeName
    cronExpr: _text(100)
    timezone: _text(50, min_length=0) | None = Field(None, description='IANA name; "" or absent = UTC')
    payload: Payload | None = None
    enabled: StrictBool | None = None
    maxAttempts: MaxAttempts | None = None
    overlap: Overlap | None = None
    misfire: Misfire | None = None
    misfireMax: MisfireMax | None = None
    queue: QueueName | None = Field(None, description="Its jobs' queue; absent or null: the job type's.")
    priority: Priority | None = Field(None, description="Its jobs' priority; absent or null: the job type's.")


class UpdateSchedule(_Request):
    cronExpr: _text(100) | None = None
    timezone: _text(50) | None = None
    payload: Payload | None = None
    enabled: StrictBool | None = None
    maxAttempts: MaxAttempts | None = None
    overlap: Overlap | None = None
    misfire: Misfire | None = None
    misfireMax: MisfireMax | None = None
    queue: QueueName | None = Field(None, description="null hands the queue back to the job type's policy.")
    priority: Priority | None = Field(None, description="null hands the priority back to the job type's.")


class UpdateQueue(_Request):
    """Absent (or null `paused`) leaves a setting as it is; an empty body just reads the queue."""

    paused: StrictBool | None = Field(None, description="A paused queue's jobs are not claimed; running "
                                                        "ones finish.")
    concurrency: Concurrency | None = Field(None, description="Global limit of running jobs; null clears it.")


# --- responses (documentation only) ------------------------------------------------------------------

IsoTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]


class ErrorBody(BaseModel):
    code: int = Field(description="The HTTP status code.")
    message: str = Field(description="What is wrong and how to fix it.")


class DuplicateJobBody(ErrorBody):
    existingJobId: Uuid | None = Field(None, description="The job that already holds the idempotency key.")


class JobError(BaseModel):
    attempt: int | None = None
    at: str | None = None
    error: str | None = None
    worker_id: str | None = None


class JobOut(BaseModel):
    id: Uuid
    type: str
    payload: dict[str, Any]
    state: JobState
    runAt: IsoTime
    attempts: int
    maxAttempts: int
    createdAt: IsoTime
    updatedAt: IsoTime
    leaseUntil: IsoTime | None = None
    workerId: str | None = None
    lastError: str | None = None
    lastRunAt: IsoTime | None = None
    idempotencyKey: str | None = None
    scheduleId: Uuid | None = None
    completedAt: IsoTime | None = None
    canceledAt: IsoTime | None = None
    uniqueKey: str | None = None
    cancelRequestedAt: IsoTime | None = Field(
        None, description="An operator asked to cancel this running job; it ends `canceled`.")
    snoozes: int = Field(0, description="Times the handler asked to run later (not counted as attempts).")
    result: Any = Field(None, description=(
        "The handler's return value as JSON, when it returned one; a return value over 64 KiB is "
        'stored as {"truncated": true, "bytes": N}.'))
    errors: list[JobError] = Field(default_factory=list, description="The last failures, oldest first.")
    queue: str
    priority: int = Field(description="Lower runs first.")
    payloadError: str | None = Field(None, description=(
        "Set when the stored payload cannot be read (e.g. written by plain SQL with a number of "
        "thousands of digits, nesting thousands deep, or not an object); `payload` is then `{}` "
        "and the job fails without running."))


class EnqueuedJobOut(JobOut):
    deduplicated: bool | None = Field(None, description=(
        "Present (true) when a job with the same uniqueKey was already queued or running: this is "
        "that job (status 200) and nothing was inserted. Absent for a new job (status 201)."))


class JobList(BaseModel):
    items: list[JobOut]
    count: int = Field(description="Items in this page.")
    total: int = Field(description="Jobs matching the filters.")


class LiveCountsOut(BaseModel):
    queued: int = Field(description="Queued, scheduled ones included.")
    scheduled: int = Field(description="Queued with runAt in the future.")
    running: int


_COUNT = "Jobs in this state: exact up to 1,000, above that estimated from the table's statistics."


class JobStatsOut(BaseModel):
    """Counts per state, from one statement that reads at most ~1,000 index entries per state, so it
    stays cheap however many finished jobs the table holds."""

    queued: int = Field(description=_COUNT)
    running: int = Field(description=_COUNT)
    completed: int = Field(description=_COUNT)
    failed: int = Field(description=_COUNT)
    canceled: int = Field(description=_COUNT)
    scheduled: int = Field(description="Queued jobs whose runAt is in the future (exact up to 1,000).")
    oldestQueuedAgeSec: float = Field(ge=0, description="Age of the oldest due queued job (0 if none).")
    byQueue: dict[str, LiveCountsOut] = Field(description="Live jobs per queue (exact).")
    byType: dict[str, LiveCountsOut] = Field(description="Live jobs per job type (exact).")


class BulkResultOut(BaseModel):
    matched: int = Field(description="Jobs the filter matched (at most 10,000).")
    changed: int = Field(description="Jobs the action changed; with dryRun, the jobs it would change by "
                                     "their current state.")
    dryRun: bool


class JobTypeOut(BaseModel):
    type: str
    builtin: bool
    description: str
    queue: str | None = Field(None, description="Queue its jobs go to when the enqueue names none.")
    priority: int | None = Field(None, description="Priority its jobs get when the enqueue gives none.")
    maxAttempts: int | None = Field(None, description="Total runs allowed when the enqueue gives none.")
    timeoutS: float | None = Field(None, description="Its own run time limit (else jobs.job_timeout_s).")
    customBackoff: bool = Field(False, description="Retries wait by the type's own backoff function.")


class JobTypeList(BaseModel):
    items: list[JobTypeOut]


class ScheduleOut(BaseModel):
    id: Uuid
    name: str
    jobType: str
    payload: dict[str, Any]
    cronExpr: str
    timezone: str
    enabled: bool
    maxAttempts: int
    createdAt: IsoTime
    updatedAt: IsoTime
    overlap: Literal["allow", "skip"]
    misfire: Literal["coalesce", "skip", "all"]
    misfireMax: int
    nextRunAt: IsoTime | None = None
    lastRunAt: IsoTime | None = None
    queue: str | None = Field(description="Its jobs' queue; null: the job type's, else `default`.")
    priority: int | None = Field(description="Its jobs' priority; null: the job type's, else 0.")


class QueueOut(BaseModel):
    name: str
    paused: bool
    concurrency: int | None = Field(description="Global limit of running jobs; null = unlimited.")
    queued: int = Field(description="Queued jobs, scheduled ones included.")
    running: int
    scheduled: int = Field(description="Queued jobs whose runAt is in the future.")
    oldestDueAgeSec: float = Field(ge=0, description="How long the oldest due job has waited (0 if none).")


class QueueList(BaseModel):
    items: list[QueueOut]


class ScheduleList(BaseModel):
    items: list[ScheduleOut]
    count: int


ReasonCode = Literal[
    "scheduled_in_future", "retry_backoff", "queue_paused", "queue_at_limit", "no_live_worker_for_queue",
    "no_live_worker_with_handler", "all_workers_busy", "waiting_behind", "due", "locked_by_transaction",
    "running", "lease_expired_awaiting_recovery", "cancel_requested", "completed", "failed", "canceled",
]


class ReasonOut(BaseModel):
    code: ReasonCode
    message: str = Field(description="What is going on and what to do about it.")


class Explanation(BaseModel):
    id: Uuid
    state: JobState
    reasons: list[ReasonOut] = Field(description="Every reason that applies, from one snapshot, most "
                                                 "decisive first.")


class FireOut(BaseModel):
    slotAt: IsoTime = Field(description="The cron slot decided.")
    decidedAt: IsoTime
    outcome: Literal["enqueued", "skipped_overlap", "skipped_misfire"]
    jobId: Uuid | None = Field(None, description="The job enqueued for the slot.")
    jobState: JobState | None = Field(None, description="That job's state now (absent once it was pruned).")


class FireHistory(BaseModel):
    items: list[FireOut] = Field(description="Newest slot first; the newest 100 decisions are kept.")


class CronPreview(BaseModel):
    times: list[IsoTime] = Field(description="The next fire times; fewer than asked only where the calendar "
                                             "ends (year 9999).")


class Health(BaseModel):
    status: str


def json_body(schema: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself (to answer 400, not 422)."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"content": {"application/json": {"schema": ref}}, "required": True}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries with the error envelope for each status code."""
    descriptions = {
        400: "Invalid input; the message names the field and the reason.",
        401: "Missing or wrong admin token.",
        404: "No such job, schedule or queue.",
        409: "Conflicts with the current state.",
        413: "Request body larger than 1 MiB.",
        503: "Job queue not enabled, or the database is unavailable.",
    }
    return {code: {"model": ErrorBody, "description": descriptions.get(code, "Error.")} for code in codes}
