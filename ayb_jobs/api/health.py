"""Unauthenticated probes: /healthz (alive), /readyz (ready to work), /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ayb_jobs.api import schemas as s
from ayb_jobs.metrics import CONTENT_TYPE
from ayb_jobs.models import JobStats

# A scrape must not hang on a stuck database; the counters are worth more than a late snapshot.
STATS_TIMEOUT_S = 2.0
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
    reason = await request.app.state.readiness()
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
    stats = await _stats(state.service) if state.service is not None else None
    return Response(state.metrics.render(stats), media_type=CONTENT_TYPE)


async def _stats(service: object) -> JobStats | None:
    try:
        async with asyncio.timeout(STATS_TIMEOUT_S):
            return await service.stats()  # type: ignore[attr-defined]
    except Exception as exc:  # any failure (outage, timeout, missing table) still renders the counters
        log.warning("metrics_stats_unavailable", error=f"{type(exc).__name__}: {exc}")
        return None
