"""An app over a real JobService and database, called in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from tests_api_helpers import AUTH, TOKEN

from ayb_jobs.api.app import create_app
from ayb_jobs.handlers import default_registry
from ayb_jobs.metrics import Metrics
from ayb_jobs.service import JobService


class Readiness:
    """A readiness callable the test controls: `reason = None` means ready."""

    def __init__(self) -> None:
        self.reason: str | None = None

    async def __call__(self) -> str | None:
        return self.reason


@pytest.fixture
def service(pool) -> JobService:
    return JobService(pool, default_registry())


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
def make_client(metrics, readiness) -> Callable[..., httpx.AsyncClient]:
    """A client factory; without `service` the app has no database (enough for auth, probes, 503s)."""

    def make(
        service: JobService | None = None, *, jobs_enabled: bool = True, auth: bool = True
    ) -> httpx.AsyncClient:
        app = create_app(
            service, token=TOKEN, jobs_enabled=jobs_enabled, metrics=metrics, readiness=readiness
        )
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=AUTH if auth else {}
        )

    return make


@pytest.fixture
async def client(make_client, service) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(service) as c:
        yield c
