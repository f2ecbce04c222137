"""The /api/admin routes: parse the request, call one JobService method, shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError, WithJsonSchema
from starlette.convertors import Convertor, register_url_convertor

from ayb_jobs.api import list_schemas as ls
from ayb_jobs.api import schemas as s
from ayb_jobs.api.auth import bearer_scheme
from ayb_jobs.api.errors import MAX_BODY_BYTES, BodyTooLarge, JobsDisabled, validation_message
from ayb_jobs.errors import InvalidInput
from ayb_jobs.models import Job, iso
from ayb_jobs.service import (
    LIST_STATES,
    MAX_HISTORY_LIMIT,
    MAX_LIST_LIMIT,
    MAX_PREVIEW_COUNT,
    MAX_SEARCH_LENGTH,
    MAX_TIMELINE_MINUTES,
    BulkFilter,
    JobService,
)

JOBS_DISABLED = "job queue is not enabled; set jobs.enabled = true"
MAX_OFFSET = 1_000_000_000


async def get_service(request: Request) -> JobService:
    service = request.app.state.service
    if service is None or not request.app.state.jobs_enabled:
        raise JobsDisabled(JOBS_DISABLED)
    return service


Service = Annotated[JobService, Depends(get_service)]
# Ids are taken as text and checked here, so a bad one is a 400 with a sentence rather than a 422 list.
Id = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        shown = value if len(value) <= 60 else value[:60] + "…"
        raise InvalidInput(f"invalid {what} id '{shown}': must be a UUID", field="id") from None


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return s.parse_time(value)
    except ValueError as exc:
        raise InvalidInput(f"query parameter '{name}': {exc}", field=name) from None


def _query_text(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return s.check_text(value)
    except ValueError as exc:
        raise InvalidInput(f"query parameter '{name}': {exc}", field=name) from None


def _json(content: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status)


async def reject_unknown_query(request: Request) -> None:
    """A misspelt filter (`?stat=failed`) must be an error, not a silently unfiltered answer."""
    route = request.scope.get("route")
    known = {p.alias for p in route.dependant.query_params} if route is not None else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        shown = ", ".join(repr(u[:40]) for u in unknown[:5])
        raise InvalidInput(f"unknown query parameter(s) {shown}; this route accepts: {allowed}",
                           field="query")


class _JobIdSegment(Convertor[str]):
    """A path segment that is not one of the fixed /jobs/... routes, so that DELETE /jobs/stats is
    405 (Allow: GET, HEAD), as documented, rather than "invalid job id 'stats'"."""

    regex = "(?!(?:stats|timeline|bulk)(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("job_id", _JobIdSegment())


router = APIRouter(
    prefix="/api/admin",
    dependencies=[Depends(bearer_scheme), Depends(reject_unknown_query)],
    responses=s.error_responses(401, 503),
)
_ID = s.error_responses(400, 404)
_BODY = s.error_responses(400, 413)


# --- jobs ------------------------------------------------------------------------------------------


def _int_query(value: str | None, name: str, low: int, high: int, default: int) -> int:
    """A whole number in [low, high]; the message says so in words (not pydantic's)."""
    if value is None:
        return default
    text = value.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or not low <= int(text) <= high:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}; got '{shown}'", field=name)
    return int(text)


def _summary(job: Job) -> dict[str, Any]:
    row = job.to_api()
    del row["payload"], row["errors"]
    return row


def _filter_text(value: str | None, name: str, max_length: int) -> str | None:
    if value is not None and len(value) > max_length:
        raise InvalidInput(f"{name} is limited to {max_length} characters; got {len(value)}", field=name)
    return _query_text(value, name)


def _text_schema(max_length: int) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "maxLength": max_length})


def _int_schema(low: int, high: int, default: int) -> WithJsonSchema:
    return WithJsonSchema({"type": "integer", "minimum": low, "maximum": high, "default": default})


