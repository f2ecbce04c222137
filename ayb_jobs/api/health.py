"""Unauthenticated probes: /healthz (alive), /readyz (ready to work), /metrics (Prometheus text).

They are what monitoring calls most, and what anyone can call: `ProbeFastPath` answers them before
FastAPI's routing, dependency and exception layers, at a fraction of the CPU a routed request costs
(the daemon runs its jobs on the same event loop). The routes below answer the same way and document
the probes in OpenAPI.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ayb_jobs.api import schemas as s
from ayb_jobs.api.snapshot import SharedRead
from ayb_jobs.metrics import CONTENT_TYPE
from ayb_jobs.models import JobStats

# A scrape must not hang on a stuck database; the counters are worth more than a late snapshot.
STATS_TIMEOUT_S = 2.0
# Queue gauges may be this old: all scrapes in the interval share one read (Prometheus scrapes every
# 15-60 s, so nobody sees the difference, and a storm of scrapes costs one query per interval).
METRICS_STATS_MAX_AGE_S = 5.0
JSON = "application/json"
log = structlog.get_logger("ayb_jobs.api")
router = APIRouter(tags=["health"])

Answer = tuple[int, str, bytes]  # status, content type, body


def _json(status: int, content: dict[str, Any]) -> Answer:
    return status, JSON, json.dumps(content, separators=(",", ":")).encode()


async def healthz_answer(state: Any) -> Answer:
    return _json(200, {"status": "ok"})


async def readyz_answer(state: Any) -> Answer:
    # Fresh (max age 0), but probes arriving together share one database round trip.
    reason = await state.readiness.get(max_age_s=0)
    if reason is not None:
        return _json(503, {"code": 503, "message": reason})
    return _json(200, {"status": "ready"})


async def metrics_answer(state: Any) -> Answer:
    stats = await _stats(state.stats) if state.stats is not None else None
    return 200, CONTENT_TYPE, state.metrics.render(stats).encode()


async def _stats(shared: SharedRead[JobStats]) -> JobStats | None:
    try:
        async with asyncio.timeout(STATS_TIMEOUT_S):
            return await shared.get(max_age_s=METRICS_STATS_MAX_AGE_S)
    except Exception as exc:  # any failure (outage, timeout, missing table) still renders the counters
        log.warning("metrics_stats_unavailable", error=f"{type(exc).__name__}: {exc}")
        return None


PROBES: dict[str, Callable[[Any], Awaitable[Answer]]] = {
    "/healthz": healthz_answer, "/readyz": readyz_answer, "/metrics": metrics_answer,
}


class ProbeFastPath:
    """GET/HEAD on a probe path, answered directly; everything else goes on to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        probe = PROBES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if probe is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        status, content_type, body = await probe(scope["app"].state)
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def _response(answer: Answer) -> Response:
    status, content_type, body = answer
    return Response(body, status_code=status, media_type=content_type)


@router.get("/healthz", response_model=s.Health, summary="The process is alive")
async def healthz(request: Request) -> Response:
    return _response(await healthz_answer(request.app.state))


@router.get(
    "/readyz",
    response_model=s.Health,
    summary="Ready: database answers, not draining",
    responses={503: {"model": s.ErrorBody, "description": "Not ready; the message says why."}},
)
async def readyz(request: Request) -> Response:
    return _response(await readyz_answer(request.app.state))


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    return _response(await metrics_answer(request.app.state))
