"""The `{"code", "message"}` error envelope for every 4xx/5xx, and the body size limit.

FastAPI's own shapes (422 with a `detail` list, `{"detail": "Not Found"}`) never reach a client:
validation errors become 400 with one readable sentence, HTTP errors keep their status.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ayb_jobs.errors import (
    AybJobsError,
    Conflict,
    DatabaseUnavailable,
    DuplicateJob,
    InvalidInput,
    NotFound,
)

MAX_BODY_BYTES = 1024 * 1024
log = structlog.get_logger("ayb_jobs.api")


class JobsDisabled(AybJobsError):
    """The job queue is not enabled on this daemon (503)."""


def envelope(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": status, "message": message, **extra}, status_code=status)


def status_for(exc: AybJobsError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, DatabaseUnavailable | JobsDisabled):
        return 503
    return 500


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AybJobsError)
    status = status_for(exc)
    if status >= 500:
        log.warning("api_error", status=status, error=exc.message)
    if isinstance(exc, DuplicateJob):
        return envelope(status, exc.message, existingJobId=exc.existing_job_id)
    return envelope(status, exc.message)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route; the admin API lives under /api/admin (see /api/openapi.json)"
    elif exc.status_code == 405:
        message = "method not allowed on this route (see /api/openapi.json)"
    response = envelope(exc.status_code, message)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    if exc.status_code == 405:
        response.headers["allow"] = ", ".join(_allowed_methods(request))
    return response


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts on this path (asked of the routes themselves, since included
    routers do not list their methods; HEAD goes wherever GET does, see app.HeadAsGetMiddleware)."""
    allowed = {
        method for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
               for route in request.app.router.routes)
    }
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return envelope(400, validation_message(list(exc.errors())))


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("api_unexpected_error", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
    return envelope(500, "internal error; see the daemon's log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AybJobsError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


# --- validation messages ---------------------------------------------------------------------------


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One sentence naming the first offending field and the reason."""
    if not errors:
        return "invalid request"
    return _describe(errors[0])


def _describe(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    kind = err.get("type", "")
    where, path = (loc[0], loc[1:]) if loc else ("body", [])
    reason = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if where == "body":
        if kind == "json_invalid":
            return f"request body is not valid JSON: {err.get('ctx', {}).get('error', reason)}"
        if not path:
            if kind == "missing":
                return "request body is required: a JSON object"
            return "request body must be a JSON object"
        field = ".".join(path)
        if kind == "extra_forbidden":
            return f"unknown field '{field}' in request body"
        if kind == "missing":
            return f"field '{field}' is required"
        return f"field '{field}': {reason}"
    name = ".".join(path) or where
    label = {"query": "query parameter", "path": "path parameter"}.get(where, where)
    if kind == "missing":
        return f"{label} '{name}' is required"
    return f"{label} '{name}': {reason}"


# --- body size limit -------------------------------------------------------------------------------


class BodyTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so that FastAPI's body parsing passes it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes (1 MiB)")


class BodyLimitMiddleware:
    """413 for bodies over the limit, by Content-Length and by the bytes actually received."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._reject(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_envelope(send, 413, BodyTooLarge(self.limit).detail)


async def send_envelope(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Write an error envelope from plain ASGI middleware (outside FastAPI's handlers)."""
    body = json.dumps({"code": status, "message": message}).encode()
    all_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": all_headers + (headers or [])})
    await send({"type": "http.response.body", "body": body})