@router.get(
    "/jobs",
    response_model=ls.JobPage,
    responses=s.error_responses(400),
    tags=["jobs"],
    summary="List jobs, newest first",
)
async def list_jobs(
    service: Service,
    state: Annotated[str | None, Query(
        description="Only jobs in this state; `due` and `scheduled` are the queued jobs whose runAt "
                    "has come, or not yet."),
        WithJsonSchema({"type": "string", "enum": list(LIST_STATES)})] = None,
    type: Annotated[str | None, Query(description="Only jobs of this exact type (registered or not)."),
                    _text_schema(100)] = None,
    q: Annotated[str | None, Query(description=(
        "Search: jobs whose id, type, last error or payload text contains this text "
        "(case-insensitive).")), _text_schema(MAX_SEARCH_LENGTH)] = None,
    scheduleId: Annotated[Id | None, Query(description="Only jobs a schedule enqueued.")] = None,
    queue: Annotated[str | None, Query(description="Only jobs of this queue."), _text_schema(100)] = None,
    view: Annotated[str | None, Query(description=(
        "`summary`: rows without payload and error history, last error cut to 300 characters."
        " Default `full`.")), WithJsonSchema({"type": "string", "enum": ["full", "summary"]})] = None,
    limit: Annotated[str | None, Query(), _int_schema(1, MAX_LIST_LIMIT, 50)] = None,
    offset: Annotated[str | None, Query(), _int_schema(0, MAX_OFFSET, 0)] = None,
) -> JSONResponse:
    if view not in (None, "full", "summary"):
        raise InvalidInput(f"view must be 'full' or 'summary'; got '{view[:40]}'", field="view")
    full = view != "summary"
    jobs, total = await service.list_jobs(
        state=_query_text(state, "state"), job_type=_filter_text(type, "type", 100),
        limit=_int_query(limit, "limit", 1, MAX_LIST_LIMIT, 50),
        offset=_int_query(offset, "offset", 0, MAX_OFFSET, 0),
        schedule_id=_uuid(scheduleId, "schedule") if scheduleId is not None else None,
        search=_filter_text(q, "q", MAX_SEARCH_LENGTH), full=full, queue=_filter_text(queue, "queue", 100),
    )
    items = [j.to_api() if full else _summary(j) for j in jobs]
    return _json({"items": items, "count": len(jobs), "total": total})


@router.get(
    "/jobs/timeline",
    response_model=ls.JobTimelineOut,
    responses=s.error_responses(400),
    tags=["jobs"],
    summary="Completed and failed jobs per minute, and counts per type",
)
async def job_timeline(
    service: Service,
    minutes: Annotated[str | None, Query(description="Window length in minutes (default 60)."),
                       _int_schema(1, MAX_TIMELINE_MINUTES, 60)] = None,
) -> JSONResponse:
    timeline = await service.job_timeline(_int_query(minutes, "minutes", 1, MAX_TIMELINE_MINUTES, 60))
    return _json({
        "minutes": [{"at": iso(at), "completed": c, "failed": f} for at, c, f in timeline.minutes],
        "types": [{"type": t.type, "completed": t.completed, "failed": t.failed, "queued": t.queued,
                   "running": t.running} for t in timeline.types],
    })


@router.get("/jobs/stats", response_model=s.JobStatsOut, tags=["jobs"], summary="Counts per state")
async def job_stats(service: Service, request: Request) -> JSONResponse:
    # Fresh, but concurrent requests share one read (app.py: app.state.stats wraps service.stats).
    stats = (await request.app.state.stats.get(max_age_s=0)).to_api()
    by_queue, by_type = await service.job_breakdown()
    stats["byQueue"] = {name: c.to_api() for name, c in by_queue.items()}
    stats["byType"] = {name: c.to_api() for name, c in by_type.items()}
    return _json(stats)


@router.get("/jobs/{job_id:job_id}", response_model=s.JobOut, responses=_ID, tags=["jobs"], summary="One job")
async def get_job(service: Service, job_id: Id) -> JSONResponse:
    return _json((await service.get_job(_uuid(job_id, "job"))).to_api())


@router.post(
    "/jobs",
    status_code=201,
    response_model=s.EnqueuedJobOut,
    tags=["jobs"],
    summary="Enqueue a job",
    responses={
        200: {
            "model": s.EnqueuedJobOut,
            "description": "A job with the same uniqueKey is queued or running: that job, deduplicated.",
        },
        **_BODY,
        409: {
            "model": s.DuplicateJobBody,
            "description": "Duplicate idempotency key (names the existing job).",
        },
    },
    openapi_extra=s.json_body("EnqueueJob"),
)
async def enqueue_job(service: Service, request: Request) -> JSONResponse:
    body = await _body(request, s.EnqueueJob)
    job = await service.enqueue(
        body.type,
        body.payload,
        run_at=body.runAt,
        max_attempts=body.maxAttempts,
        idempotency_key=body.idempotencyKey,
        queue=body.queue,
        priority=body.priority,
        unique_key=body.uniqueKey,
    )
    if job.deduplicated:
        return _json({**job.to_api(), "deduplicated": True}, 200)
    return _json(job.to_api(), 201)


