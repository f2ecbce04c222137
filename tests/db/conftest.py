"""Fixtures for the database-level tests: a registry, a service, and extra connections."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from ayb_jobs.handlers import Registry, default_registry
from ayb_jobs.service import JobService


@pytest.fixture
def registry() -> Registry:
    return default_registry()


@pytest.fixture
def service(pool: asyncpg.Pool, registry: Registry) -> JobService:
    return JobService(pool, registry, default_max_attempts=3)


@pytest.fixture
async def connect(db_url: str) -> AsyncIterator[Callable[[], Awaitable[asyncpg.Connection]]]:
    """Opens separate connections to the test database (closed after the test)."""
    opened: list[asyncpg.Connection] = []

    async def _open() -> asyncpg.Connection:
        conn = await asyncpg.connect(db_url)
        opened.append(conn)
        return conn

    yield _open
    for conn in opened:
        await conn.close()
