"""The /api/admin/queues routes: queues with their depth, pause and resume, set or clear the global
concurrency limit. Each change is audited by the service, like every admin mutation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import WithJsonSchema

from ayb_jobs.api import schemas as s
from ayb_jobs.api.auth import bearer_scheme
from ayb_jobs.api.routes import Service, _body, reject_unknown_query

router = APIRouter(
    prefix="/api/admin",
    dependencies=[Depends(bearer_scheme), Depends(reject_unknown_query)],
    responses=s.error_responses(401, 503),
    tags=["queues"],
)
Name = Annotated[str, WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,100}$"})]
_ONE = s.error_responses(400, 404)


def _queue(row: Any) -> JSONResponse:
    return JSONResponse(row.to_api())


@router.get("/queues", response_model=s.QueueList, summary="Queues with settings or live jobs, with depth")
async def list_queues(service: Service) -> JSONResponse:
    return JSONResponse({"items": [q.to_api() for q in await service.list_queues()]})


@router.get("/queues/{name}", response_model=s.QueueOut, responses=_ONE, summary="One queue")
async def get_queue(service: Service, name: Name) -> JSONResponse:
    return _queue(await service.get_queue(name))


@router.put(
    "/queues/{name}",
    response_model=s.QueueOut,
    responses={**_ONE, **s.error_responses(413)},
    summary="Change a queue's settings (only the given fields; concurrency null clears the limit)",
    openapi_extra=s.json_body("UpdateQueue"),
)
async def update_queue(service: Service, name: Name, request: Request) -> JSONResponse:
    body = await _body(request, s.UpdateQueue)
    clear = "concurrency" in body.model_fields_set and body.concurrency is None
    return _queue(await service.update_queue(name, paused=body.paused, concurrency=body.concurrency,
                                             clear_concurrency=clear))


@router.post("/queues/{name}/pause", response_model=s.QueueOut, responses=_ONE,
             summary="Pause a queue: its jobs are not claimed; running ones finish")
async def pause_queue(service: Service, name: Name) -> JSONResponse:
    return _queue(await service.update_queue(name, paused=True))


@router.post("/queues/{name}/resume", response_model=s.QueueOut, responses=_ONE,
             summary="Resume a paused queue")
async def resume_queue(service: Service, name: Name) -> JSONResponse:
    return _queue(await service.update_queue(name, paused=False))