@router.post(
    "/jobs/bulk",
    response_model=s.BulkResultOut,
    tags=["jobs"],
    summary="Retry, cancel or delete every job a filter matches (at most 10,000)",
    responses={**_BODY},
    openapi_extra=s.json_body("BulkAction"),
)
async def bulk_jobs(service: Service, request: Request) -> JSONResponse:
    body = await _body(request, s.BulkAction)
    f = body.filter
    where = BulkFilter(
        state=f.state, job_type=f.type, error_contains=f.errorContains, created_before=f.createdBefore,
        queue=f.queue,
        ids=[_uuid(i, "job") for i in f.ids] if f.ids is not None else None,
    )
    result = await service.bulk(body.action, where, dry_run=body.dryRun)
    return _json({"matched": result.matched, "changed": result.changed, "dryRun": result.dry_run})


@router.delete(
    "/jobs/{job_id:job_id}",
    status_code=204,
    response_class=Response,
    responses={**_ID, **s.error_responses(409)},
    tags=["jobs"],
    summary="Delete a completed, failed or canceled job",
)
async def delete_job(service: Service, job_id: Id) -> Response:
    await service.delete_job(_uuid(job_id, "job"))
    return Response(status_code=204)


@router.post(
    "/jobs/{job_id}/retry",
    response_model=s.JobOut,
    tags=["jobs"],
    responses={**_ID, **s.error_responses(409)},
    summary="Queue a failed or canceled job again",
)
async def retry_job(service: Service, job_id: Id) -> JSONResponse:
    return _json((await service.retry_job(_uuid(job_id, "job"))).to_api())


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=s.JobOut,
    tags=["jobs"],
    responses={
        202: {"model": s.JobOut, "description": (
            "The job is running: the cancel was requested (`cancelRequestedAt`); the daemon that runs "
            "it stops the handler within about a second and the job ends `canceled`.")},
        **_ID, **s.error_responses(409),
    },
    summary="Cancel a queued job now, or ask for a running one to be stopped",
)
async def cancel_job(service: Service, job_id: Id) -> JSONResponse:
    job = await service.cancel_job(_uuid(job_id, "job"))
    return _json(job.to_api(), 202 if job.state == "running" else 200)


@router.get("/job-types", response_model=s.JobTypeList, tags=["jobs"], summary="Registered job types")
async def job_types(service: Service) -> JSONResponse:
    items = [
        {"type": t.type, "builtin": t.builtin, "description": t.description, "queue": t.queue,
         "priority": t.priority, "maxAttempts": t.max_attempts, "timeoutS": t.timeout_s,
         "customBackoff": t.has_backoff}
        for t in service.job_types()
    ]
    return _json({"items": items})


# --- schedules -------------------------------------------------------------------------------------


@router.get("/schedules", response_model=s.ScheduleList, tags=["schedules"], summary="List schedules")
async def list_schedules(service: Service) -> JSONResponse:
    items = [sc.to_api() for sc in await service.list_schedules()]
    return _json({"items": items, "count": len(items)})


@router.get(
    "/schedules/{schedule_id}",
    response_model=s.ScheduleOut,
    responses=_ID,
    tags=["schedules"],
    summary="One schedule",
)
async def get_schedule(service: Service, schedule_id: Id) -> JSONResponse:
    return _json((await service.get_schedule(_uuid(schedule_id, "schedule"))).to_api())


@router.post(
    "/schedules",
    status_code=201,
    response_model=s.ScheduleOut,
    tags=["schedules"],
    responses={**_BODY, **s.error_responses(409)},
    summary="Create a schedule",
    openapi_extra=s.json_body("CreateSchedule"),
)
async def create_schedule(service: Service, request: Request) -> JSONResponse:
    body = await _body(request, s.CreateSchedule)
    schedule = await service.create_schedule(
        name=body.name,
        job_type=body.jobType,
        cron_expr=body.cronExpr,
        timezone=body.timezone or None,
        payload=body.payload,
        enabled=body.enabled,
        max_attempts=body.maxAttempts,
        queue=body.queue,
        priority=body.priority,
        overlap=body.overlap,
        misfire=body.misfire,
        misfire_max=body.misfireMax,
    )
    return _json(schedule.to_api(), 201)


