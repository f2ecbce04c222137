"""The daemon's HTTP app: admin API (/api/admin), probes, metrics, OpenAPI and the dashboard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ayb_jobs import __version__
from ayb_jobs.api import health, ops_routes, queue_routes, routes
from ayb_jobs.api import schemas as s
from ayb_jobs.api.auth import AdminAuthMiddleware
from ayb_jobs.api.errors import BodyLimitMiddleware, install_error_handlers
from ayb_jobs.api.snapshot import SharedRead
from ayb_jobs.metrics import Metrics
from ayb_jobs.service import JobService

OPENAPI_URL = "/api/openapi.json"
Readiness = Callable[[], Awaitable[str | None]]


def create_app(
    service: JobService | None, *, token: str, jobs_enabled: bool, metrics: Metrics, readiness: Readiness
) -> FastAPI:
    """Build the app. `readiness()` returns None when ready, else the reason (e.g. "draining")."""
    app = FastAPI(
        title="ayb-jobs admin API",
        version=__version__,
        openapi_url=OPENAPI_URL,
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.service = service
    app.state.jobs_enabled = jobs_enabled
    app.state.metrics = metrics
    # Shared reads: a storm of probes or scrapes costs one database round trip per interval.
    app.state.readiness = SharedRead(readiness)
    app.state.stats = SharedRead(lambda: service.stats()) if service is not None else None
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(queue_routes.router)
    app.include_router(health.router)
    ops_routes.install(app)  # /api/admin/health, /audit, /workers and the audit actor middleware
    if _mount_dashboard(app):
        app.add_api_route("/", _to_dashboard, methods=["GET"], include_in_schema=False)
    # Added last = outermost: the token is checked before the body is read or its size looked at.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(AdminAuthMiddleware, token=token)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(health.ProbeFastPath)  # outermost: probes skip every layer they do not need
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _mount_dashboard(app: FastAPI) -> bool:
    try:
        from ayb_jobs.dashboard import mount_dashboard
    except (ImportError, AttributeError):
        return False  # a build without the dashboard still serves the API
    mount_dashboard(app)
    return True


async def _to_dashboard() -> RedirectResponse:
    return RedirectResponse("/admin/", status_code=302)


class HeadAsGetMiddleware:
    """HEAD on any GET route answers as GET would, headers only (FastAPI routes list GET alone)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}  # Content-Length stays the GET body's
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


# Request bodies are parsed by the routes (strict JSON, messages in the envelope), so FastAPI does not
# see their models; they are added to the schema here, and FastAPI's 422 entries are removed.
_BODY_MODELS = (s.EnqueueJob, s.BulkAction, s.CreateSchedule, s.UpdateSchedule, s.UpdateQueue)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        routes=app.routes,
        description="Admin API of ayb-jobs. Errors use {code, message}.",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in _BODY_MODELS:
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            operation.get("responses", {}).pop("422", None)
    app.openapi_schema = schema
    return schema
