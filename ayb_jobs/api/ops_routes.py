"""Operator routes under /api/admin: Postgres health, the audit log, live workers.

Also the middleware that tells the service who is acting during an admin request (the token's
fingerprint and the client address), so that each change's audit row names its actor.
`install(app)` adds both to the app.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from ayb_jobs.api import schemas as s
from ayb_jobs.api.auth import ADMIN_PREFIX, bearer_scheme
from ayb_jobs.api.errors import JobsDisabled
from ayb_jobs.api.routes import MAX_OFFSET, Id, reject_unknown_query
from ayb_jobs.api.routes import _uuid as uuid_arg
from ayb_jobs.audit import Actor, AuditAction, acting_as, fingerprint
from ayb_jobs.models import iso
from ayb_jobs.service import MAX_LIST_LIMIT, AuditEntry, JobService, WorkerRow

NO_DATABASE = "this daemon has no database connection configured for the admin API"


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_middleware(AuditActorMiddleware)


class AuditActorMiddleware:
    """Sets the acting caller of each /api/admin request for the service's audit rows.

    Runs inside the auth middleware, so the bearer token seen here is the valid admin token; only its
    fingerprint is kept.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        with acting_as(actor_of(scope)):
            await self.app(scope, receive, send)


def actor_of(scope: Scope) -> Actor:
    raw = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = raw.partition(" ")
    client = scope.get("client")
    return Actor(fingerprint(token.strip()) if scheme.lower() == "bearer" and token.strip() else None,
                 client[0] if client else None)


async def any_service(request: Request) -> JobService:
    """The service whether or not jobs are enabled: these routes only read the database (Postgres
    health matters in either mode, and a daemon without workers can still show the others)."""
    service = request.app.state.service
    if service is None:
        raise JobsDisabled(NO_DATABASE)
    return service


AnyService = Annotated[JobService, Depends(any_service)]

router = APIRouter(
    prefix=ADMIN_PREFIX,
    dependencies=[Depends(bearer_scheme), Depends(reject_unknown_query)],
    responses=s.error_responses(401, 503),
)


# --- response shapes (documentation) ---------------------------------------------------------------

Status = Literal["ok", "warning"]


class HealthCheckOut(BaseModel):
    name: str = Field(description="xmin_horizon, dead_tuples or notify_queue.")
    status: Status
    value: float = Field(description="Seconds (xmin_horizon), dead tuples (worst table) or a 0-1 ratio.")
    threshold: float = Field(description="The configured warning threshold (health.* settings).")
    message: str = Field(description="What was seen and, when warning, what to do.")
    detail: dict[str, Any] | None = Field(None, description="The culprit (e.g. the backend's pid and query).")


class HealthOut(BaseModel):
    status: Status
    checks: list[HealthCheckOut]
    checkedAt: s.IsoTime | None = Field(None, description="When the reading was taken (any daemon).")


class AuditEntryOut(BaseModel):
    id: int
    at: s.IsoTime
    actor: str | None = Field(None, description="First 12 hex digits of the SHA-256 of the admin token.")
    remoteAddr: str | None = None
    action: AuditAction
    target: str | None = Field(None, description="The job or schedule id.")
    detail: dict[str, Any] | None = None


class AuditList(BaseModel):
    items: list[AuditEntryOut]
    count: int = Field(description="Items in this page.")
    total: int = Field(description="Entries matching the filter.")


class RunningJobOut(BaseModel):
    id: s.Uuid
    type: str
    startedAt: s.IsoTime | None = None
    leaseUntil: s.IsoTime | None = None


class WorkerOut(BaseModel):
    workerId: str
    host: str
    pid: int
    version: str
    startedAt: s.IsoTime
    lastSeenAt: s.IsoTime
    queues: list[str]
    types: list[str]
    concurrency: int
    inFlight: int
    alive: bool = Field(description="Seen within the last 30 s; false means the daemon is gone.")
    jobIds: list[s.Uuid] = Field(description="Jobs in state running on this worker.")
    jobs: list[RunningJobOut]


class WorkerList(BaseModel):
    items: list[WorkerOut]


# --- routes ------------------------------------------------------------------------------------------


@router.get("/health", response_model=HealthOut, responses=s.error_responses(400), tags=["operations"],
            summary="Postgres health checks: xmin horizon, dead tuples, NOTIFY queue")
async def pg_health(service: AnyService) -> JSONResponse:
    return JSONResponse((await service.health_report()).to_api())


@router.get("/audit", response_model=AuditList, responses=s.error_responses(400), tags=["operations"],
            summary="Admin changes, newest first")
async def list_audit(
    service: AnyService,
    action: Annotated[AuditAction | None, Query(description="Only entries of this action.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JSONResponse:
    entries, total = await service.list_audit(action=str(action) if action else None, limit=limit,
                                              offset=offset)
    return JSONResponse({"items": [audit_to_api(e) for e in entries], "count": len(entries), "total": total})


@router.get("/workers", response_model=WorkerList, responses=s.error_responses(400), tags=["operations"],
            summary="Daemons seen recently, with the jobs each runs")
async def list_workers(service: AnyService) -> JSONResponse:
    return JSONResponse({"items": [worker_to_api(w) for w in await service.list_workers()]})


@router.get("/jobs/{job_id}/explain", response_model=s.Explanation, responses=s.error_responses(400, 404),
            tags=["jobs"], summary="Why the job is (not) running: every reason, each with what to do")
async def explain_job(service: AnyService, job_id: Id) -> JSONResponse:
    # Served by any daemon, jobs enabled or not: it only reads, and an API-only daemon is where one
    # asks about a job whose worker died.
    return JSONResponse(await service.explain_job(uuid_arg(job_id, "job")))


def audit_to_api(e: AuditEntry) -> dict[str, Any]:
    return {"id": e.id, "at": iso(e.at), "actor": e.actor, "remoteAddr": e.remote_addr, "action": e.action,
            "target": e.target, "detail": e.detail}


def worker_to_api(w: WorkerRow) -> dict[str, Any]:
    jobs = [{"id": str(j.id), "type": j.type, "startedAt": iso(j.started_at),
             "leaseUntil": iso(j.lease_until)} for j in w.jobs]
    return {
        "workerId": w.worker_id, "host": w.host, "pid": w.pid, "version": w.version,
        "startedAt": iso(w.started_at), "lastSeenAt": iso(w.last_seen_at), "queues": w.queues,
        "types": w.types, "concurrency": w.concurrency, "inFlight": w.in_flight, "alive": w.alive,
        "jobIds": [j["id"] for j in jobs], "jobs": jobs,
    }
