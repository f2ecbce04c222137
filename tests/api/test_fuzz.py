"""Property test of the whole admin API with schemathesis: no 5xx, every response as documented.

schemathesis calls the ASGI app through a TestClient that runs each call in a fresh event loop, while
an asyncpg pool belongs to the loop that created it. So the pool lives on a dedicated loop thread and
the app gets a thin wrapper that runs each service coroutine there (the database is still real).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from tests_api_helpers import ADMIN_URL, AUTH, TOKEN

from ayb_jobs.api.app import create_app
from ayb_jobs.handlers import default_registry
from ayb_jobs.metrics import Metrics
from ayb_jobs.service import JobService

pytestmark = pytest.mark.timeout(300)
CALL_TIMEOUT_S = 30


class LoopThread:
    """An event loop running in its own thread, for objects bound to one loop (an asyncpg pool)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-db-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(CALL_TIMEOUT_S)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        self.loop.close()


class CrossLoopService:
    """Delegates to a JobService, running its coroutine methods on the pool's loop.

    Bound by a fixture: the app (and the schema schemathesis reads from it) exist at import time.
    """

    def __init__(self) -> None:
        self._service: JobService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, service: JobService | None, loop: asyncio.AbstractEventLoop | None) -> None:
        self._service, self._loop = service, loop

    def __getattr__(self, name: str) -> Any:
        if self._service is None:
            raise RuntimeError("CrossLoopService used outside the fuzz_db fixture")
        attr = getattr(self._service, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            future = asyncio.run_coroutine_threadsafe(attr(*args, **kwargs), self._loop)
            return await asyncio.wrap_future(future)

        return call


async def _ready() -> str | None:
    return None


SERVICE = CrossLoopService()
APP = create_app(SERVICE, token=TOKEN, jobs_enabled=True, metrics=Metrics(), readiness=_ready)  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def fuzz_db(template_db: str) -> Iterator[None]:
    """A migrated database whose pool lives on its own loop thread, bound into SERVICE."""
    loop = LoopThread()
    name = f"ayb_fuzz_{uuid.uuid4().hex[:10]}"

    async def setup() -> asyncpg.Pool:
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        finally:
            await admin.close()
        dsn = urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + name))
        return await asyncpg.create_pool(dsn, min_size=1, max_size=4)

    async def teardown(pool: asyncpg.Pool) -> None:
        await pool.close()
        admin = await asyncpg.connect(ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    pool = loop.run(setup())
    SERVICE.bind(JobService(pool, default_registry()), loop.loop)
    try:
        yield
    finally:
        SERVICE.bind(None, None)
        loop.run(teardown(pool))
        loop.close()


# Inputs whose validity the schema cannot express (the cron dialect, IANA zones, registered job types,
# NUL-free JSON) may be rejected with a documented 400 even when schema-valid; elsewhere the
# positive-data check holds: a schema-valid request must be accepted.
SEMANTIC = {
    ("POST", "/api/admin/jobs"),
    ("POST", "/api/admin/schedules"),
    ("PUT", "/api/admin/schedules/{schedule_id}"),
    ("GET", "/api/admin/cron/preview"),
}


@schema.parametrize()
# derandomize: the same examples every run, so CI cannot go red on a new random draw.
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_admin_api_conforms_to_its_schema(case) -> None:
    excluded = []
    if (case.method.upper(), case.path) in SEMANTIC:
        excluded.append(positive_data_acceptance)
    if case.method.upper() == "GET":
        # A "negative" query value such as a one-element array serializes exactly like a valid
        # string (`?type=x`), so no server can reject it; negative bodies stay checked.
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers=AUTH, excluded_checks=excluded or None)