@router.put(
    "/schedules/{schedule_id}",
    response_model=s.ScheduleOut,
    tags=["schedules"],
    responses={**_ID, **_BODY},
    summary="Change a schedule (only the given fields)",
    openapi_extra=s.json_body("UpdateSchedule"),
)
async def update_schedule(service: Service, schedule_id: Id, request: Request) -> JSONResponse:
    sid = _uuid(schedule_id, "schedule")
    body = await _body(request, s.UpdateSchedule)
    schedule = await service.update_schedule(
        sid,
        cron_expr=body.cronExpr,
        timezone=body.timezone,
        payload=body.payload,
        enabled=body.enabled,
        max_attempts=body.maxAttempts,
        queue=body.queue,
        priority=body.priority,
        # An explicit null hands the field back to the job type's policy.
        clear_queue="queue" in body.model_fields_set and body.queue is None,
        clear_priority="priority" in body.model_fields_set and body.priority is None,
        overlap=body.overlap,
        misfire=body.misfire,
        misfire_max=body.misfireMax,
    )
    return _json(schedule.to_api())


@router.delete(
    "/schedules/{schedule_id}",
    status_code=204,
    response_class=Response,
    responses=_ID,
    tags=["schedules"],
    summary="Delete a schedule",
)
async def delete_schedule(service: Service, schedule_id: Id) -> Response:
    await service.delete_schedule(_uuid(schedule_id, "schedule"))
    return Response(status_code=204)


@router.post(
    "/schedules/{schedule_id}/enable",
    response_model=s.ScheduleOut,
    responses=_ID,
    tags=["schedules"],
    summary="Enable a schedule (next run computed from now)",
)
async def enable_schedule(service: Service, schedule_id: Id) -> JSONResponse:
    return _json((await service.set_enabled(_uuid(schedule_id, "schedule"), True)).to_api())


@router.post(
    "/schedules/{schedule_id}/disable",
    response_model=s.ScheduleOut,
    responses=_ID,
    tags=["schedules"],
    summary="Disable a schedule (no next run)",
)
async def disable_schedule(service: Service, schedule_id: Id) -> JSONResponse:
    return _json((await service.set_enabled(_uuid(schedule_id, "schedule"), False)).to_api())


@router.post(
    "/schedules/{schedule_id}/trigger",
    status_code=201,
    response_model=s.JobOut,
    responses=_ID,
    tags=["schedules"],
    summary="Enqueue one run of the schedule's job now",
)
async def trigger_schedule(service: Service, schedule_id: Id) -> JSONResponse:
    return _json((await service.trigger_schedule(_uuid(schedule_id, "schedule"))).to_api(), 201)


@router.get(
    "/schedules/{schedule_id}/history",
    response_model=s.FireHistory,
    responses=_ID,
    tags=["schedules"],
    summary="The schedule's fire decisions, newest slot first",
)
async def schedule_history(
    service: Service,
    schedule_id: Id,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_LIMIT)] = MAX_HISTORY_LIMIT,
) -> JSONResponse:
    fires = await service.schedule_history(_uuid(schedule_id, "schedule"), limit=limit)
    return _json({"items": [
        {"slotAt": iso(f.slot_at), "decidedAt": iso(f.decided_at), "outcome": f.outcome,
         "jobId": str(f.job_id) if f.job_id else None, "jobState": f.job_state} for f in fires]})


@router.get(
    "/cron/preview",
    response_model=s.CronPreview,
    responses=s.error_responses(400),
    tags=["schedules"],
    summary="Next fire times of a cron expression",
)
async def cron_preview(
    service: Service,
    expr: Annotated[str, Query(max_length=100)],
    timezone: Annotated[str | None, Query(max_length=50)] = None,
    count: Annotated[int, Query(ge=1, le=MAX_PREVIEW_COUNT)] = 5,
    after: Annotated[str | None, Query(description="ISO 8601 with timezone; default now")] = None,
) -> JSONResponse:
    times = await service.cron_preview(
        _query_text(expr, "expr") or "", _query_text(timezone, "timezone"), count, _time(after, "after")
    )
    return _json({"times": [iso(t) for t in times]})


# --- bodies ----------------------------------------------------------------------------------------


async def _body(request: Request, model: type[s._Request]) -> Any:
    """Parse and validate a JSON object body, with the envelope's messages (not FastAPI's 422)."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:  # the middleware stops streams; this covers bodies given whole
        raise BodyTooLarge(MAX_BODY_BYTES)
    if not raw.strip():
        raise InvalidInput("request body is required: a JSON object")
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise InvalidInput(validation_message(errors)) from None
