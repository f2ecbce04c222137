"""Unauthenticated probes: /healthz (alive), /readyz (ready to work), /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ayb_jobs.api import schemas as s
from ayb_jobs.api.snapshot import SharedRead
from ayb_jobs.metrics import CONTENT_TYPE
from ayb_jobs.models import JobStats

# A scrape must not hang on a stuck database; the counters are worth more than a late snapshot.
STATS_TIMEOUT_S = 2.0
# Queue gauges may be this old: all scrapes in the interval share one read (Prometheus scrapes every
# 15-60 s, so nobody sees the difference, and a storm of scrapes costs one query per interval).
METRICS_STATS_MAX_AGE_S = 5.0
log = structlog.get_logger("ayb_jobs.api")
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=s.Health, summary="The process is alive")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=s.Health,
    summary="Ready: database answers, not draining",
    responses={503: {"model": s.ErrorBody, "description": "Not ready; the message says why."}},
)
async def readyz(request: Request) -> JSONResponse:
    # Fresh (max age 0), but probes arriving together share one database round trip.
    reason = await request.app.state.readiness.get(max_age_s=0)
    if reason is not None:
        return JSONResponse({"code": 503, "message": reason}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    state = request.app.state
    stats = await _stats(state.stats) if state.stats is not None else None
    return Response(state.metrics.render(stats), media_type=CONTENT_TYPE)


async def _stats(shared: SharedRead[JobStats]) -> JobStats | None:
    try:
        async with asyncio.timeout(STATS_TIMEOUT_S):
            return await shared.get(max_age_s=METRICS_STATS_MAX_AGE_S)
    except Exception as exc:  # any failure (outage, timeout, missing table) still renders the counters
        log.warning("metrics_stats_unavailable", error=f"{type(exc).__name__}: {exc}")
        return None
